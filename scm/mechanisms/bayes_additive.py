"""Bayesian additive-noise MLP mechanism: ``x = MLP_theta(c) + sigma * u`` with weight priors."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from pyro.distributions.transforms import AffineTransform
from torch import Tensor
from torch.distributions import Transform

from scm.mechanisms.bayesian import BayesianMechanism, half_normal_prior, normal_prior


class BayesianAdditive(BayesianMechanism):
    """A Bayesian neural network mean with homoscedastic Gaussian noise (standardised units).

    Every weight has a Gaussian prior scaled by ``1/sqrt(fan_in)`` (Neal, *Bayesian Learning
    for Neural Networks*, 1996, ch. 2: the scaling keeps the prior over functions stable as
    layers widen); the noise scale has a ``HalfNormal(noise_scale)`` prior. Hidden layers
    use ``tanh`` (smooth, so NUTS sees a smooth posterior surface).

    Sites (inside an SCM): ``"{node}.w{i}"`` and ``"{node}.b{i}"`` per layer (not for roots),
    ``"{node}.bias"`` ``(dim,)`` and ``"{node}.noise"`` ``(dim,)``. The latent dimension grows
    fast with ``hidden``: NUTS suits a few hundred parameters; use SVI beyond that.
    """

    kind: ClassVar[str] = "bayes-additive"

    def __init__(
        self,
        dim: int,
        context_dim: int,
        *,
        hidden: tuple[int, ...] = (16,),
        weight_scale: float = 1.0,
        noise_scale: float = 1.0,
    ) -> None:
        super().__init__(dim, context_dim)
        if not (weight_scale > 0 and noise_scale > 0):
            raise ValueError(
                f"weight_scale and noise_scale must be positive, got {weight_scale!r}, "
                f"{noise_scale!r}"
            )
        self.hidden = tuple(int(h) for h in hidden)
        self.weight_scale, self.noise_scale = weight_scale, noise_scale
        self.layers = 0
        if context_dim:
            sizes = [context_dim, *self.hidden, dim]
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
                self.declare(f"w{i}", normal_prior(weight_scale / math.sqrt(a), b, a))
                if i < len(sizes) - 2:  # the output layer's bias is `bias` below
                    self.declare(f"b{i}", normal_prior(1.0, b))
            self.layers = len(sizes) - 1
        self.declare("bias", normal_prior(1.0, dim))
        self.declare("noise", half_normal_prior(noise_scale, dim))

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "hidden": list(self.hidden),
            "weight_scale": self.weight_scale,
            "noise_scale": self.noise_scale,
        }

    def noise_transform(self, context: Tensor | None) -> Transform:
        mean = self.bias
        if context is not None and self.layers:
            h = context
            for i in range(self.layers):
                h = h @ getattr(self, f"w{i}").transpose(-1, -2)
                if i < self.layers - 1:
                    h = torch.tanh(h + getattr(self, f"b{i}"))
            mean = h + self.bias
        return AffineTransform(mean, self.noise, event_dim=1)
