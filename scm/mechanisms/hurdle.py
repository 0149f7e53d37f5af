"""Hurdle mechanism: point masses at a column's smallest and/or largest value, a flow between.

Real columns often hold many copies of the value at one end (zero earnings, a lab value at
its detection limit, rainfall on dry days, a top-coded income, a score at its ceiling, a
percentage clipped to [0, 100]) and a continuous spread beside it. A continuous density cannot
hold an atom: a flow fitted to such a column spreads it, so it samples values beyond the end
and misplaces the effects of interventions. On an earnings-like table (3,000 rows, 53% zeros:
a logistic chance of working and a log-normal wage, both moved by a binary treatment) flows
answered the ATE 633-760 against 1,361 and sampled 24% negative earnings; the hurdle mechanism
1,352 and none. On y = clip(.5 + .3x + N(0, .25), 0, 1) (~20% at each end), a flow's ATE of x
from -1 to 1 was 0.00 against .39. The hurdle model (Cragg, *Econometrica* 1971; Mullahy,
*J. Econometrics* 1986) writes the conditional as a mixture of the atoms and a density between
them; with both ends, a two-limit model (Rosett & Nelson, *Econometrica* 1975).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from pyro.distributions import TorchDistribution
from torch import Tensor, nn
from torch.distributions import Transform, constraints
from torch.special import ndtr, ndtri

from scm.handlers import pull_through, push_through
from scm.mechanisms.additive import mlp
from scm.mechanisms.base import Mechanism, PushedNoise
from scm.mechanisms.flow import FlowMechanism


def exact(value: float) -> float:
    """The shortest decimal that float32 rounds to ``value``'s float32: the number as the
    data wrote it (0.05, not 0.0500000007), for data that went through float32."""
    return float(str(np.float32(value)))


RANK_EPS = 1e-12
"""Ranks (noise quantiles) are kept inside ``[RANK_EPS, 1 - RANK_EPS]`` (float64): the
normal quantile function is infinite at 0 and 1."""


class OpenInterval(Transform):
    """``w -> y``: the real line onto the continuous part's range, ``(low, inf)`` (``low +
    exp(w)``), ``(-inf, high)`` (``high - exp(-w)``) or ``(low, high)`` (``low + (high - low)
    sigmoid(w)``), whichever ends hold atoms; increasing. Elementwise on ``(..., 1)``."""

    domain = constraints.independent(constraints.real, 1)
    codomain = constraints.independent(constraints.real, 1)
    bijective = True
    sign = +1

    def __init__(self, low: Tensor | None, high: Tensor | None) -> None:
        super().__init__()
        self.low, self.high = low, high

    def _call(self, w: Tensor) -> Tensor:
        if self.high is None:
            return self.low + w.exp()
        if self.low is None:
            return self.high - (-w).exp()
        return self.low + (self.high - self.low) * w.sigmoid()

    def _inverse(self, y: Tensor) -> Tensor:
        if self.high is None:
            return (y - self.low).log()
        if self.low is None:
            return -(self.high - y).log()
        return (y - self.low).log() - (self.high - y).log()

    def log_abs_det_jacobian(self, w: Tensor, y: Tensor) -> Tensor:
        if self.high is None:
            jac = w
        elif self.low is None:
            jac = -w
        else:
            jac = (self.high - self.low).log() + torch.nn.functional.logsigmoid(w) \
                + torch.nn.functional.logsigmoid(-w)
        return jac.sum(-1)


class PointMassRanks(Transform):
    """The noise -> value map of :class:`HurdleMechanism`, elementwise on ``(..., 1)``.

    The noise ``u ~ N(0, 1)`` gives a rank ``p = Φ(u)``. Ranks below the lower atom's
    probability give the lower atom, ranks above one minus the upper atom's give the upper
    atom, and a rank between gives the continuous part's value at its rank within that part
    (``continuous``: its noise -> value transforms). This is the quantile function of the
    mixed law, monotone in ``u`` like every other mechanism's map, so counterfactuals keep a
    row's rank. It is not one-to-one on an atom: the inverse gives a row there the middle of
    the atom's ranks.

    Args:
        probabilities: ``(..., 3)``, float64: lower atom, continuous part, upper atom (an end
            without an atom has probability 0).
        continuous: the continuous part's noise -> value transforms.
        low, high: the atoms ``(1,)`` (``None`` for an end without one).
    """

    domain = constraints.independent(constraints.real, 1)
    codomain = constraints.independent(constraints.real, 1)
    bijective = False

    def __init__(self, probabilities: Tensor, continuous: Sequence[Transform],
                 low: Tensor | None, high: Tensor | None) -> None:
        super().__init__()
        self.p_low, self.p_mid, self.p_high = probabilities.split(1, -1)
        self.continuous, self.low, self.high = list(continuous), low, high

    def _call(self, u: Tensor) -> Tensor:
        p = ndtr(u.double())
        inside = ((p - self.p_low) / self.p_mid).clamp(RANK_EPS, 1 - RANK_EPS)
        y = push_through(self.continuous, ndtri(inside).to(u.dtype))
        if self.low is not None:
            y = torch.where(p < self.p_low, self.low.to(y.dtype).expand_as(y), y)
        if self.high is not None:
            y = torch.where(p > 1 - self.p_high, self.high.to(y.dtype).expand_as(y), y)
        return y

    def _inverse(self, y: Tensor) -> Tensor:
        on_low, on_high = on_atoms(y, self.low, self.high)
        v = pull_through(self.continuous, inside_value(y, on_low | on_high, self.low, self.high))
        p = self.p_low + self.p_mid * ndtr(v.double())
        p = torch.where(on_low, self.p_low / 2, p)
        p = torch.where(on_high, 1 - self.p_high / 2, p)
        return ndtri(p.clamp(RANK_EPS, 1 - RANK_EPS)).to(y.dtype)


def on_atoms(y: Tensor, low: Tensor | None, high: Tensor | None) -> tuple[Tensor, Tensor]:
    """Bool masks of ``y`` at or beyond the lower atom and at or beyond the upper one."""
    never = torch.zeros_like(y, dtype=torch.bool)
    return (never if low is None else y <= low.to(y.dtype),
            never if high is None else y >= high.to(y.dtype))


def inside_value(y: Tensor, atom: Tensor, low: Tensor | None, high: Tensor | None) -> Tensor:
    """``y`` with the rows ``atom`` replaced by a value inside the continuous part's range (so
    that its inverse stays finite there; those rows are masked afterwards)."""
    if low is not None and high is not None:
        stand_in = (low + high) / 2
    else:
        stand_in = low + 1 if low is not None else high - 1
    return torch.where(atom, stand_in.to(y.dtype).expand_as(y), y)


class PointMassAndFlow(TorchDistribution):
    """Atoms at ``low`` and/or ``high`` and a density between; batch
    ``probabilities.shape[:-1]``, event ``(1,)``.

    Args:
        log_probabilities: ``(..., 3)``: log-probabilities of the lower atom, the continuous
            part and the upper atom (``-inf`` for an end without one).
        continuous: the continuous part's law (with ``transforms``, noise -> value).
        low, high: the atoms ``(1,)`` or ``None``.

    ``log_prob`` is a log-probability on an atom and a log-density between (the density with
    respect to the atoms' counting measure plus Lebesgue measure, as for any mixed
    discrete-continuous law); ``-inf`` beyond an atom.
    """

    arg_constraints: ClassVar[dict] = {}
    support = constraints.independent(constraints.real, 1)
    has_rsample = False

    def __init__(self, log_probabilities: Tensor, continuous: Any, low: Tensor | None,
                 high: Tensor | None) -> None:
        self.log_probabilities, self.continuous = log_probabilities, continuous
        self.low, self.high = low, high
        super().__init__(log_probabilities.shape[:-1], torch.Size([1]), validate_args=False)

    @property
    def transforms(self) -> list[Transform]:
        """The noise -> value map, as a one-transform list (what counterfactuals replay)."""
        return [PointMassRanks(self.log_probabilities.double().exp(),
                               self.continuous.transforms, self.low, self.high)]

    def log_prob(self, value: Tensor) -> Tensor:
        on_low, on_high = on_atoms(value, self.low, self.high)
        beyond = torch.zeros_like(on_low)
        if self.low is not None:
            beyond |= value < self.low.to(value.dtype)
        if self.high is not None:
            beyond |= value > self.high.to(value.dtype)
        lp_low, lp_mid, lp_high = self.log_probabilities.split(1, -1)
        inside = inside_value(value, on_low | on_high, self.low, self.high)
        lp = lp_mid.squeeze(-1) + self.continuous.log_prob(inside)
        lp = torch.where(on_low.squeeze(-1), lp_low.squeeze(-1), lp)
        lp = torch.where(on_high.squeeze(-1), lp_high.squeeze(-1), lp)
        return torch.where(beyond.squeeze(-1), torch.full_like(lp, -torch.inf), lp)

    def sample(self, sample_shape: tuple[int, ...] = ()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        with torch.no_grad():
            u = torch.randn(shape, dtype=self.log_probabilities.dtype,
                            device=self.log_probabilities.device)
            return self.transforms[0](u)

    def expand(self, batch_shape: torch.Size, _instance: object = None) -> PointMassAndFlow:
        batch_shape = torch.Size(batch_shape)
        return PointMassAndFlow(self.log_probabilities.expand(*batch_shape, 3),
                                self.continuous.expand(batch_shape), self.low, self.high)


class HurdleMechanism(Mechanism):
    """Point masses at the smallest value ``low`` (``lower``) and/or the largest value
    ``high`` (``upper``) of the training rows, set by :meth:`standardize`, and a flow between:
    each atom with probability ``softmax(mlp(c))``, else the flow's value mapped onto the open
    range between the atoms (:class:`OpenInterval`: ``low + exp(w)`` for a floor alone).
    Scalar nodes only.

    Sampling, ``log_prob`` and interventions are exact for this law. Counterfactuals keep each
    row's rank (the noise's quantile; the map is monotone, :class:`PointMassRanks`): a row off
    the atoms is abducted exactly, and a row on an atom, whose rank is only known to lie in
    that atom's interval, takes its middle (a point estimate: on a censored outcome whose
    truth keeps ranks, 95% of the atom's rows moved off it under an intervention against 75%
    in truth, the mean of their values .071 against .068).

    Args:
        dim: 1.
        context_dim: total width of the parents.
        lower, upper: which ends hold atoms (one at least).
        bins, hidden, activation: the continuous part's flow and the gate's MLP
            (:class:`~scm.mechanisms.flow.FlowMechanism`).
        transforms: conditional spline layers of the continuous part (the parents may change
            its shape, not only its location and scale; a root takes none). One by
            measurement, seeds 11-13, 3,000 rows, 0 -> 1: a censored outcome y = max(0, .5 +
            x + .5 u) (its part above the atom a truncated normal, whose shape moves with x),
            counterfactual RMSE on rows above the atom .089 -> .071 std and held-out
            log-likelihood -2.063 -> -2.054 per row; the earnings table of the module
            docstring (log-normal part, a location shift) ATE error 7.3% -> 6.0%,
            log-likelihood -11.360 -> -11.373.
    """

    kind: ClassVar[str] = "hurdle"
    invertible: ClassVar[bool] = True

    def __init__(
        self,
        dim: int,
        context_dim: int,
        *,
        lower: bool = True,
        upper: bool = False,
        bins: int = 8,
        hidden: tuple[int, ...] = (32, 32),
        activation: str = "relu",
        transforms: int = 1,
    ) -> None:
        if dim != 1:
            raise ValueError(f"a hurdle node has dimension 1, got {dim}")
        if not (lower or upper):
            raise ValueError("a hurdle needs a point mass at its lower or upper end, or both")
        super().__init__(dim, context_dim)
        self.lower, self.upper = bool(lower), bool(upper)
        self.bins, self.hidden, self.activation = bins, tuple(hidden), activation
        self.n_transforms = transforms if context_dim else 0  # a root's shape is its noise spline
        self.continuous = FlowMechanism(1, context_dim, bins=bins, hidden=hidden,
                                        activation=activation, transforms=self.n_transforms)
        # log-odds of each atom against the continuous part
        self.gate = mlp(context_dim, 2, self.hidden, activation) if context_dim else None
        self.gate_bias = nn.Parameter(torch.zeros(2))
        # the atoms in float64, so that a limit such as 0.05 comes back as written
        self.register_buffer("ends", torch.zeros(2, dtype=torch.float64))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "lower": self.lower, "upper": self.upper, "bins": self.bins,
                "hidden": list(self.hidden), "activation": self.activation,
                "transforms": self.n_transforms}

    @property
    def low(self) -> Tensor | None:
        """The lower atom ``(1,)`` (float64), or ``None``."""
        return self.ends[:1] if self.lower else None

    @property
    def high(self) -> Tensor | None:
        """The upper atom ``(1,)`` (float64), or ``None``."""
        return self.ends[1:] if self.upper else None

    def atoms(self) -> list[float]:
        """The atoms' values, lower first."""
        return [float(a) for a in (self.low, self.high) if a is not None]

    def standardize(self, value: Tensor, context: Tensor | None) -> None:
        """Set the atoms to the extremes of ``value (n, 1)``, standardise the gate's context on
        every row and the continuous part on the rows between the atoms, and start the gate
        at the atoms' shares of the rows (half a count added)."""
        v = value.double()
        self.ends.copy_(torch.tensor([exact(float(value.min())), exact(float(value.max()))],
                                     dtype=torch.float64))
        on_low, on_high = on_atoms(value, self.low, self.high)
        inside = ~(on_low | on_high).squeeze(-1)
        if not bool(inside.any()):
            raise ValueError(f"a hurdle node needs rows between its point masses "
                             f"{self.atoms()}; every training row is on one")
        super().standardize(value, context)
        between = OpenInterval(self.low, self.high).inv(v[inside]).to(value.dtype)
        self.continuous.standardize(between, context[inside] if context is not None else None)
        counts = torch.stack([on_low.sum(), inside.sum(), on_high.sum()]).double() + 0.5
        with torch.no_grad():
            self.gate_bias.copy_((counts[[0, 2]] / counts[1]).log().to(self.gate_bias))

    def set_log_scale(self, value: bool, context: Sequence[bool] | Tensor | None) -> None:
        """Parents may be read as their logs; the node's own value may not (its continuous
        part is modelled on an open scale of its own, :class:`OpenInterval`)."""
        if value:
            raise ValueError("a hurdle node cannot be on the log scale: its part between the "
                             "point masses is modelled on a log or logit scale already")
        super().set_log_scale(False, context)
        self.continuous.set_log_scale(False, context)

    def log_probabilities(self, context: Tensor | None) -> Tensor:
        """Log-probabilities ``(n, 3)`` (``(3,)`` for a root) of the lower atom, the continuous
        part and the upper atom at parents ``context``; ``-inf`` for an end without an atom."""
        z = self._standardized_context(context)
        odds = self.gate_bias if z is None or self.gate is None else self.gate(z) + self.gate_bias
        zero = torch.zeros_like(odds[..., :1])
        logits = torch.cat([odds[..., :1], zero, odds[..., 1:]], -1)
        absent = torch.tensor([not self.lower, False, not self.upper], device=logits.device)
        return logits.masked_fill(absent, -torch.inf).log_softmax(-1)

    def _continuous(self, context: Tensor | None) -> PushedNoise:
        part = self.continuous(context)
        interval = OpenInterval(*(None if a is None else a.to(part.base_dist.mean.dtype)
                                  for a in (self.low, self.high)))
        return PushedNoise(part.base_dist, [*part.transforms, interval])

    def forward(self, context: Tensor | None) -> PointMassAndFlow:
        return PointMassAndFlow(self.log_probabilities(context), self._continuous(context),
                                self.low, self.high)

    def transforms(self, context: Tensor | None) -> list[Transform]:
        return self.forward(context).transforms
