"""Neural additive-noise mechanism: ``x = MLP(c) + sigma * u``."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pyro.distributions.transforms import AffineTransform
from torch import Tensor, nn
from torch.distributions import Transform

from scm.mechanisms.base import Mechanism


class AdditiveNoise(Mechanism):
    """``x = mlp(c) + exp(log_scale) * u``: homoscedastic additive noise, MLP mean."""

    kind: ClassVar[str] = "additive"

    def __init__(self, dim: int, context_dim: int, *, hidden: tuple[int, ...] = (64, 64)) -> None:
        super().__init__(dim, context_dim)
        self.hidden = tuple(hidden)
        self.mlp = mlp(context_dim, dim, self.hidden) if context_dim else None
        self.bias = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "hidden": list(self.hidden)}

    def noise_transform(self, context: Tensor | None) -> Transform:
        mean = self.bias if context is None or self.mlp is None else self.mlp(context) + self.bias
        return AffineTransform(mean, self.log_scale.exp(), event_dim=1)


ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "elu": nn.ELU}
"""Hidden-layer activations a conditioner may use, by the name saved in a model's spec."""


def activation_class(name: str) -> type[nn.Module]:
    """The activation module named ``name``; ``ValueError`` naming the choices otherwise."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def mlp(n_in: int, n_out: int, hidden: tuple[int, ...], activation: str = "relu") -> nn.Sequential:
    """An MLP ``n_in -> hidden... -> n_out`` (``activation`` between layers, a name of
    :data:`ACTIVATIONS`) with a zero-initialised last layer."""
    act = activation_class(activation)
    sizes = [n_in, *hidden]
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), act()]
    last = nn.Linear(sizes[-1], n_out)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)
