"""Run directories of context models: train (checkpointed every epoch, resumable, under DDP
when launched by torchrun), evaluate, load, generate.

A run directory is a :mod:`models.runio` run (``weights.safetensors``, ``optimizer.safetensors``
with the torch RNG state, ``run.json`` with the model, training and data config, progress,
history and, once trained, the metrics and the learned graph's scores) plus the per-epoch
``metrics.jsonl`` / ``metrics.csv`` of :class:`models.runlog.RunLog`. ``fine-tune``/``frozen``
runs also keep the pretrained backbone they started from in ``backbone/`` (see
:func:`models.context.backbone.save_backbone`) and, when it was pretrained here, that
pretraining's own run in ``pretrain/``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from models.data.quad import QuadData, QuadSet, load_quad
from models.distributed import Context
from models.runio import RECORD
from models.runlog import RunLog
from scm.zoo import QUAD_NODES, quad

from .backbone import ConvVAE, load_backbone, save_backbone
from .checkpoint import load_optimizer, load_run, read_record, save_run
from .graph import concept_graph, score_graph
from .metrics import evaluate
from .model import ContextVAE
from .train import PRETRAINED, ContextTrainer, TrainConfig, build_model, fit, init_offset

log = logging.getLogger(__name__)

_RECORD_KEYS = ("train", "data", "epoch", "step", "history", "metrics", "graph")


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


def pretrain_backbone(
    data: QuadData,
    config: TrainConfig,
    *,
    ctx: Context | None = None,
    amp: bool = False,
    progress: bool = True,
) -> ConvVAE:
    """The pooled base VAE's backbone, trained in memory with ``config``'s budget and seed
    (:func:`train_run` runs the same pretraining as a checkpointed run in ``out/pretrain``)."""
    base = _base_config(config)
    model = build_model(base, list(QUAD_NODES), image_size=data.train.images.shape[1])
    fit(model, data.train, base, ctx=ctx, amp=amp, progress=progress)
    return model.backbone


def _base_config(config: TrainConfig) -> TrainConfig:
    return TrainConfig(**{**config.as_dict(), "method": "base-pooled"})


def train_run(
    out: str | os.PathLike[str],
    config: TrainConfig,
    data_config: DataConfig,
    *,
    backbone: str | os.PathLike[str] | None = None,
    ctx: Context | None = None,
    amp: bool = False,
    resume: bool = False,
    max_epochs: int | None = None,
    tensorboard: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train one method on quad, checkpointing to ``out`` after every epoch, then evaluate it;
    returns the run record.

    ``fine-tune`` and ``frozen`` start from the backbone saved in ``backbone`` (a directory of
    :func:`save_backbone`), or, without one, from a pooled base VAE pretrained here with the
    same budget (a checkpointed run of its own in ``out/pretrain``) and saved to
    ``out/backbone``.

    Args:
        out: the run directory (created).
        config, data_config: the run's training and data config (a resumed run keeps the
            ones it was started with and ignores these).
        backbone: a pretrained backbone directory for ``fine-tune`` / ``frozen``.
        ctx: the process context (:func:`models.distributed.setup`; default one CPU process).
            Under torchrun each rank trains on its shard of every global batch through DDP;
            rank 0 writes the checkpoints, the metrics files and evaluates.
        amp: bfloat16 autocast of the backbone on CUDA.
        resume: continue the run in ``out`` (its pretraining too); without it ``out`` must not
            hold a run. Batches and noise depend only on the seed and the epoch and the
            optimizer state travels in the checkpoint, so a resumed run equals a straight one.
        max_epochs: stop once this many epochs are done (a time budget; resume to go on). The
            record then has no metrics yet.
        tensorboard: also log the epoch metrics as TensorBoard scalars.
        progress: tqdm bars (rank 0).

    Returns:
        The record: ``train``, ``data``, ``epoch``, ``step``, ``history`` and, once every
        epoch is done, ``metrics`` (see :func:`models.context.evaluate`) and, with a module,
        ``graph`` (edges and scores against the true quad graph).
    """
    root = Path(out)
    ctx = ctx or Context()
    if backbone is not None and config.method not in PRETRAINED:
        raise ValueError(f"--backbone is for the methods {PRETRAINED}; got method "
                         f"{config.method!r}")
    if resume and (root / RECORD).exists():
        record = read_record(root)
        config, data_config = TrainConfig(**record["train"]), DataConfig(**record["data"])
    data = _load_data(data_config, ctx, progress)

    def new_model() -> ContextVAE:
        pretrained = None
        if config.method in PRETRAINED:
            if backbone is not None:
                pretrained = load_backbone(backbone)
            else:  # the pooled base VAE, as a resumable run of its own
                base = _base_config(config)
                pooled, _, _ = _run_stage(root / "pretrain", base, data_config, data.train,
                                          new_model=lambda: _fresh(base, data.train), ctx=ctx,
                                          amp=amp, resume=resume, max_epochs=None,
                                          tensorboard=tensorboard, progress=progress)
                pretrained = pooled.backbone.cpu()
            if ctx.is_main:
                save_backbone(root / "backbone", pretrained)
        return _fresh(config, data.train, pretrained)

    model, record, optimizer = _run_stage(root, config, data_config, data.train,
                                          new_model=new_model, ctx=ctx, amp=amp, resume=resume,
                                          max_epochs=max_epochs, tensorboard=tensorboard,
                                          progress=progress)
    if record["epoch"] < config.epochs or "metrics" in record:
        return record
    model.cpu()
    if ctx.is_main:
        record = {**record, **_scores(model, data, config, data_config)}
        save_run(root, model, record, optimizer)
    ctx.barrier()
    return record if ctx.is_main else read_record(root)


