"""Save and load SCMs as safetensors weights plus a versioned JSON spec (never pickle)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError
from safetensors.torch import load, save

from scm.log_nodes import log_scales, set_log_scales

if TYPE_CHECKING:
    from scm.scm import SCM

FORMAT = "cauflow.scm"
VERSION = 2
"""Version 2 adds ``spec_sha256``, the spec's own checksum (an edited graph loaded silently as
another causal model); version 1 files, without it, still load."""
READS = (1, 2)
SPEC, WEIGHTS = "scm.json", "weights.safetensors"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace`` (never half-written),
    with the permissions ``open`` would give it (:func:`as_if_opened`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    as_if_opened(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def as_if_opened(path: str | os.PathLike[str]) -> None:
    """Give a ``tempfile.mkstemp`` file (mode 0600, private) the mode a plain ``open`` would:
    0666 less the process umask, so that a saved model is as readable as the user's other
    files (saved models were readable by their owner only)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def spec(scm: SCM) -> dict[str, Any]:
    """The SCM's architecture as JSON: ``{"graph", "dims", "mechanisms": {node: {"kind",
    "config"}}}``, and ``"log_scales"`` when a mechanism has one (:func:`scm.log_nodes.log_scales`)
    (weights aside); ``ValueError`` for a mechanism that is not registered."""
    from scm.mechanisms import REGISTRY

    mechanisms = {}
    for node, mech in scm.mechanisms.items():
        if REGISTRY.get(mech.kind) is not type(mech):
            raise ValueError(
                f"cannot save the mechanism of {node!r}: {type(mech).__name__} is not a "
                "registered mechanism (add it to scm.mechanisms.REGISTRY)"
            )
        mechanisms[node] = {"kind": mech.kind, "config": mech.config()}
    out = {"graph": scm.parents, "dims": scm.dims, "mechanisms": mechanisms}
    scales = log_scales(scm)
    return {**out, "log_scales": scales} if scales else out


def save_scm(scm: SCM, path: str | os.PathLike[str]) -> None:
    """Write ``path/weights.safetensors`` then ``path/scm.json`` (with the weights' SHA-256)."""
    root = Path(path)
    architecture = spec(scm)
    state = {k: v.detach().contiguous() for k, v in scm.state_dict().items()}
    blob = save(state)  # the safetensors file's bytes, written atomically below
    spec_json = {
        "format": FORMAT,
        "version": VERSION,
        **architecture,
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
    }
    spec_json["spec_sha256"] = spec_checksum(spec_json)
    atomic_write(root / WEIGHTS, blob)
    atomic_write(root / SPEC, json.dumps(spec_json, indent=2).encode())


def load_scm(path: str | os.PathLike[str]) -> SCM:
    """Rebuild an SCM from :func:`save_scm` output; ``ValueError`` on a bad or altered file."""
    from scm.mechanisms import make_mechanism
    from scm.scm import SCM

    root = Path(path)
    spec = _read_spec(root / SPEC)
    blob_path = root / WEIGHTS
    if not blob_path.exists():
        raise ValueError(f"{blob_path} is missing")
    blob = blob_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != spec["weights_sha256"]:
        raise ValueError(f"{blob_path} does not match the checksum in {SPEC}: altered or truncated")
    try:
        state = load(blob)  # the checked bytes, not a second read that a save may change
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{blob_path} is not a readable safetensors file: {err}") from err
    try:
        mechanisms = {}
        for node, m in spec["mechanisms"].items():
            mechanisms[node] = make_mechanism(m["kind"], **m["config"])
        scm = SCM(spec["graph"], mechanisms, dims=spec["dims"])
        scm.load_state_dict(state, strict=True)
        scm.fixed_log_scales = spec.get("log_scales", {})
        set_log_scales(scm, scm.fixed_log_scales)
    except (KeyError, TypeError, RuntimeError, AttributeError) as err:
        raise ValueError(f"{root} does not describe a valid SCM: {err}") from err
    return scm


def spec_checksum(spec: dict[str, Any]) -> str:
    """SHA-256 of ``spec`` without its ``spec_sha256`` field, as canonical JSON (sorted keys,
    no spaces): an edit of the file's graph, mechanisms or log scales changes it."""
    body = {k: v for k, v in spec.items() if k != "spec_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
                          ).hexdigest()


def _read_spec(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ValueError(f"{path} is missing: not a saved SCM directory")
    try:
        spec = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise ValueError(f"{path} is not a cauflow SCM spec (format must be {FORMAT!r})")
    if spec.get("version") not in READS:
        raise ValueError(
            f"{path} has spec version {spec.get('version')!r}; this cauflow reads versions "
            f"{', '.join(map(str, READS))}"
        )
    required = ("graph", "dims", "mechanisms", "weights_sha256")
    for key in (*required, "spec_sha256") if spec["version"] >= 2 else required:
        if key not in spec:
            raise ValueError(f"{path} lacks the field {key!r}")
    if spec["version"] >= 2 and spec_checksum(spec) != spec["spec_sha256"]:
        raise ValueError(f"{path} does not match its own checksum (spec_sha256): its graph, "
                         "mechanisms or log scales were edited; save the model again instead")
    return spec
