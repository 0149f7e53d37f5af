"""Hurdle mechanism: a point mass at a column's minimum plus a flow above it.

Real columns often hold many copies of one value at their floor (zero earnings, a lab value
at its detection limit, rainfall on dry days) and a continuous spread above it. A continuous
density cannot hold an atom: a flow fitted to such a column spreads it, so it samples values
below the floor and misplaces the effects of interventions. On an earnings-like table (3,000
rows, 53% zeros: a logistic chance of working and a log-normal wage, both moved by
a binary treatment) flows answered the ATE 633-760 against 1,361 and sampled 24% negative
earnings; the hurdle mechanism 1,352 and none. The hurdle model (Cragg, *Econometrica* 1971;
Mullahy, *J. Econometrics* 1986) writes the conditional as a mixture of the atom and a density
above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pyro.distributions import TorchDistribution
from torch import Tensor, nn
from torch.distributions import Transform, constraints
from torch.special import ndtr, ndtri

from scm.handlers import pull_through, push_through
from scm.mechanisms.additive import mlp
from scm.mechanisms.base import Mechanism
from scm.mechanisms.flow import FlowMechanism

RANK_EPS = 1e-12
"""Ranks (noise quantiles) are kept inside ``[RANK_EPS, 1 - RANK_EPS]`` (float64): the
normal quantile function is infinite at 0 and 1."""


class PointMassRanks(Transform):
    """The noise -> value map of :class:`HurdleMechanism`, elementwise on ``(..., 1)``.

    The noise ``u ~ N(0, 1)`` gives a rank ``p = Φ(u)``. Ranks below the atom's probability
    ``π`` give the atom ``at``; a rank above it gives ``at + w`` with ``w`` the continuous
    part's value at rank ``(p - π) / (1 - π)`` (``positive``: its noise -> value transforms).
    This is the quantile function of the mixed law, monotone in ``u`` like every other
    mechanism's map, so counterfactuals keep a row's rank. It is not one-to-one on the atom:
    the inverse gives a row at the atom the middle of its ranks, ``π / 2``.
    """

    domain = constraints.independent(constraints.real, 1)
    codomain = constraints.independent(constraints.real, 1)
    bijective = False

    def __init__(self, logit: Tensor, positive: Sequence[Transform], at: Tensor) -> None:
        super().__init__()
        self.logit, self.positive, self.at = logit, list(positive), at

    def _atom_probability(self) -> Tensor:
        return self.logit.double().sigmoid()

    def _call(self, u: Tensor) -> Tensor:
        p, pi = ndtr(u.double()), self._atom_probability()
        above = ((p - pi) / (1 - pi)).clamp(RANK_EPS, 1 - RANK_EPS)
        w = push_through(self.positive, ndtri(above).to(u.dtype))
        return torch.where(p < pi, self.at.expand_as(w), self.at + w)

    def _inverse(self, y: Tensor) -> Tensor:
        atom = y <= self.at
        # a stand-in value on the atom's rows keeps the continuous part finite there
        v = pull_through(self.positive, torch.where(atom, torch.ones_like(y), y - self.at))
        pi = self._atom_probability()
        p = torch.where(atom, pi / 2, pi + (1 - pi) * ndtr(v.double()))
        return ndtri(p.clamp(RANK_EPS, 1 - RANK_EPS)).to(y.dtype)


class PointMassAndFlow(TorchDistribution):
    """``p(x) = π`` at ``x = at``, ``(1 - π) q(x - at)`` above it, zero below; batch
    ``logit.shape[:-1]``, event ``(1,)``.

    Args:
        logit: the atom's log-odds ``(..., 1)``.
        positive: the law ``q`` of ``x - at`` on ``(0, inf)`` (a flow on its log), with
            ``transforms`` (noise -> value).
        at: the atom ``(1,)``.

    ``log_prob`` is a log-probability on the atom and a log-density above it (the density
    with respect to the atom's counting measure plus Lebesgue measure, as for any mixed
    discrete-continuous law).
    """

    arg_constraints: ClassVar[dict] = {}
    support = constraints.independent(constraints.real, 1)
    has_rsample = False

    def __init__(self, logit: Tensor, positive: Any, at: Tensor) -> None:
        self.logit, self.positive, self.at = logit, positive, at
        super().__init__(logit.shape[:-1], torch.Size([1]), validate_args=False)

    @property
    def transforms(self) -> list[Transform]:
        """The noise -> value map, as a one-transform list (what counterfactuals replay)."""
        return [PointMassRanks(self.logit, self.positive.transforms, self.at)]

    def log_prob(self, value: Tensor) -> Tensor:
        atom = (value <= self.at).squeeze(-1)
        below = (value < self.at).squeeze(-1)
        w = torch.where(value <= self.at, torch.ones_like(value), value - self.at)
        on_atom = F.logsigmoid(self.logit).squeeze(-1)
        above = F.logsigmoid(-self.logit).squeeze(-1) + self.positive.log_prob(w)
        lp = torch.where(atom, on_atom, above)
        return torch.where(below, torch.full_like(lp, -torch.inf), lp)

    def sample(self, sample_shape: tuple[int, ...] = ()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        with torch.no_grad():
            u = torch.randn(shape, dtype=self.logit.dtype, device=self.logit.device)
            return self.transforms[0](u)

    def expand(self, batch_shape: torch.Size, _instance: object = None) -> PointMassAndFlow:
        batch_shape = torch.Size(batch_shape)
        return PointMassAndFlow(self.logit.expand(*batch_shape, 1),
                                self.positive.expand(batch_shape), self.at)


class HurdleMechanism(Mechanism):
    """``x = at`` with probability ``π(c) = sigmoid(mlp(c))``, else ``x = at + exp(w)`` with
    ``w`` a flow of the parents (:class:`~scm.mechanisms.flow.FlowMechanism` on
    ``log(x - at)``): a point mass at the column's minimum ``at`` (set by :meth:`standardize`
    from the training rows) and a continuous part above it. Scalar nodes only.

    Sampling, ``log_prob`` and interventions are exact for this law. Counterfactuals keep
    each row's rank (the noise's quantile; the map is monotone, :class:`PointMassRanks`): a
    row above the atom is abducted exactly, and a row on the atom, whose rank is only known
    to lie in ``[0, π(c))``, takes the middle ``π(c) / 2`` (a point estimate: its
    counterfactual moves above the atom once the new parents give the atom under half its
    old probability).

    Args:
        dim: 1.
        context_dim: total width of the parents.
        bins, hidden, activation: the continuous part's flow and the gate's MLP
            (:class:`~scm.mechanisms.flow.FlowMechanism`).
        transforms: conditional spline layers of the continuous part (the parents may change
            its shape, not only its location and scale). One by measurement, seeds 11-13,
            3,000 rows, 0 -> 1: a censored outcome y = max(0, .5 + x + .5 u) (its part above
            the atom a truncated normal, whose shape moves with x), counterfactual RMSE on
            rows above the atom .089 -> .071 std and held-out log-likelihood -2.063 -> -2.054
            per row; the earnings table of the module docstring (log-normal part, a location
            shift) ATE error 7.3% -> 6.0%, log-likelihood -11.360 -> -11.373.
    """

    kind: ClassVar[str] = "hurdle"
    invertible: ClassVar[bool] = True

    def __init__(
        self,
        dim: int,
        context_dim: int,
        *,
        bins: int = 8,
        hidden: tuple[int, ...] = (32, 32),
        activation: str = "relu",
        transforms: int = 1,
    ) -> None:
        if dim != 1:
            raise ValueError(f"a hurdle node has dimension 1, got {dim}")
        super().__init__(dim, context_dim)
        self.bins, self.hidden, self.activation = bins, tuple(hidden), activation
        self.n_transforms = transforms if context_dim else 0  # a root's shape is its noise spline
        self.positive = FlowMechanism(1, context_dim, bins=bins, hidden=hidden,
                                      activation=activation, transforms=self.n_transforms)
        self.positive.set_log_scale(True, None)
        self.gate = mlp(context_dim, 1, self.hidden, activation) if context_dim else None
        self.gate_bias = nn.Parameter(torch.zeros(1))
        self.register_buffer("at", torch.zeros(1))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "bins": self.bins, "hidden": list(self.hidden),
                "activation": self.activation, "transforms": self.n_transforms}

    def standardize(self, value: Tensor, context: Tensor | None) -> None:
        """Set the atom to the smallest of ``value (n, 1)``, standardise the gate's context on
        every row and the continuous part on the rows above the atom, and start the gate at
        the atom's share of the rows (half a count added)."""
        at = value.min()
        atom = (value <= at).squeeze(-1)
        if int((~atom).sum()) < 2:
            raise ValueError(f"a hurdle node needs two or more rows above its smallest value "
                             f"{at.item():g}; got {int((~atom).sum())}")
        self.at.fill_(at.item())
        super().standardize(value, context)
        above = context[~atom] if context is not None else None
        self.positive.standardize(value[~atom] - at, above)
        share = (atom.sum() + 0.5) / (len(atom) + 1.0)
        with torch.no_grad():
            self.gate_bias.fill_(torch.logit(share).item())

    def set_log_scale(self, value: bool, context: Sequence[bool] | Tensor | None) -> None:
        """Parents may be read as their logs; the node's own value may not (its continuous
        part is modelled on the log scale already)."""
        if value:
            raise ValueError("a hurdle node cannot be on the log scale: its continuous part "
                             "is modelled as log(x - atom) already")
        super().set_log_scale(False, context)
        self.positive.set_log_scale(True, context)

    def atom_logit(self, context: Tensor | None) -> Tensor:
        """The atom's log-odds ``(n, 1)`` at parents ``context`` (``(1,)`` for a root)."""
        z = self._standardized_context(context)
        return self.gate_bias if z is None or self.gate is None else self.gate(z) + self.gate_bias

    def forward(self, context: Tensor | None) -> PointMassAndFlow:
        return PointMassAndFlow(self.atom_logit(context), self.positive(context), self.at)

    def transforms(self, context: Tensor | None) -> list[Transform]:
        return [PointMassRanks(self.atom_logit(context), self.positive.transforms(context),
                               self.at)]
