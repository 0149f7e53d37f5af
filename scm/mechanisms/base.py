"""The mechanism contract: a module that returns ``p(x | parents)`` as pushed-forward noise."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import pyro.distributions as dist
import torch
from pyro.distributions.transforms import AffineTransform, ExpTransform, IndependentTransform
from torch import Tensor, nn
from torch.distributions import Transform, constraints


def spread(x: Tensor) -> Tensor:
    """The per-column scale that standardises ``x (n, d)``: its standard deviation, or 1 where
    the column is constant (every value equal, or a single row), as scikit-learn's
    ``StandardScaler`` does for zero variance; ``(d,)``.

    A floor instead (1e-6, the rule before) mis-scaled data of small units: the triangle's
    rows times 1e-8 gave E[x3 | do(x1=1)] 1.21 instead of 1.64 (in the data's units over
    1e-8); and a constant parent entered its children's conditioners divided by 1e-6, so that
    ``do(c=4)`` on a column always 3 answered a child's mean ~4e5 (now an extrapolation by
    one unit; ``fit`` warns about constant columns)."""
    std = x.std(0) if x.shape[0] > 1 else x.new_zeros(x.shape[1:])
    varies = x.amax(0) > x.amin(0)
    return torch.where(varies, std, torch.ones_like(std))


class Mechanism(nn.Module):
    """``x = f(u; parents)`` with exogenous noise ``u ~ N(0, I_dim)``.

    Subclasses implement :meth:`noise_transform` in standardised units; this class adds
    per-node standardisation (buffers set by :meth:`standardize` before fitting; identity
    for hand-set mechanisms) so that ``forward`` speaks the data's own units.

    Shapes: ``context`` is ``(n, context_dim)`` (the parents' values concatenated in the
    graph's parent order) or ``None`` for a root; values are ``(n, dim)``.
    """

    kind: ClassVar[str] = "base"
    invertible: ClassVar[bool] = True
    """Whether the noise can be recovered from a value and its parents (abduction)."""

    def __init__(self, dim: int, context_dim: int) -> None:
        super().__init__()
        if dim < 1 or context_dim < 0:
            raise ValueError(f"need dim >= 1 and context_dim >= 0, got {dim} and {context_dim}")
        self.dim = dim
        self.context_dim = context_dim
        self.register_buffer("loc", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.register_buffer("context_loc", torch.zeros(context_dim))
        self.register_buffer("context_scale", torch.ones(context_dim))
        self.log_value = False
        """Whether the value is ``exp`` of the modelled one (the node is on the log scale,
        :mod:`scm.log_nodes`); set by the SCM, not a weight."""
        # which context columns the conditioner reads as logs (parents on the log scale); not
        # a weight, so not in the state dict, but a buffer so that it moves with the module
        self.register_buffer("log_context_mask", torch.zeros(context_dim, dtype=torch.bool),
                             persistent=False)
        self.logs_context = False

    @property
    def log_context(self) -> Tensor | None:
        """Bool mask ``(context_dim,)`` of the context columns read as their logs, or
        ``None`` when none is; set by :meth:`set_log_scale`."""
        return self.log_context_mask if self.logs_context else None

    def config(self) -> dict[str, Any]:
        """JSON-able keyword arguments that rebuild this mechanism (weights aside)."""
        return {"dim": self.dim, "context_dim": self.context_dim}

    def noise_transform(self, context: Tensor | None) -> Transform:
        """Map standard-normal noise to the standardised value, given standardised parents."""
        raise NotImplementedError

    def standardize(self, value: Tensor, context: Tensor | None) -> None:
        """Set the standardisation from data: ``value (n, dim)``, ``context (n, context_dim)``
        in the data's units (their logs taken first where the mechanism reads them so)."""
        value = self.value_units(value)
        self.loc.copy_(value.mean(0))
        self.scale.copy_(spread(value))
        if context is not None and self.context_dim:
            context = self.context_units(context)
            self.context_loc.copy_(context.mean(0))
            self.context_scale.copy_(spread(context))

    def value_units(self, value: Tensor) -> Tensor:
        """``value`` in the units the mechanism models: its log for a node on the log scale."""
        return value.log() if self.log_value else value

    def context_units(self, context: Tensor) -> Tensor:
        """``context`` as the conditioner reads it: the :attr:`log_context` columns logged."""
        if self.log_context is None:
            return context
        # log of the masked columns only (a finite gradient for the others)
        logs = torch.where(self.log_context, context, torch.ones_like(context)).log()
        return torch.where(self.log_context, logs, context)

    def set_log_scale(self, value: bool, context: Sequence[bool] | Tensor | None) -> None:
        """Set :attr:`log_value` and :attr:`log_context` (a mask over the context columns;
        ``None`` or all false: none logged)."""
        self.log_value = bool(value)
        mask = None if context is None else torch.as_tensor(context, dtype=torch.bool)
        if mask is not None and mask.shape != (self.context_dim,):
            raise ValueError(f"log_context mask has shape {tuple(mask.shape)}, expected "
                             f"({self.context_dim},)")
        self.logs_context = mask is not None and bool(mask.any())
        if self.logs_context:
            self.log_context_mask.copy_(mask)
        else:
            self.log_context_mask.fill_(False)

    def transforms(self, context: Tensor | None) -> list[Transform]:
        """The noise -> value transforms in data units (event dim 1), in application order.

        The conditional transform is built lazily, on first use: sites that a handler fills
        in (``poutine.condition``, ``poutine.do``) never pay for their conditioner.
        """
        return [
            LazyTransform(lambda: self.noise_transform(self._standardized_context(context))),
            *self.output_transforms(),
        ]

    def output_transforms(self) -> list[Transform]:
        """The transforms from the standardised value to the data's units: the
        standardisation's affine map, then ``exp`` for a node on the log scale."""
        affine = AffineTransform(self.loc, self.scale, event_dim=1)
        return [affine, IndependentTransform(ExpTransform(), 1)] if self.log_value else [affine]

    def transform(self, context: Tensor | None) -> Transform:
        """The composed noise -> value transform in data units."""
        return dist.transforms.ComposeTransform(self.transforms(context))

    def base(self) -> dist.Distribution:
        return dist.Normal(self.loc.new_zeros(self.dim), 1.0).to_event(1)

    def forward(self, context: Tensor | None) -> dist.TransformedDistribution:
        """Return ``p(x | parents)``: batch ``(n,)`` (``()`` for a root), event ``(dim,)``."""
        base = self.base()
        if context is not None and self.context_dim:
            base = base.expand(context.shape[:-1])
        return PushedNoise(base, self.transforms(context))

    def abduct(self, value: Tensor, context: Tensor | None) -> Tensor:
        """Return the noise ``u (n, dim)`` with ``f(u; context) == value``: :meth:`transforms`
        inverted, the last first."""
        if not self.invertible:
            raise ValueError(f"{type(self).__name__} is not invertible")
        for t in reversed(self.transforms(context)):
            value = t.inv(value)
        return value

    def predict(self, noise: Tensor, context: Tensor | None) -> Tensor:
        """Return the value ``f(u; context) (n, dim)`` of noise ``u (n, dim)``: :meth:`transforms`
        applied in order (the inverse of :meth:`abduct`)."""
        for t in self.transforms(context):
            noise = t(noise)
        return noise

    def counterfactual_noise(self, value: Tensor, context: Tensor | None) -> Tensor:
        """The noise ``(n, dim)`` that :meth:`counterfactual_value` reads: :meth:`abduct`'s, or
        a fixed bijection of it (a counterfactual does not depend on how the noise is
        parametrised, so a mechanism may skip an unconditional map its two steps would
        undo)."""
        return self.abduct(value, context)

    def counterfactual_value(self, noise: Tensor, context: Tensor | None) -> Tensor:
        """The value ``(n, dim)`` at ``context`` of :meth:`counterfactual_noise`'s ``noise``."""
        return self.predict(noise, context)

    def _standardized_context(self, context: Tensor | None) -> Tensor | None:
        if context is None or not self.context_dim:
            return None
        if context.shape[-1] != self.context_dim:
            raise ValueError(
                f"context has width {context.shape[-1]}, mechanism expects {self.context_dim}"
            )
        return (self.context_units(context) - self.context_loc) / self.context_scale


class LazyTransform(Transform):
    """A bijection on vectors (event dim 1) built by ``factory()`` the first time it is used."""

    domain = constraints.independent(constraints.real, 1)
    codomain = constraints.independent(constraints.real, 1)
    bijective = True

    def __init__(self, factory: Callable[[], Transform]) -> None:
        super().__init__()
        self._factory = factory
        self._built: Transform | None = None

    @property
    def built(self) -> Transform:
        if self._built is None:
            self._built = self._factory()
        return self._built

    def _call(self, x: Tensor) -> Tensor:
        return self.built(x)

    def _inverse(self, y: Tensor) -> Tensor:
        return self.built.inv(y)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return self.built.log_abs_det_jacobian(x, y)

    def inverse_and_ladj(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(x, log|det dx/dy|)`` for ``y = T(x)``, in one pass when zuko allows it."""
        inverse = self.built.inv
        if hasattr(inverse, "call_and_ladj"):  # zuko transforms
            return inverse.call_and_ladj(y)
        x = inverse(y)
        return x, -self.built.log_abs_det_jacobian(x, y)


class PushedNoise(dist.TransformedDistribution):
    """Pyro's ``TransformedDistribution`` whose ``log_prob`` evaluates each zuko transform once.

    The generic ``log_prob`` calls ``t.inv(y)`` and then ``t.log_abs_det_jacobian(x, y)``,
    which for a conditional spline runs the conditioner and the spline twice; zuko's
    ``call_and_ladj`` returns both in one pass (about 2x faster training).
    """

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        y, lp = value, 0.0
        for t in reversed(self.transforms):
            if isinstance(t, LazyTransform):
                x, ladj = t.inverse_and_ladj(y)
                lp = lp + ladj
            else:
                x = t.inv(y)
                lp = lp - t.log_abs_det_jacobian(x, y)
            y = x
        return lp + self.base_dist.log_prob(y)

    def expand(self, batch_shape: torch.Size, _instance: object = None) -> PushedNoise:
        new = self._get_checked_instance(PushedNoise, _instance)
        return super().expand(batch_shape, _instance=new)
