"""Conditional normalizing-flow mechanism: ``x = T(u; parents)`` with a neural spline flow.

Why zuko and not ``pyro.distributions.transforms``: both offer conditional rational-quadratic
splines with analytic inverses (exact abduction). zuko is maintained (Pyro's flow module is
frozen and its tutorials point to zuko), its transforms are plain ``torch.distributions``
transforms that drop into Pyro's ``TransformedDistribution``, it supports adjacency-masked
autoregressive transforms (causal flows over vector nodes), and ``bench/flow_backends.py``
measured it 1.4x faster per training step than Pyro's ``conditional_spline`` (16.3 vs 22.5 ms,
batch 512, one thread) for the same held-out NLL (0.538 vs 0.533 nats after 1,500 steps).
"""

from __future__ import annotations

from typing import Any, ClassVar

import zuko
from torch import Tensor
from torch.distributions import Transform

from scm.mechanisms.base import Mechanism


class FlowMechanism(Mechanism):
    """``x = T(u; c)``: a stack of monotonic rational-quadratic spline transforms
    (Durkan et al., "Neural spline flows", 2019) whose parameters are MLPs of the parents.

    For a vector node the stack is autoregressive over its ``dim`` coordinates (MAF
    ordering, reversed between layers), so it models dependent coordinates.

    Args:
        dim: the node's width.
        context_dim: total width of its parents.
        transforms: number of spline layers; default 1 for a scalar node (one monotone
            spline conditioned on the parents already represents any smooth conditional
            CDF) and 3 for a vector node (autoregressive layers with reversed orders).
        bins: spline bins; splines cover [-5, 5] in standardised units, identity outside.
        hidden: conditioner MLP widths. Measured on the zoo (5,000 rows, default fit), one
            layer of width (32, 32) fits as well as two of (64, 64) at about 2.5x less time.
    """

    kind: ClassVar[str] = "flow"

    def __init__(
        self,
        dim: int,
        context_dim: int,
        *,
        transforms: int | None = None,
        bins: int = 8,
        hidden: tuple[int, ...] = (32, 32),
    ) -> None:
        super().__init__(dim, context_dim)
        transforms = transforms if transforms is not None else (1 if dim == 1 else 3)
        self.n_transforms, self.bins, self.hidden = transforms, bins, tuple(hidden)
        self.flow = zuko.flows.NSF(
            dim, context_dim, bins=bins, transforms=transforms, hidden_features=self.hidden
        )

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "transforms": self.n_transforms,
            "bins": self.bins,
            "hidden": list(self.hidden),
        }

    def noise_transform(self, context: Tensor | None) -> Transform:
        # zuko's transforms map data -> noise; the mechanism pushes noise -> data.
        return self.flow(context).transform.inv
