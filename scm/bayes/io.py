"""Save and load posterior draws: ``posterior.safetensors`` plus ``posterior.json``."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError
from safetensors.torch import load, save

from scm.bayes.posterior import Posterior
from scm.io import atomic_write

if TYPE_CHECKING:
    from scm.scm import SCM

FORMAT = "cauflow.posterior"
VERSION = 1
SPEC, DRAWS = "posterior.json", "posterior.safetensors"
_GROUPS = ("samples", "sample_stats", "observed")


def save_posterior(posterior: Posterior, path: str | os.PathLike[str]) -> None:
    """Write the draws (``{group}/{name}`` tensors), then the JSON spec with their SHA-256."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"{group}/{k}": v.detach().contiguous()
        for group in _GROUPS
        for k, v in getattr(posterior, group).items()
    }
    blob = save(tensors)  # the safetensors file's bytes, written atomically below
    spec = {
        "format": FORMAT,
        "version": VERSION,
        "method": posterior.method,
        "settings": posterior.settings,
        "sha256": hashlib.sha256(blob).hexdigest(),
    }
    atomic_write(root / DRAWS, blob)
    atomic_write(root / SPEC, json.dumps(spec, indent=2).encode())


def remove_posterior(path: str | os.PathLike[str]) -> None:
    """Delete the draws of an earlier save in ``path``, if any: a point-estimate SCM saved
    over a Bayesian one would otherwise load with (or fail on) the old draws."""
    for name in (SPEC, DRAWS):  # the spec first: without it the folder holds no posterior
        (Path(path) / name).unlink(missing_ok=True)


def load_posterior(path: str | os.PathLike[str], scm: SCM) -> Posterior | None:
    """Read draws written by :func:`save_posterior`; None if ``path`` holds none.

    Raises ``ValueError`` for an altered or foreign file, or draws that do not match the
    sites of ``scm``.
    """
    root = Path(path)
    if not (root / SPEC).exists():
        if (root / DRAWS).exists():  # a copy that left the JSON behind: draws unreadable
            raise ValueError(f"{root / DRAWS} is there but {root / SPEC} is missing: copy both "
                             "files of the posterior")
        if any(getattr(m, "bayesian", False) for m in scm.mechanisms.values()):
            raise ValueError(f"{root} holds a Bayesian SCM but no posterior ({SPEC} and "
                             f"{DRAWS}): its queries would answer without its fit")
        return None
    try:
        spec = json.loads((root / SPEC).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{root / SPEC} is not valid JSON: {err}") from err
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise ValueError(f"{root / SPEC} is not a cauflow posterior (format must be {FORMAT!r})")
    if spec.get("version") != VERSION:
        raise ValueError(f"{root / SPEC} has version {spec.get('version')!r}; expected {VERSION}")
    blob_path = root / DRAWS
    if not blob_path.exists():
        raise ValueError(f"{blob_path} is missing")
    blob = blob_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != spec.get("sha256"):
        raise ValueError(f"{blob_path} does not match the checksum in {SPEC}: altered or truncated")
    try:
        tensors = load(blob)  # the checked bytes
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{blob_path} is not a readable safetensors file: {err}") from err
    groups: dict[str, dict] = {g: {} for g in _GROUPS}
    for key, value in tensors.items():
        group, _, name = key.partition("/")
        if group not in groups:
            raise ValueError(f"{blob_path} has an unknown entry {key!r}")
        groups[group][name] = value
    expected = {
        f"{node}.{p}" for node, m in scm.mechanisms.items() for p in getattr(m, "latent_sizes", {})
    }
    if set(groups["samples"]) != expected:
        raise ValueError(
            f"{blob_path} holds sites {sorted(groups['samples'])}, but the SCM has "
            f"{sorted(expected)}"
        )
    return Posterior(
        groups["samples"],
        spec["method"],
        groups["observed"],
        groups["sample_stats"],
        spec.get("settings", {}),
    )
