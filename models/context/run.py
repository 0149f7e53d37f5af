"""Run directories of context models: train, save (safetensors + JSON, atomic), load, generate.

A run directory holds ``weights.safetensors`` (the :class:`ContextVAE` state) and ``run.json``
(model, training and data config, history, metrics, the learned graph's scores and the weights'
SHA-256, written last). ``fine-tune``/``frozen`` runs also keep the pretrained backbone they
started from in ``backbone/`` (see :func:`models.context.backbone.save_backbone`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from models.data.quad import QuadData, load_quad
from scm.io import atomic_write
from scm.zoo import QUAD_NODES, quad

from .backbone import ConvVAE, load_backbone, save_backbone
from .graph import concept_graph, score_graph
from .metrics import evaluate
from .model import ContextVAE
from .module import ContextModule
from .train import PRETRAINED, TrainConfig, build_model, fit

FORMAT, VERSION = "cauflow.context-run", 1
RECORD, WEIGHTS = "run.json", "weights.safetensors"


@dataclass(frozen=True)
class DataConfig:
    """Which quad set to draw (see :func:`models.data.quad.load_quad`)."""

    independent: bool = False
    size: int = 32
    n_train: int = 1000
    n_test: int = 200
    seed: int = 0

    def load(self, *, progress: bool = True) -> QuadData:
        return load_quad(independent=self.independent, size=self.size, n_train=self.n_train,
                         n_test=self.n_test, seed=self.seed, progress=progress)


def pretrain_backbone(data: QuadData, config: TrainConfig, *, progress: bool = True) -> ConvVAE:
    """The pooled base VAE's backbone, trained with ``config``'s budget and seed."""
    base = TrainConfig(**{**config.as_dict(), "method": "base-pooled"})
    model = build_model(base, list(QUAD_NODES), image_size=data.train.images.shape[1])
    fit(model, data.train, base, progress=progress)
    return model.backbone


def train_run(
    out: str | os.PathLike[str],
    config: TrainConfig,
    data_config: DataConfig,
    *,
    backbone: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train one method on quad, evaluate it, save the run in ``out``; returns the record.

    ``fine-tune`` and ``frozen`` start from the backbone saved in ``backbone`` (a directory of
    :func:`save_backbone`), or, without one, from a pooled base VAE pretrained here with the
    same budget and saved to ``out/backbone``.
    """
    root = Path(out)
    data = data_config.load(progress=progress)
    pretrained = None
    if config.method in PRETRAINED:
        if backbone is not None:
            pretrained = load_backbone(backbone)
        else:
            pretrained = pretrain_backbone(data, config, progress=progress)
        save_backbone(root / "backbone", pretrained)
    elif backbone is not None:
        raise ValueError(f"--backbone is for the methods {PRETRAINED}; got method "
                         f"{config.method!r}")
    model = build_model(config, list(QUAD_NODES), image_size=data_config.size,
                        backbone=pretrained)
    history = fit(model, data.train, config, progress=progress)
    record: dict[str, Any] = {
        "train": config.as_dict(),
        "data": data_config.__dict__,
        "history": [{k: float(v) for k, v in h.items()} for h in history],
        "metrics": evaluate(model, data, seed=config.seed),
    }
    if model.module is not None:
        graph = concept_graph(model.module)
        record["graph"] = {"edges": [list(e) for e in graph.edges],
                           "scores": score_graph(graph, quad(independent=data_config.independent))}
    save_run(root, model, record)
    return record


def save_run(path: str | os.PathLike[str], model: ContextVAE, record: dict[str, Any]) -> None:
    """Write ``weights.safetensors`` then ``run.json`` (with the model config and checksum)."""
    if not isinstance(model.backbone, ConvVAE):
        raise TypeError("save_run saves ConvVAE backbones; save other black boxes yourself")
    blob = save_tensors({k: v.detach().contiguous() for k, v in model.state_dict().items()})
    full = {
        "format": FORMAT,
        "version": VERSION,
        "model": {
            "backbone": model.backbone.config(),
            "module": None if model.module is None else model.module.config(),
            "use_labels": model.use_labels,
        },
        **record,
        "sha256": hashlib.sha256(blob).hexdigest(),
    }
    atomic_write(Path(path) / WEIGHTS, blob)
    atomic_write(Path(path) / RECORD, json.dumps(full, indent=2, default=_jsonable).encode())


def load_run(path: str | os.PathLike[str]) -> tuple[ContextVAE, dict[str, Any]]:
    """The trained model of a run directory and its record (``ValueError`` if not a run)."""
    root = Path(path)
    file = root / RECORD
    if not file.exists():
        raise ValueError(f"{file} is missing: {root} is not a context-module run directory")
    try:
        record = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{file} is not valid JSON: {err}") from err
    if record.get("format") != FORMAT or record.get("version") != VERSION:
        raise ValueError(f"{file} is not a {FORMAT!r} v{VERSION} record")
    blob = (root / WEIGHTS).read_bytes() if (root / WEIGHTS).exists() else b""
    if hashlib.sha256(blob).hexdigest() != record["sha256"]:
        raise ValueError(f"{root / WEIGHTS} is missing or does not match its checksum")
    spec = record["model"]
    backbone = ConvVAE(**spec["backbone"])
    module = None if spec["module"] is None else ContextModule(
        spec["module"]["n_concepts"], spec["module"]["concept_dim"],
        latent_dim=spec["module"]["latent_dim"], hidden=spec["module"]["hidden"],
        names=spec["module"]["names"])
    model = ContextVAE(backbone, module, use_labels=spec["use_labels"])
    try:
        model.load_state_dict(load_tensors(blob))
    except (SafetensorError, RuntimeError) as err:
        raise ValueError(f"{root / WEIGHTS} does not fit the model in {file}: {err}") from err
    model.eval()
    return model, record


def generate_grid(
    run: str | os.PathLike[str],
    context: tuple[str, ...],
    *,
    n: int = 16,
    out: str | os.PathLike[str] = "grid.png",
    seed: int = 0,
) -> Path:
    """Write a PNG grid of ``n`` images generated by the run's model in ``context``."""
    from matplotlib.figure import Figure

    from models.data.quad import context_name

    model, _ = load_run(run)
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")
    images = model.generate(n, context, seed=seed).permute(0, 2, 3, 1).numpy()
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    side = images.shape[1]
    grid = np.ones((rows * (side + 2), cols * (side + 2), 3))
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * (side + 2) : r * (side + 2) + side, c * (side + 2) : c * (side + 2) + side] = image
    fig = Figure(figsize=(cols * 1.2, rows * 1.2 + 0.4))
    ax = fig.add_subplot()
    ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(f"generated in context {context_name(context)}", fontsize=9)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
