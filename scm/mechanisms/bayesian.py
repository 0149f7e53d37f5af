"""The Bayesian-mechanism contract: a mechanism whose parameters are Pyro sample sites.

Parameters are declared as :class:`pyro.nn.PyroSample` priors, so each call of the
mechanism inside ``scm.model`` draws them as global sites named ``"{node}.{parameter}"``
(the SCM keeps Bayesian mechanisms in a ``PyroModule`` container, which names them). Under
``poutine.condition(data=posterior_draw)`` the same call evaluates the mechanism at one
posterior draw; under NUTS or SVI the sites are the latent variables being inferred.
"""

from __future__ import annotations

from typing import ClassVar

import pyro.distributions as dist
import torch
from pyro.nn import PyroModule, PyroSample
from torch import Tensor
from torch.distributions import Transform

from scm.mechanisms.base import Mechanism, PushedNoise


class BayesianMechanism(Mechanism, PyroModule):
    """A :class:`Mechanism` whose weights are random: ``x = loc + scale * f_theta(u; c)``.

    Subclasses declare priors with :meth:`declare` and implement :meth:`noise_transform`
    (standardised units) by reading their parameters as attributes. Unlike the point-estimate
    mechanisms the transforms are built eagerly in :meth:`forward`, inside the PyroModule
    call, so that parameter sites are recorded there (outside the ``rows`` plate).
    """

    kind: ClassVar[str] = "bayes-base"
    bayesian: ClassVar[bool] = True

    def __init__(self, dim: int, context_dim: int) -> None:
        super().__init__(dim, context_dim)
        self.latent_sizes: dict[str, int] = {}

    def declare(self, name: str, prior: dist.Distribution) -> None:
        """Declare parameter ``name`` with ``prior`` (its whole shape is the event shape)."""
        self.latent_sizes[name] = int(torch.Size(prior.event_shape).numel())
        setattr(self, name, PyroSample(prior))

    @property
    def latent_size(self) -> int:
        """Number of scalar latent parameters of this mechanism (what NUTS must explore)."""
        return sum(self.latent_sizes.values())

    def derived(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """Data-unit quantities computed from draws ``{name: (..., *shape)}``; none by default."""
        return {}

    def forward(self, context: Tensor | None) -> dist.TransformedDistribution:
        """Return ``p(x | parents, theta)`` for the current draw of ``theta``."""
        base = self.base()
        if context is not None and self.context_dim:
            base = base.expand(context.shape[:-1])
        inner = self.noise_transform(self._standardized_context(context))
        return PushedNoise(base, [inner, *self.output_transforms()])

    def noise_transform(self, context: Tensor | None) -> Transform:
        raise NotImplementedError


def normal_prior(scale: float, *shape: int) -> dist.Distribution:
    """``Normal(0, scale)`` over a whole array of ``shape`` (one event)."""
    return dist.Normal(0.0, float(scale)).expand(list(shape)).to_event(len(shape))


def half_normal_prior(scale: float, *shape: int) -> dist.Distribution:
    """``HalfNormal(scale)`` over a whole array of ``shape`` (one event)."""
    return dist.HalfNormal(float(scale)).expand(list(shape)).to_event(len(shape))
