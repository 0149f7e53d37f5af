"""Posterior draws of an SCM's parameters, as found by NUTS or SVI."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor


@dataclass
class Posterior:
    """Draws of every parameter site, grouped by chain.

    Attributes:
        samples: ``{site: tensor (chains, draws, *site_shape)}``, e.g. ``"x2.weight"`` of
            shape ``(4, 500, 1, 1)``. Values are in the mechanisms' standardised units.
        method: ``"nuts"`` or ``"svi"`` (SVI draws come from the fitted guide, one "chain").
        observed: the training data ``{node: (n, dim)}`` (for ArviZ's observed data, log
            likelihood and predictive checks).
        sample_stats: per-draw statistics ``{name: tensor (chains, draws)}``, e.g.
            ``diverging`` and ``step_size`` after NUTS.
        settings: the inference settings, JSON-able (saved with the draws).
    """

    samples: dict[str, Tensor]
    method: Literal["nuts", "svi"]
    observed: dict[str, Tensor]
    sample_stats: dict[str, Tensor] = field(default_factory=dict)
    settings: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shapes = {tuple(v.shape[:2]) for v in self.samples.values()}
        if len(shapes) != 1:
            raise ValueError(f"posterior sites disagree on (chains, draws): {sorted(shapes)}")

    @property
    def num_chains(self) -> int:
        return next(iter(self.samples.values())).shape[0]

    @property
    def num_draws(self) -> int:
        return next(iter(self.samples.values())).shape[1]

    def draws(self) -> Iterator[tuple[int, int, dict[str, Tensor]]]:
        """Yield ``(chain, draw, {site: value})`` for every posterior draw, chain by chain."""
        for c in range(self.num_chains):
            for d in range(self.num_draws):
                yield c, d, {k: v[c, d] for k, v in self.samples.items()}

    def site_draws(self, prefix: str) -> dict[str, Tensor]:
        """``{parameter: (chains, draws, ...)}`` of the sites named ``"{prefix}.{parameter}"``."""
        start = prefix + "."
        return {k[len(start) :]: v for k, v in self.samples.items() if k.startswith(start)}

    def thin(self, max_draws: int) -> Posterior:
        """A posterior with at most ``max_draws`` draws per chain, evenly spaced."""
        if max_draws < 1:
            raise ValueError(f"max_draws must be >= 1, got {max_draws}")
        if self.num_draws <= max_draws:
            return self
        idx = torch.linspace(0, self.num_draws - 1, max_draws).round().long()
        return Posterior(
            {k: v[:, idx] for k, v in self.samples.items()},
            self.method,
            self.observed,
            {k: v[:, idx] for k, v in self.sample_stats.items()},
            dict(self.settings),
        )
