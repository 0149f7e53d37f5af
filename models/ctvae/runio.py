"""CT-VAE run directories: safetensors weights and optimizer state plus a JSON record.

Same layout and guarantees as :mod:`models.checkpoint` (each file written atomically,
``run.json`` last with the SHA-256 of the tensor files), with format ``cauflow.ctvae-run``::

    weights.safetensors     CTVAE state_dict (codebooks included)
    optimizer.safetensors   the current phase's Adam tensors and the torch RNG state
    run.json                model config, train config, phase progress, history, checksums
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from scm.io import atomic_write

from .model import CTVAE

FORMAT = "cauflow.ctvae-run"
VERSION = 1
RECORD, WEIGHTS, OPTIMIZER = "run.json", "weights.safetensors", "optimizer.safetensors"
_RNG = "rng.torch"


def is_ctvae_run(path: str | os.PathLike[str]) -> bool:
    """Whether ``path/run.json`` exists and has the CT-VAE format."""
    file = Path(path) / RECORD
    try:
        return json.loads(file.read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def save_run(
    path: str | os.PathLike[str],
    model: CTVAE,
    optimizer: torch.optim.Optimizer,
    record: dict[str, Any],
) -> None:
    """Write the three files of a run directory (``record``: train config, progress, history)."""
    root = Path(path)
    weights = save_tensors({k: v.detach().contiguous() for k, v in model.state_dict().items()})
    tensors: dict[str, torch.Tensor] = {_RNG: torch.get_rng_state()}
    scalars: dict[str, Any] = {}
    state = optimizer.state_dict()
    for index, entry in state["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value.detach().contiguous()
            else:
                scalars[f"state.{index}.{name}"] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
              for g in state["param_groups"]]
    optim_blob = save_tensors(tensors)
    full = {
        "format": FORMAT, "version": VERSION, "model": model.config(), **record,
        "optimizer": {"param_groups": groups, "scalars": scalars},
        "sha256": {WEIGHTS: _sha(weights), OPTIMIZER: _sha(optim_blob)},
    }
    atomic_write(root / WEIGHTS, weights)
    atomic_write(root / OPTIMIZER, optim_blob)
    atomic_write(root / RECORD, json.dumps(full, indent=2).encode())


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``run.json`` of a CT-VAE run; ``ValueError`` if missing or not a CT-VAE run."""
    file = Path(path) / RECORD
    if not file.exists():
        raise ValueError(f"{file} is missing: {path} is not a run directory")
    try:
        record = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{file} is not valid JSON: {err}") from err
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(f"{file} is not a CT-VAE run record (format must be {FORMAT!r})")
    if record.get("version") != VERSION:
        raise ValueError(f"{file} has version {record.get('version')!r}; this code reads {VERSION}")
    return record


def load_run(path: str | os.PathLike[str]) -> tuple[CTVAE, dict[str, Any]]:
    """Rebuild the model of a CT-VAE run (eval mode); returns ``(model, record)``."""
    record = read_record(path)
    state = _read_tensors(Path(path) / WEIGHTS, record)
    try:
        model = CTVAE(**record["model"])
        model.load_state_dict(state, strict=True)
    except (TypeError, RuntimeError) as err:
        raise ValueError(f"{path} does not describe a valid CT-VAE: {err}") from err
    return model.eval(), record


def load_optimizer_state(
    path: str | os.PathLike[str], optimizer: torch.optim.Optimizer, record: dict[str, Any]
) -> torch.Tensor:
    """Load the saved optimizer state into ``optimizer``; returns the saved torch RNG state."""
    tensors = _read_tensors(Path(path) / OPTIMIZER, record)
    rng = tensors.pop(_RNG)
    saved = record["optimizer"]
    state: dict[int, dict[str, Any]] = {}
    for source in (tensors, saved["scalars"]):
        for key, value in source.items():
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    groups = [dict(g, betas=tuple(g["betas"])) if "betas" in g else dict(g)
              for g in saved["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    return rng


def _read_tensors(file: Path, record: dict[str, Any]) -> dict[str, torch.Tensor]:
    if not file.exists():
        raise ValueError(f"{file} is missing")
    blob = file.read_bytes()
    if _sha(blob) != record.get("sha256", {}).get(file.name):
        raise ValueError(f"{file} does not match the checksum in {RECORD}: altered or truncated")
    try:
        return load_tensors(blob)
    except SafetensorError as err:
        raise ValueError(f"{file} is not a readable safetensors file: {err}") from err


def _sha(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()
