"""The training loop every model shares: seeded global batches, optional DistributedDataParallel,
mixed precision on CUDA, gradient clipping, progress and throughput.

A model enters as a *loss module*: ``forward(rows)`` takes a 1-D tensor of row indices into
the training set and returns the loss **summed** over those rows. The loop owns the optimiser,
the order of the rows and the processes; checkpoints, evaluation and logging stay with the
caller, which runs :meth:`Loop.epoch` once per epoch and decides what to write (on rank 0).

Equivalence across process counts: every rank draws the same permutation (seeded by
``seed`` and the epoch), cuts it into the same global batches and takes its shard of each
(:func:`models.distributed.shard`); DDP averages gradients over ranks, so each rank's loss is
multiplied by the world size and the update equals the one-process update on the global batch.

Data: the loop hands out row indices, never copies of rows. Every trainer holds its rendered
set as one uint8 tensor and gathers a batch by indexing (converting to float on the device), so
there is no per-item decoding or augmentation for ``DataLoader`` worker processes to overlap;
gathering and converting a batch of 64 32-px pendulum images takes 0.4 ms against 234 ms for
the CauF-VAE step on it (0.2%, one thread), and workers would only add inter-process copies.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from models.distributed import Context, shard


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[Tensor]:
    """The global batches of one epoch: a permutation of ``range(n)`` seeded by ``(seed,
    epoch)``, cut into runs of ``batch_size`` (the last may be shorter)."""
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=gen)
    return [perm[i : i + batch_size] for i in range(0, n, batch_size)]


@dataclass
class EpochStats:
    """What :meth:`Loop.epoch` returns: mean loss per row on this rank, steps and rows taken
    (all ranks), wall seconds and rows per second (all ranks)."""

    loss: float
    steps: int
    rows: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / max(self.seconds, 1e-9)


class Loop:
    """Optimiser and process plumbing around a loss module.

    Args:
        module: ``forward(rows (b,)) -> loss`` summed over the rows; an attribute
            ``has_unused_parameters = True`` tells DDP that some parameters may get no gradient.
        ctx: the process context (:func:`models.distributed.setup`).
        lr: Adam learning rate.
        optimizer: ``params -> torch.optim.Optimizer`` instead of Adam.
        grad_clip: clip the gradient norm to this (``None``: no clipping).
        amp: autocast the forward pass to bfloat16 (CUDA only; ignored on CPU).
    """

    def __init__(
        self,
        module: nn.Module,
        ctx: Context | None = None,
        *,
        lr: float = 1e-3,
        grad_clip: float | None = 10.0,
        amp: bool = False,
        optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer] | None = None,
    ) -> None:
        self.module = module
        self.make_optimizer = optimizer or (lambda ps: torch.optim.Adam(ps, lr=self.lr))
        self.ctx = ctx or Context()
        self.lr, self.grad_clip = lr, grad_clip
        self.amp = amp and self.ctx.device.type == "cuda"
        self.rebuild()

    def rebuild(self) -> None:
        """A fresh optimiser (and DDP wrapper) over the module's current trainable parameters;
        call it after the module swapped some of its parts."""
        self.params = [p for p in self.module.parameters() if p.requires_grad]
        self.optimizer = self.make_optimizer(self.params)
        self.forward: nn.Module = self.module
        if self.ctx.distributed:
            # A module that leaves some parameters idle in a phase (the edgeless prior while a
            # graph is learned) says so; DDP then looks for them after every backward pass.
            unused = bool(getattr(self.module, "has_unused_parameters", False))
            self.forward = DistributedDataParallel(self.module, find_unused_parameters=unused)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step(self, rows: Tensor) -> float:
        """One optimiser step on this rank's ``rows``; returns their summed loss."""
        with self._autocast():
            loss = self.forward(rows)
        if not bool(torch.isfinite(loss)):
            # a NaN loss would be logged and checkpointed as if training went on (lr 1e6, or
            # NaN factors, finished with exit 0 and NaN in every weight)
            raise FloatingPointError(
                f"training loss became {float(loss.detach())}; lower the learning rate or "
                "check the data for NaN or infinite values"
            )
        self.optimizer.zero_grad()
        (loss * self.ctx.world).backward()
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.optimizer.step()
        return float(loss.detach())

    def epoch(
        self,
        epoch: int,
        n: int,
        batch_size: int,
        seed: int,
        *,
        limit: int | None = None,
        progress: bool = False,
        desc: str = "",
    ) -> EpochStats:
        """Run the epoch's global batches (at most ``limit`` of them) through :meth:`step`."""
        batches = epoch_batches(n, batch_size, seed, epoch)
        if limit is not None:
            batches = batches[:limit]
        start, total, seen = time.perf_counter(), 0.0, 0
        bar = tqdm(batches, desc=desc, disable=not (progress and self.ctx.is_main), leave=False)
        for batch in _as_iter(bar):
            rows = shard(batch, self.ctx)
            total += self.step(rows)
            seen += len(rows)
            bar.set_postfix(loss=f"{total / max(seen, 1):.1f}")
        seconds = time.perf_counter() - start
        return EpochStats(loss=total / max(seen, 1), steps=len(batches),
                          rows=sum(len(b) for b in batches), seconds=seconds)


def _as_iter(bar: tqdm) -> Iterator[Tensor]:
    yield from bar
