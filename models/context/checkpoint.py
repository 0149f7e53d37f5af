"""Context-model run checkpoints: the shared run directory of :mod:`models.runio` with format
``cauflow.context-run`` (weights, optimizer state with the torch RNG state, ``run.json``)."""

from __future__ import annotations

import os
from typing import Any

import torch

from models import runio

from .backbone import ConvVAE
from .model import ContextVAE
from .module import ContextModule

FORMAT = "cauflow.context-run"
VERSION = 2  # 1: weights and run.json only, one checksum


def model_config(model: ContextVAE) -> dict[str, Any]:
    """The JSON config that rebuilds ``model`` (``TypeError`` for a non-:class:`ConvVAE`
    backbone: other black boxes are the caller's to save)."""
    if not isinstance(model.backbone, ConvVAE):
        raise TypeError("save_run saves ConvVAE backbones; save other black boxes yourself")
    return {"backbone": model.backbone.config(),
            "module": None if model.module is None else model.module.config(),
            "use_labels": model.use_labels}


def save_run(
    path: str | os.PathLike[str],
    model: ContextVAE,
    record: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
) -> None:
    """Write the run directory (atomically, ``run.json`` last); ``record`` holds the train and
    data config, progress, history and, once trained, the metrics. With ``optimizer`` the run
    can be resumed."""
    runio.save_run(path, format=FORMAT, version=VERSION, state_dict=model.state_dict(),
                   config=model_config(model), record=record, optimizer=optimizer)


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``run.json`` of a run directory; ``ValueError`` if missing or not ours."""
    return runio.read_record(path, format=FORMAT, version=VERSION, what="context-module")


def is_run(path: str | os.PathLike[str]) -> bool:
    return runio.is_run(path, FORMAT)


def _build(spec: dict[str, Any]) -> ContextVAE:
    module = None if spec["module"] is None else ContextModule(
        spec["module"]["n_concepts"], spec["module"]["concept_dim"],
        latent_dim=spec["module"]["latent_dim"], hidden=spec["module"]["hidden"],
        names=spec["module"]["names"])
    return ContextVAE(ConvVAE(**spec["backbone"]), module, use_labels=spec["use_labels"])


def load_run(path: str | os.PathLike[str]) -> tuple[ContextVAE, dict[str, Any]]:
    """The trained model of a run directory (eval mode) and its record (``ValueError`` if
    ``path`` is not a run or its files do not match their checksums)."""
    record = read_record(path)
    model = runio.load_weights(path, record, _build, "context model")
    assert isinstance(model, ContextVAE)
    return model, record


def load_optimizer(
    path: str | os.PathLike[str], optimizer: torch.optim.Optimizer, record: dict[str, Any]
) -> torch.Tensor:
    """Load the optimizer state of a run into ``optimizer``; returns the saved torch RNG state."""
    return runio.load_optimizer(path, optimizer, record)
