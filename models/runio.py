"""Run directories shared by every trainer: safetensors weights and optimizer state plus a JSON
record (never pickle).

A run directory holds::

    weights.safetensors     the model's state_dict
    optimizer.safetensors   the optimizer's tensors (``state.{i}.{key}``) and the torch RNG state
                            (absent for runs saved without an optimizer)
    run.json                format, version, model config, training config, progress, history
                            and the SHA-256 of the tensor files (written last)

Each file is written with :func:`scm.io.atomic_write`; ``run.json`` comes last and names the
checksums of the tensor files it belongs to, so an interrupted save leaves the previous
checkpoint readable or is detected as inconsistent. Each model family has its own ``format``
string (``cauflow.caufvae-run``, ``cauflow.ctvae-run``, ...), checked on reading.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from scm.io import atomic_write

RECORD, WEIGHTS, OPTIMIZER = "run.json", "weights.safetensors", "optimizer.safetensors"
_RNG = "rng.torch"


def save_run(
    path: str | os.PathLike[str],
    *,
    format: str,
    version: int,
    state_dict: Mapping[str, torch.Tensor],
    config: Any,
    record: Mapping[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
) -> None:
    """Write a run directory: weights, optimizer state with the torch RNG state (when
    ``optimizer`` is given), then ``run.json`` = ``{format, version, model: config, **record,
    optimizer, sha256}``."""
    root = Path(path)
    weights = save_tensors({k: v.detach().contiguous() for k, v in state_dict.items()})
    full: dict[str, Any] = {"format": format, "version": version, "model": config, **record}
    sha = {WEIGHTS: _sha(weights)}
    blob = None
    if optimizer is not None:
        tensors, groups, scalars = _flatten_optimizer(optimizer.state_dict())
        tensors[_RNG] = torch.get_rng_state()
        blob = save_tensors(tensors)
        full["optimizer"] = {"param_groups": groups, "scalars": scalars}
        sha[OPTIMIZER] = _sha(blob)
    full["sha256"] = sha
    full["record_sha256"] = _record_sha(full)
    atomic_write(root / WEIGHTS, weights)
    if blob is not None:
        atomic_write(root / OPTIMIZER, blob)
    atomic_write(root / RECORD, json.dumps(full, indent=2, default=_jsonable).encode())


def is_run(path: str | os.PathLike[str], format: str) -> bool:
    """Whether ``path/run.json`` exists and has this ``format``."""
    try:
        return json.loads((Path(path) / RECORD).read_text()).get("format") == format
    except (OSError, ValueError, AttributeError):
        return False


def read_record(
    path: str | os.PathLike[str], *, format: str, version: int, what: str
) -> dict[str, Any]:
    """The ``run.json`` of a run directory; ``ValueError`` naming ``what`` (e.g. "CauF-VAE")
    if it is missing, not JSON, of another format or of another version."""
    file = Path(path) / RECORD
    if not file.exists():
        raise ValueError(f"{file} is missing: {path} is not a {what} run directory")
    try:
        record = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{file} is not valid JSON: {err}") from err
    if not isinstance(record, dict) or record.get("format") != format:
        raise ValueError(f"{file} is not a {what} run record (format must be {format!r})")
    if record.get("version") != version:
        raise ValueError(f"{file} has version {record.get('version')!r}; this code reads {version}")
    # an edited train.image_size resumed into a long traceback (runs written before the
    # checksum carry none and are read as they are)
    if "record_sha256" in record and record["record_sha256"] != _record_sha(record):
        raise ValueError(f"{file} was edited after it was written (its settings no longer match "
                         "record_sha256): restore it, or start a new run")
    return record


def read_weights(
    path: str | os.PathLike[str], record: Mapping[str, Any]
) -> dict[str, torch.Tensor]:
    """The saved state_dict, checked against the record's checksum."""
    return _read_tensors(Path(path) / WEIGHTS, record)


def load_weights(
    path: str | os.PathLike[str],
    record: Mapping[str, Any],
    build: Callable[[Any], torch.nn.Module],
    what: str,
) -> torch.nn.Module:
    """``build(record["model"])`` with the saved weights loaded (strict), in eval mode;
    ``ValueError`` naming ``what`` when the config or the weights do not fit."""
    state = read_weights(path, record)
    try:
        model = build(record["model"])
        model.load_state_dict(state, strict=True)
    except (TypeError, KeyError, RuntimeError) as err:
        raise ValueError(f"{path} does not describe a valid {what}: {err}") from err
    return model.eval()


def load_optimizer(
    path: str | os.PathLike[str], optimizer: torch.optim.Optimizer, record: Mapping[str, Any]
) -> torch.Tensor:
    """Load the saved optimizer state into ``optimizer``; returns the saved torch RNG state."""
    if "optimizer" not in record:
        raise ValueError(f"{path} was saved without optimizer state: it cannot be resumed")
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


def _flatten_optimizer(
    state_dict: dict[str, Any],
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]], dict[str, Any]]:
    """safetensors holds tensors only: the optimizer's tensors go there, its scalars and
    param groups to JSON."""
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


def _read_tensors(file: Path, record: Mapping[str, Any]) -> dict[str, torch.Tensor]:
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


def _record_sha(record: Mapping[str, Any]) -> str:
    """SHA-256 of a run record's canonical JSON, its own ``record_sha256`` left out."""
    body = {k: v for k, v in record.items() if k != "record_sha256"}
    return _sha(json.dumps(body, sort_keys=True, default=_jsonable).encode())


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray | torch.Tensor):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
