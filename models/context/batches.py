"""Seeded context-labelled global batches for the context trainer, and their noise.

Every training image carries its context (Markham et al., arXiv 2507.04754, Sec. 3) and the
module switches its architecture to it *per row*. The training objective is the sum over
contexts of each context's ELBO; how rows are grouped into batches only changes the variance
of its stochastic gradient. Two batchings:

* ``"mixed"`` (the default of every module method): rows drawn uniformly from the whole
  training set, each labelled with its own context -- exactly the rows the pooled base VAE
  draws with the same seed;
* ``"contexts"``: one context per batch, drawn uniformly. Contexts differ in their image
  distribution (an intervened quadrant takes other colours), so successive gradients jump
  between the contexts' directions: at 600 Adam steps on quad this batching leaves even the
  base VAE reconstructing at MSE 0.039 instead of 0.015 (seed 0), an optimisation handicap
  that the module methods carried and the pooled baselines did not.

Like :func:`models.loop.epoch_batches`, an epoch's batches depend only on ``(seed, epoch)``: a
resumed run draws exactly the batches the straight run would have, whatever happened before.

Each batch also carries a seed for its *noise* (the uniform dequantisation and the posterior
draw of every row). Every process draws the noise of the whole global batch and keeps its
shard's rows, so a row sees the same noise whether one process or N train: that is what makes
an N-process run reproduce the one-process run (the loss is a function of the rows alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from models.data.quad import Context, QuadSet

Pooling = Literal["mixed", "contexts", "observational", "pooled"]
POOLINGS: tuple[str, ...] = ("mixed", "contexts", "observational", "pooled")

_MAX_SEED = 2**62


@dataclass(frozen=True)
class ContextBatch:
    """One global batch: image ``rows (B,)``, their ``labels (B,)`` (indices into
    ``contexts``: row ``j`` is scored in context ``contexts[labels[j]]``) and the seed of its
    noise."""

    rows: Tensor
    labels: Tensor
    contexts: tuple[Context, ...]
    noise_seed: int

    def row_contexts(self, pos: Tensor | None = None) -> list[Context]:
        """The context of each row (of rows ``pos`` of the batch, default all)."""
        labels = self.labels if pos is None else self.labels[pos]
        return [self.contexts[int(i)] for i in labels]

    def noise(self, shape: tuple[int, int, int], width: int) -> tuple[Tensor, Tensor]:
        """The batch's noise, the same in every process: uniform ``(B, *shape)`` in [0, 1)
        for dequantisation and standard normal ``(B, width)`` for the posterior draw."""
        gen = torch.Generator().manual_seed(self.noise_seed)
        uniform = torch.rand((len(self.rows), *shape), generator=gen)
        return uniform, torch.randn(len(self.rows), width, generator=gen)


def context_batches(
    data: QuadSet,
    *,
    pooling: Pooling,
    batch_size: int,
    steps: int,
    seed: int,
    epoch: int,
) -> list[ContextBatch]:
    """``steps`` global batches of ``batch_size`` rows for epoch ``epoch``, seeded by
    ``(seed, epoch)``.

    ``pooling``: ``"mixed"`` takes rows of every context, each labelled with its own;
    ``"contexts"`` draws a training context uniformly per batch, then its rows;
    ``"observational"`` takes rows of the observational context ``()`` only; ``"pooled"`` takes
    rows of every context, labelled ``()``. ``"mixed"`` and ``"pooled"`` draw the same rows for
    the same ``(seed, epoch)``. Rows are distinct within a batch (a pool with fewer than
    ``batch_size`` images is drawn with replacement).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}; got {pooling!r}")
    if batch_size < 1 or steps < 0:
        raise ValueError(f"batch_size must be >= 1 and steps >= 0; got {batch_size}, {steps}")
    context = torch.as_tensor(data.context)
    if pooling in ("pooled", "mixed"):
        pools = [(torch.arange(len(data)), ())]
    elif pooling == "observational":
        if () not in data.contexts:
            raise ValueError("base-obs needs an observational context () in the training data")
        pools = [(torch.nonzero(context == data.contexts.index(())).flatten(), ())]
    else:
        pools = [(torch.nonzero(context == i).flatten(), c) for i, c in enumerate(data.contexts)]
    for pool, ctx in pools:
        if len(pool) == 0:
            raise ValueError(f"the training data has no images of context {ctx!r}")
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)  # as models.loop.epoch_batches
    out = []
    for _ in range(steps):
        pool, ctx = pools[int(torch.randint(len(pools), (1,), generator=gen))]
        if len(pool) >= batch_size:
            pick = torch.randperm(len(pool), generator=gen)[:batch_size]
        else:
            pick = torch.randint(len(pool), (batch_size,), generator=gen)
        noise_seed = int(torch.randint(_MAX_SEED, (1,), generator=gen))
        rows = pool[pick]
        if pooling == "mixed":
            batch = ContextBatch(rows, context[rows].long(), tuple(data.contexts), noise_seed)
        else:
            batch = ContextBatch(rows, torch.zeros(len(rows), dtype=torch.long), (ctx,),
                                 noise_seed)
        out.append(batch)
    return out