def _fresh(config: TrainConfig, data: QuadSet, backbone: ConvVAE | None = None) -> ContextVAE:
    model = build_model(config, list(QUAD_NODES), image_size=data.images.shape[1],
                        backbone=backbone)
    init_offset(model, data, config)
    return model


def _load_data(data_config: DataConfig, ctx: Context, progress: bool) -> QuadData:
    """Rank 0 renders a missing cache first, then the others read it."""
    data = None
    for turn in ("main", "others"):
        if ctx.is_main == (turn == "main"):
            data = data_config.load(progress=progress and ctx.is_main)
        ctx.barrier()
    assert data is not None
    return data


def _run_stage(
    root: Path,
    config: TrainConfig,
    data_config: DataConfig,
    data: QuadSet,
    *,
    new_model: Callable[[], ContextVAE],
    ctx: Context,
    amp: bool,
    resume: bool,
    max_epochs: int | None,
    tensorboard: bool,
    progress: bool,
) -> tuple[ContextVAE, dict[str, Any], torch.optim.Optimizer]:
    """Train (or resume) the run in ``root`` up to ``max_epochs`` epochs, checkpointing after
    each on rank 0; returns the model (eval mode), the record and the optimizer."""
    has_run = (root / RECORD).exists()
    saved: dict[str, Any] = {}
    ctx.barrier()  # every rank has looked before rank 0 writes the first checkpoint
    if has_run and not resume:
        raise ValueError(f"{root} already holds a run; pass resume=True or choose another out")
    if has_run:
        saved = read_record(root)  # less runio's own fields (format, model, sha256, ...)
        record = {k: saved[k] for k in _RECORD_KEYS if k in saved}
        config = TrainConfig(**record["train"])
        model, _ = load_run(root)
    else:
        if resume:  # a mistyped folder started a whole new run
            raise ValueError(f"resume=True but {root} holds no run; leave out resume to start one")
        model = new_model()
        record = {"train": config.as_dict(), "data": asdict(data_config), "epoch": 0, "step": 0,
                  "history": []}
    trainer = ContextTrainer(model, data, config, ctx=ctx, amp=amp, done=record["step"])
    stop = config.epochs if max_epochs is None else min(config.epochs, max_epochs)
    if record["step"] > 0 and record["epoch"] < stop:
        torch.set_rng_state(load_optimizer(root, trainer.loop.optimizer, saved))
    runlog = RunLog(root, enabled=ctx.is_main, tensorboard=tensorboard)
    history = list(record["history"])
    for epoch in range(record["epoch"], stop):
        entry = trainer.epoch(epoch, progress=progress)
        history.append(entry)
        record = {**record, "epoch": epoch + 1, "step": entry["step"], "history": history}
        if ctx.is_main:
            save_run(root, model, record, trainer.loop.optimizer)
            runlog.write(entry)
            if progress:
                tqdm.write(f"{config.method} epoch {epoch + 1}/{config.epochs}: "
                           f"{entry['bpd']:.3f} bits/dim, {entry['images_per_s']:.0f} images/s")
        ctx.barrier()
    runlog.close()
    trainer.close()
    return model, record, trainer.loop.optimizer


def _scores(
    model: ContextVAE, data: QuadData, config: TrainConfig, data_config: DataConfig
) -> dict[str, Any]:
    """``metrics`` and, with a module, ``graph`` (edges and scores) of a trained model."""
    out: dict[str, Any] = {"metrics": evaluate(model, data, seed=config.seed)}
    if model.module is not None:
        graph = concept_graph(model.module)
        out["graph"] = {"edges": [list(e) for e in graph.edges],
                        "scores": score_graph(graph, quad(independent=data_config.independent))}
    return out


MAX_GRID_IMAGES = 1024
"""The most images :func:`generate_grid` tiles (32 x 32): ``--n 100000`` asked numpy for a
25.5 GiB canvas and ended in a traceback."""


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
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_GRID_IMAGES:
        raise ValueError(f"n must be an int between 1 and {MAX_GRID_IMAGES} (a grid of "
                         f"{MAX_GRID_IMAGES} images); got {n!r}")
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
