"""Collectives that make every process see one global batch, for the state DDP does not average:
the EMA codebooks of :class:`~models.ctvae.quantizer.MultiQuantizer` and the epoch's metrics.

Each rank holds the shard ``batch[rank::world]`` of a global batch
(:func:`models.distributed.shard`). Outside a process group (or in a world of one) both
functions return their input, so the same code runs in one process.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def world_size() -> int:
    """Processes in the default group; 1 when none is initialised."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_sum(tensor: Tensor) -> Tensor:
    """``tensor`` summed over ranks, in place (same shape); returned for chaining."""
    if world_size() > 1:
        dist.all_reduce(tensor)
    return tensor


def gather_rows(rows: Tensor) -> Tensor:
    """The global batch ``(n_global, ...)`` from every rank's shard ``rows (n_local, ...)``, in
    the global batch's order: global row ``j`` is row ``j // world`` of rank ``j % world``.

    Shards differ in length by at most one row, so each rank pads to the longest first
    (``all_gather`` takes equal shapes).
    """
    world = world_size()
    if world == 1:
        return rows
    size = torch.tensor([len(rows)], device=rows.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    counts = [int(s) for s in sizes]
    padded = rows.new_zeros((max(counts), *rows.shape[1:]))
    padded[: len(rows)] = rows
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    out = rows.new_empty((sum(counts), *rows.shape[1:]))
    for rank, (part, count) in enumerate(zip(parts, counts, strict=True)):
        out[rank::world] = part[:count]
    return out
