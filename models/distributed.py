"""Processes and devices for training: single process, or ``torch.distributed`` under torchrun.

``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; :func:`setup` reads them and
joins the process group (gloo on CPU, NCCL on CUDA). Without them it is a world of one and
nothing is initialised, so the same training code runs either way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.distributed as dist

DeviceName = Literal["cpu", "cuda", "auto"]


@dataclass(frozen=True)
class Context:
    """Where this process trains: its rank among ``world`` processes and its device."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")  # noqa: RUF009 - an immutable default

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def pick_device(device: DeviceName | str = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"``: this process's CUDA device when CUDA is available, else the CPU."""
    if device not in ("cpu", "cuda", "auto"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError("device='cuda' but torch sees no CUDA device; use --device cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def setup(device: DeviceName | str = "auto") -> Context:
    """The process's :class:`Context`, joining the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    where = pick_device(device, local)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if where.type == "cuda" else "gloo"
        if where.type == "cuda":
            torch.cuda.set_device(where)
        dist.init_process_group(backend=backend)
    return Context(rank=rank, world=world, device=where)


def teardown(ctx: Context) -> None:
    """Leave the process group (a no-op for a world of one)."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def shard(batch: torch.Tensor, ctx: Context) -> torch.Tensor:
    """This rank's rows of a global batch of indices: ``batch[rank::world]``.

    Why not ``torch.utils.data.DistributedSampler``: it shards the epoch's permutation, so the
    rows that meet in one optimiser step depend on the number of processes. Sharding each
    global batch keeps the step's rows the same for any world size, which is what makes an
    N-process run reproduce a one-process run with the same global batch and seed.
    """
    return batch[ctx.rank :: ctx.world]


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``python -m cli *argv`` under ``torchrun --standalone`` with ``nproc`` processes on
    this machine; returns torchrun's exit code."""
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc!r}")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "cli", *argv]
    return subprocess.call(cmd)


def without_option(argv: Sequence[str], name: str) -> list[str]:
    """``argv`` less ``name VALUE`` / ``name=VALUE`` (e.g. ``--nproc`` before relaunching the
    same command under torchrun)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return out
