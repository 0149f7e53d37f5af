"""Linear-Gaussian mechanism: ``x = W c + b + sigma * u``."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pyro.distributions.transforms import AffineTransform
from torch import Tensor, nn
from torch.distributions import Transform

from scm.mechanisms.base import Mechanism


class LinearGaussian(Mechanism):
    """``x = weight @ c + bias + exp(log_scale) * u`` (in standardised units once fitted).

    Hand-set values are in data units when the mechanism is not fitted:
    ``LinearGaussian(1, 2, weight=[[2.0, -1.0]], bias=[0.5], scale=[0.3])``.
    """

    kind: ClassVar[str] = "linear"

    def __init__(
        self,
        dim: int,
        context_dim: int,
        *,
        weight: Any = None,
        bias: Any = None,
        scale: Any = None,
    ) -> None:
        super().__init__(dim, context_dim)
        self.weight = nn.Parameter(_init((dim, context_dim), weight, 0.0))
        self.bias = nn.Parameter(_init((dim,), bias, 0.0))
        self.log_scale = nn.Parameter(_init((dim,), scale, 1.0).log())

    def noise_transform(self, context: Tensor | None) -> Transform:
        mean = self.bias if context is None else context @ self.weight.T + self.bias
        return AffineTransform(mean, self.log_scale.exp(), event_dim=1)


def _init(shape: tuple[int, ...], given: Any, fill: float) -> Tensor:
    if given is None:
        return torch.full(shape, fill)
    t = torch.as_tensor(given, dtype=torch.get_default_dtype())
    if t.numel() != torch.Size(shape).numel():
        raise ValueError(f"expected {shape} values, got shape {tuple(t.shape)}")
    return t.reshape(shape).clone()
