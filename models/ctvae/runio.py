"""CT-VAE run directories: the shared run directory of :mod:`models.runio` with format
``cauflow.ctvae-run``::

    weights.safetensors     CTVAE state_dict (codebooks included)
    optimizer.safetensors   the current phase's Adam tensors and the torch RNG state
    run.json                model config, train config, phase progress, history, checksums
"""

from __future__ import annotations

import os
from typing import Any

import torch

from models import runio
from models.runio import OPTIMIZER, RECORD, WEIGHTS

from .model import CTVAE

__all__ = ["OPTIMIZER", "RECORD", "WEIGHTS", "is_ctvae_run", "load_optimizer_state", "load_run",
           "read_record", "save_run"]

FORMAT = "cauflow.ctvae-run"
VERSION = 1


def is_ctvae_run(path: str | os.PathLike[str]) -> bool:
    """Whether ``path/run.json`` exists and has the CT-VAE format."""
    return runio.is_run(path, FORMAT)


def save_run(
    path: str | os.PathLike[str],
    model: CTVAE,
    optimizer: torch.optim.Optimizer,
    record: dict[str, Any],
) -> None:
    """Write the three files of a run directory (``record``: train config, progress, history)."""
    runio.save_run(path, format=FORMAT, version=VERSION, state_dict=model.state_dict(),
                   config=model.config(), record=record, optimizer=optimizer)


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``run.json`` of a CT-VAE run; ``ValueError`` if missing or not a CT-VAE run."""
    return runio.read_record(path, format=FORMAT, version=VERSION, what="CT-VAE")


def load_run(path: str | os.PathLike[str]) -> tuple[CTVAE, dict[str, Any]]:
    """Rebuild the model of a CT-VAE run (eval mode, on the CPU); returns ``(model, record)``."""
    record = read_record(path)
    model = runio.load_weights(path, record, lambda config: CTVAE(**config), "CT-VAE")
    assert isinstance(model, CTVAE)
    return model, record


def load_optimizer_state(
    path: str | os.PathLike[str], optimizer: torch.optim.Optimizer, record: dict[str, Any]
) -> torch.Tensor:
    """Load the saved optimizer state into ``optimizer``; returns the saved torch RNG state."""
    return runio.load_optimizer(path, optimizer, record)
