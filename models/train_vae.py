"""Train a CauF-VAE (or a baseline) on an image set: SVI on the ELBO plus the label term."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyro
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from guides.encoder import as_image_batch
from models.caufvae import MODEL_NAMES, CauFVAE, ModelName
from models.checkpoint import RECORD, load_model, load_optimizer, read_record, save_checkpoint
from models.data import DatasetName, ImageSet, load_dataset
from models.data.run_data import check_resume_data, data_record
from models.distributed import Context
from models.loop import Loop, epoch_batches
from models.notears import shd
from models.runlog import RunLog

log = logging.getLogger(__name__)

GRAD_CLIP = 10.0


@dataclass
class TrainResult:
    """What :func:`train_run` returns: the model and its per-epoch history."""

    model: CauFVAE
    history: list[dict[str, float]]
    out: Path


def labelled_mask(n: int, fraction: float, seed: int) -> np.ndarray:
    """Bool ``(n,)``: a seeded random ``fraction`` of the rows carry labels."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"labelled_fraction must be in [0, 1], got {fraction!r}")
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).permutation(n)[: int(round(fraction * n))]] = True
    return mask


def train_run(
    out: str | os.PathLike[str],
    *,
    dataset: DatasetName = "pendulum",
    model: ModelName = "caufvae",
    epochs: int = 10,
    image_size: int = 64,
    batch_size: int = 64,
    lr: float = 1e-3,
    labelled_fraction: float = 1.0,
    seed: int = 0,
    n_train: int | None = None,
    max_steps: int | None = None,
    resume: bool = False,
    progress: bool = True,
    data: ImageSet | None = None,
    graph_epochs: int | None = None,
    ctx: Context | None = None,
    amp: bool = False,
    tensorboard: bool = False,
    **model_options: Any,
) -> TrainResult:
    """Train ``model`` on the ``dataset`` train split, checkpointing to ``out`` every epoch.

    Loss: ``Trace_ELBO().differentiable_loss(vae.model, vae.guide, ...)`` (one particle,
    summed over the batch) optimised with Adam (gradient norm clipped at 10). Labels are
    standardised by their train mean and std; a seeded ``labelled_fraction`` of the images
    carry them. Data order and the labelled subset depend only on ``seed``; the torch RNG state
    travels in the checkpoint, so ``resume=True`` continues exactly where the run stopped.

    Args:
        out: run directory (created); holds ``run.json`` and the safetensors files.
        dataset: ``"pendulum"`` or ``"flow"`` (ignored when ``data`` is given).
        model: ``"caufvae"``, ``"betavae"`` or ``"causalvae-linear"``.
        epochs: total epochs (a resumed run trains until this many are done).
        image_size: image side (multiple of 16).
        batch_size, lr: SGD settings.
        labelled_fraction: fraction of training images whose labels enter the loss.
        seed: seeds weights, data order, labelled subset and sampling.
        n_train: keep only this many training images (evenly spaced), for quick runs.
        max_steps: stop after this many optimiser steps in total (a budget for benchmarks);
            an epoch cut short is checkpointed as done, so a resume starts the next one.
        resume: continue the run in ``out`` (which must hold one); without it, ``out`` must
            not hold a run. A run records its images' SHA-256 (:mod:`models.data.run_data`):
            one trained on ``data=`` resumes with the same ``data=`` only.
        progress: tqdm bar with the running loss.
        data: an :class:`~models.data.ImageSet` to train on instead of loading one.
        graph_epochs: with ``learn_graph=True``, the epochs of graph search (default half of
            ``epochs``, at least 1); the augmented-Lagrangian multipliers step after each,
            then :meth:`~models.caufvae.CauFVAE.fix_graph` and a fresh optimizer. The history
            carries ``h`` and the ``shd`` of the thresholded gates to the data's graph. A run
            that stops inside the search (fewer epochs, a step budget) stays in it: resume it.
        ctx: the process context (:func:`models.distributed.setup`; default one CPU
            process). Under torchrun each rank trains on its shard of every global batch
            (``batch_size`` is global) through DDP; rank 0 writes the checkpoints.
        amp: bfloat16 autocast of the loss on CUDA.
        tensorboard: also log the epoch metrics as TensorBoard scalars (``metrics.jsonl`` and
            ``metrics.csv`` are always written; see :class:`~models.runlog.RunLog`).
        **model_options: passed to :class:`~models.caufvae.CauFVAE` (``beta``,
            ``supervision``, ``flow_layers``, ``channels``, ``pixel_scale``, ...).

    Returns:
        A :class:`TrainResult` (the model in eval mode, the history, the run directory).
    """
    root = Path(out)
    ctx = ctx or Context()
    if model not in MODEL_NAMES:
        raise ValueError(f"model must be one of {MODEL_NAMES}, got {model!r}")
    sizes = {"epochs": epochs, "batch_size": batch_size}
    if graph_epochs is not None:
        sizes["graph_epochs"] = graph_epochs
    if max_steps is not None:
        sizes["max_steps"] = max_steps
    for name, value in sizes.items():
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not resume and (isinstance(image_size, bool) or not isinstance(image_size, int)
                       or image_size < 16 or image_size % 16):
        # before any image is rendered: --image-size 40 rendered and cached a set first
        raise ValueError(f"image_size must be a positive multiple of 16, got {image_size!r}")
    has_run = (root / RECORD).exists()
    ctx.barrier()  # every rank has looked before rank 0 writes the first checkpoint
    if has_run and not resume:
        raise ValueError(f"{root} already holds a run; pass resume=True or choose another out")
    if resume and not has_run:
        raise ValueError(f"resume=True but {root} holds no run ({RECORD} is missing); "
                         "leave out resume to start one")
    if resume:
        record = read_record(root)
        train_cfg = record["train"]
        check_resume_data(train_cfg, data)
        vae, _ = load_model(root)
    else:
        train_cfg = {
            "dataset": dataset if data is None else data.name, "image_size": image_size,
            "batch_size": batch_size, "lr": lr, "labelled_fraction": labelled_fraction,
            "seed": seed, "n_train": n_train,
            "graph_epochs": graph_epochs if graph_epochs is not None else max(1, epochs // 2),
        }
        record = {"epoch": 0, "step": 0, "history": []}
        vae = None
    if data is None:
        for turn in ("main", "others"):  # rank 0 renders a missing cache, the others read it
            if ctx.is_main == (turn == "main"):
                data = load_dataset(train_cfg["dataset"], size=train_cfg["image_size"],
                                    split="train", n=train_cfg["n_train"],
                                    progress=progress and ctx.is_main)
            ctx.barrier()
    assert data is not None
    if "data" not in train_cfg and not resume:
        train_cfg.update(data_record(data))
    if len(data) < 2:  # the factors' spread (their standardisation) needs two rows
        raise ValueError(f"training needs at least 2 images, got {len(data)}")
    side = data.images.shape[1]
    if side != train_cfg["image_size"]:  # else a shape error deep in the decoder
        raise ValueError(f"the images are {side}x{side} px but image_size is "
                         f"{train_cfg['image_size']}; give image_size={side}")
    factors = torch.as_tensor(data.factors, dtype=torch.float64)
    if vae is None:
        vae = CauFVAE(data.graph, kind=model, image_size=train_cfg["image_size"], seed=seed,
                      **model_options)
        order = [data.factor_names.index(f) for f in vae.factors]
        vae.set_label_stats(factors[:, order].mean(0), factors[:, order].std(0).clamp_min(1e-8))
        mean_image = data.images.mean(0, dtype=np.float64) / 255.0  # (H, W, 3)
        vae.decoder.set_offset(torch.as_tensor(mean_image.transpose(2, 0, 1).copy()).float())
    order = [data.factor_names.index(f) for f in vae.factors]
    labels = ((factors[:, order] - vae.label_loc.double()) / vae.label_scale.double()).float()
    images = torch.as_tensor(data.images)
    mask = torch.as_tensor(labelled_mask(len(data), train_cfg["labelled_fraction"],
                                         train_cfg["seed"]))

    vae.to(ctx.device)
    loop = Loop(_VAELoss(vae, images, labels, mask, ctx.device), ctx, lr=train_cfg["lr"],
                grad_clip=GRAD_CLIP, amp=amp, optimizer=_adam(vae, train_cfg["lr"]))
    truth = {k: list(v) for k, v in data.graph.items()}
    if record["step"] > 0:
        torch.set_rng_state(load_optimizer(root, loop.optimizer, record))
    else:
        pyro.set_rng_seed(train_cfg["seed"] + ctx.rank)

    runlog = RunLog(root, enabled=ctx.is_main, tensorboard=tensorboard)
    vae.train()
    history: list[dict[str, float]] = list(record["history"])
    step, n, bs = record["step"], len(data), train_cfg["batch_size"]
    for epoch in range(record["epoch"], epochs):
        if max_steps is not None and step >= max_steps:
            break
        stats = loop.epoch(epoch, n, bs, train_cfg["seed"],
                           limit=None if max_steps is None else max_steps - step,
                           progress=progress, desc=f"{vae.kind} epoch {epoch + 1}/{epochs}")
        step += stats.steps
        probe = epoch_batches(n, bs, train_cfg["seed"], epoch)[0]
        parts = vae.loss_parts(_images(images, probe, ctx.device), labels[probe].to(ctx.device),
                               mask[probe].to(ctx.device))
        entry = {"epoch": epoch + 1, "step": step, "loss": stats.loss, **parts,
                 "seconds": stats.seconds, "images_per_s": stats.rows_per_s}
        if vae.learning_graph:
            entry.update(_graph_step(vae, truth, last=epoch + 1 == train_cfg["graph_epochs"]))
            if not vae.learning_graph:  # the prior was rebuilt: new parameters
                vae.to(ctx.device)
                loop.rebuild()
        history.append(entry)
        log.info("%s", entry)
        if progress and ctx.is_main:
            tqdm.write(f"{vae.kind} epoch {epoch + 1}: loss {entry['loss']:.1f}/image (recon "
                       f"{parts['recon']:.1f}, kl {parts['kl']:.2f}, sup {parts['sup']:.2f}), "
                       f"{entry['images_per_s']:.0f} images/s")
        record = {"train": train_cfg, "epoch": epoch + 1, "step": step, "history": history}
        if ctx.is_main:
            save_checkpoint(root, vae, loop.optimizer, record)
            runlog.write(entry)
        ctx.barrier()
    runlog.close()
    if vae.learning_graph:
        log.warning("the run stopped at epoch %d, inside its %d graph-search epochs: the graph is "
                    "not fixed yet; resume with more epochs to finish", record["epoch"],
                    train_cfg["graph_epochs"])
    vae.eval()
    return TrainResult(model=vae, history=history, out=root)


def _graph_step(vae: CauFVAE, truth: dict[str, list[str]], *, last: bool) -> dict[str, Any]:
    """After an epoch of graph search: step the multipliers, score the gates; on the ``last``
    epoch fix the graph. Returns the history fields (``h``, ``shd``, ``learned_graph``)."""
    learner = vae.graph_learner
    assert learner is not None
    h = learner.update_multipliers()
    names = learner.names
    out: dict[str, Any] = {"h": h, "shd": shd(learner.adjacency(), truth, names, threshold=0.5)}
    if last:
        learned = vae.fix_graph()
        a = torch.tensor([[float(j in learned[i]) for i in names] for j in names])
        out.update(shd=shd(a, truth, names), learned_graph=learned)
        log.info("learned factor graph %s (SHD %d to the data's graph)", learned, out["shd"])
    return out


class _VAELoss(nn.Module):
    """The loss module of :class:`~models.loop.Loop`: rows of the training set -> the model's
    negative ELBO (plus label term) summed over them."""

    def __init__(self, vae: CauFVAE, images: Tensor, labels: Tensor, mask: Tensor,
                 device: torch.device) -> None:
        super().__init__()
        self.vae = vae
        self.images, self.labels, self.mask, self.device = images, labels, mask, device

    @property
    def has_unused_parameters(self) -> bool:
        return self.vae.learning_graph  # the edgeless placeholder prior idles

    def forward(self, rows: Tensor) -> Tensor:
        return self.vae.loss(_images(self.images, rows, self.device),
                             self.labels[rows].to(self.device), self.mask[rows].to(self.device))


def _images(images: Tensor, rows: Tensor, device: torch.device) -> Tensor:
    """uint8 rows ``(b, H, W, 3)`` -> float ``(b, 3, H, W)`` on ``device`` (converted there)."""
    return as_image_batch(images[rows].to(device))


GATE_LR_FACTOR = 10.0


def _adam(vae: CauFVAE, lr: float) -> Callable[[list[nn.Parameter]], torch.optim.Optimizer]:
    """Adam at ``lr``, and at ``GATE_LR_FACTOR * lr`` for the graph learner's gate logits: the
    gates must cross 1/2 within a few epochs of search, while the networks train at the
    image model's pace."""

    def make(params: list[nn.Parameter]) -> torch.optim.Optimizer:
        learner = vae.graph_learner
        gates = [p for p in params if learner is not None and p is learner.logits]
        rest = [p for p in params if not any(p is g for g in gates)]
        groups = [{"params": rest, "lr": lr}]
        if gates:
            groups.append({"params": gates, "lr": GATE_LR_FACTOR * lr})
        return torch.optim.Adam(groups, lr=lr)

    return make
