"""Bayesian linear-Gaussian mechanism: ``x = W c + b + sigma * u`` with priors on W, b, sigma."""

from __future__ import annotations

from typing import Any, ClassVar

from pyro.distributions.transforms import AffineTransform
from torch import Tensor
from torch.distributions import Transform

from scm.mechanisms.bayesian import BayesianMechanism, half_normal_prior, normal_prior


class BayesianLinear(BayesianMechanism):
    """``z_x = weight @ z_c + bias + noise * u`` in standardised units, with priors

    ``weight ~ N(0, weight_scale^2)``, ``bias ~ N(0, bias_scale^2)`` (elementwise) and
    ``noise ~ HalfNormal(noise_scale)``, the weakly informative defaults of Gelman et al.,
    *Bayesian Data Analysis* (3rd ed., 2013, sec. 16.3) for standardised regressors. The
    Gaussian prior on the weights is conditionally conjugate (given ``noise``), so the
    posterior is close to Gaussian and NUTS mixes quickly.

    Sites (inside an SCM): ``"{node}.weight"`` ``(dim, context_dim)`` (not for roots),
    ``"{node}.bias"`` ``(dim,)``, ``"{node}.noise"`` ``(dim,)``.
    """

    kind: ClassVar[str] = "bayes-linear"

    def __init__(
        self,
        dim: int,
        context_dim: int,
        *,
        weight_scale: float = 1.0,
        bias_scale: float = 1.0,
        noise_scale: float = 1.0,
    ) -> None:
        super().__init__(dim, context_dim)
        for name, value in {
            "weight_scale": weight_scale,
            "bias_scale": bias_scale,
            "noise_scale": noise_scale,
        }.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        self.scales = {"weight_scale": weight_scale, "bias_scale": bias_scale}
        self.scales["noise_scale"] = noise_scale
        if context_dim:
            self.declare("weight", normal_prior(weight_scale, dim, context_dim))
        self.declare("bias", normal_prior(bias_scale, dim))
        self.declare("noise", half_normal_prior(noise_scale, dim))

    def config(self) -> dict[str, Any]:
        return {**super().config(), **self.scales}

    def noise_transform(self, context: Tensor | None) -> Transform:
        mean = self.bias if context is None else context @ self.weight.transpose(-1, -2) + self.bias
        return AffineTransform(mean, self.noise, event_dim=1)

    def derived(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """Data-unit coefficients: ``coef (..., dim, context_dim)``, ``intercept``, ``noise_sd``.

        Undoes the standardisation ``z = (x - loc) / scale``: ``x = coef @ c + intercept +
        noise_sd * u``.
        """
        out = {"noise_sd": params["noise"] * self.scale}
        intercept = self.loc + self.scale * params["bias"]
        if self.context_dim:
            coef = params["weight"] * self.scale[:, None] / self.context_scale
            out["coef"] = coef
            intercept = intercept - (coef * self.context_loc).sum(-1)
        out["intercept"] = intercept
        return out
