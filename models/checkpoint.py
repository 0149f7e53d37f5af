"""Run checkpoints: safetensors weights and optimizer state plus a JSON record (never pickle).

A run directory holds::

    weights.safetensors     the model's state_dict
    optimizer.safetensors   the optimizer's tensors (``state.{i}.{key}``) and the torch RNG state
    run.json                model config, training config, progress, history, and the
                            SHA-256 of both tensor files (written last)

Each file is written with :func:`scm.io.atomic_write`; ``run.json`` comes last and names the
checksums of the tensor files it belongs to, so an interrupted save leaves the previous
checkpoint readable or is detected as inconsistent.
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

from models.caufvae import CauFVAE
from scm.io import atomic_write

FORMAT = "cauflow.caufvae-run"
VERSION = 1
RECORD, WEIGHTS, OPTIMIZER = "run.json", "weights.safetensors", "optimizer.safetensors"
_RNG = "rng.torch"


def save_checkpoint(
    path: str | os.PathLike[str],
    vae: CauFVAE,
    optimizer: torch.optim.Optimizer,
    record: dict[str, Any],
) -> None:
    """Write the three files of a run directory (``record`` holds train config and progress)."""
    root = Path(path)
    weights = save_tensors({k: v.detach().contiguous() for k, v in vae.state_dict().items()})
    tensors, groups, scalars = _flatten_optimizer(optimizer.state_dict())
    tensors[_RNG] = torch.get_rng_state()
    optim_blob = save_tensors(tensors)
    full = {
        "format": FORMAT,
        "version": VERSION,
        "model": vae.config(),
        **record,
        "optimizer": {"param_groups": groups, "scalars": scalars},
        "sha256": {WEIGHTS: _sha(weights), OPTIMIZER: _sha(optim_blob)},
    }
    atomic_write(root / WEIGHTS, weights)
    atomic_write(root / OPTIMIZER, optim_blob)
    atomic_write(root / RECORD, json.dumps(full, indent=2).encode())


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``run.json`` of a run directory; ``ValueError`` if missing or not ours."""
    file = Path(path) / RECORD
    if not file.exists():
        raise ValueError(f"{file} is missing: {path} is not a CauF-VAE run directory")
    try:
        record = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{file} is not valid JSON: {err}") from err
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(f"{file} is not a CauF-VAE run record (format must be {FORMAT!r})")
    if record.get("version") != VERSION:
        raise ValueError(f"{file} has version {record.get('version')!r}; this code reads {VERSION}")
    return record


def load_model(path: str | os.PathLike[str]) -> tuple[CauFVAE, dict[str, Any]]:
    """Rebuild the trained model of a run directory; returns ``(model, record)``."""
    record = read_record(path)
    state = _read_tensors(Path(path) / WEIGHTS, record)
    config = dict(record["model"])
    graph, kind, dims = config.pop("graph"), config.pop("kind"), config.pop("dims")
    try:
        vae = CauFVAE(graph, kind=kind, dims=dims, **config)
        vae.load_state_dict(state, strict=True)
    except (TypeError, RuntimeError) as err:
        raise ValueError(f"{path} does not describe a valid CauF-VAE: {err}") from err
    vae.eval()
    return vae, record


def load_optimizer(
    path: str | os.PathLike[str], optimizer: torch.optim.Optimizer, record: dict[str, Any]
) -> torch.Tensor:
    """Load the optimizer state of a run into ``optimizer``; returns the saved torch RNG state."""
    tensors = _read_tensors(Path(path) / OPTIMIZER, record)
    rng = tensors.pop(_RNG)
    saved = record["optimizer"]
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for key, value in saved["scalars"].items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    groups = [dict(g, betas=tuple(g["betas"])) if "betas" in g else dict(g)
              for g in saved["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    return rng


def _flatten_optimizer(
    state_dict: dict[str, Any],
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]], dict[str, Any]]:
    tensors, scalars = {}, {}
    for index, entry in state_dict["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value.detach().contiguous()
            else:
                scalars[f"state.{index}.{name}"] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
              for g in state_dict["param_groups"]]
    return tensors, groups, scalars


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
