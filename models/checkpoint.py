"""CauF-VAE run checkpoints: the shared run directory of :mod:`models.runio` with format
``cauflow.caufvae-run`` (weights, optimizer state with the torch RNG state, ``run.json``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from models import runio
from models.caufvae import CauFVAE
from models.runio import OPTIMIZER, RECORD, WEIGHTS

__all__ = ["OPTIMIZER", "RECORD", "WEIGHTS", "load_model", "load_optimizer", "read_record",
           "save_checkpoint"]

FORMAT = "cauflow.caufvae-run"
VERSION = 1


def save_checkpoint(
    path: str | os.PathLike[str],
    vae: CauFVAE,
    optimizer: torch.optim.Optimizer,
    record: dict[str, Any],
) -> None:
    """Write the three files of a run directory (``record`` holds train config and progress)."""
    runio.save_run(path, format=FORMAT, version=VERSION, state_dict=vae.state_dict(),
                   config=vae.config(), record=record, optimizer=optimizer)


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``run.json`` of a run directory; ``ValueError`` if missing, not ours, or without
    the entries every reader takes (a missing ``train`` was a bare ``KeyError``)."""
    record = runio.read_record(path, format=FORMAT, version=VERSION, what="CauF-VAE")
    missing = [k for k in ("model", "train", "epoch", "step", "history") if k not in record]
    if missing:
        raise ValueError(f"{Path(path) / RECORD} lacks {missing}: an incomplete CauF-VAE "
                         "run record")
    return record


def load_model(path: str | os.PathLike[str]) -> tuple[CauFVAE, dict[str, Any]]:
    """Rebuild the trained model of a run directory (eval mode); returns ``(model, record)``."""
    record = read_record(path)

    def build(config: dict[str, Any]) -> CauFVAE:
        config = dict(config)
        graph, kind, dims = config.pop("graph"), config.pop("kind"), config.pop("dims")
        # Runs saved before the label-conditioned prior existed have no such key and no
        # label-prior weights: they were unconditional, whatever the constructor default is.
        config.setdefault("prior_conditional", False)
        return CauFVAE(graph, kind=kind, dims=dims, **config)

    vae = runio.load_weights(path, record, build, "CauF-VAE")
    assert isinstance(vae, CauFVAE)
    return vae, record


def load_optimizer(
    path: str | os.PathLike[str], optimizer: torch.optim.Optimizer, record: dict[str, Any]
) -> torch.Tensor:
    """Load the optimizer state of a run into ``optimizer``; returns the saved torch RNG state."""
    return runio.load_optimizer(path, optimizer, record)
