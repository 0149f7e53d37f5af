"""Train a CT-VAE on action pairs of a factor grid, checkpointing every epoch (resumable).

Phases, in order (Gendron et al. train the VQ-VAE before the transition layer):

1. ``vq`` (``vq_epochs``): the VQ-VAE alone on the pairs' images (``x`` and ``y``, so an
   imbalanced pair set gives imbalanced images), loss ``recon * mse + vq * commitment``.
2. ``transition`` (``epochs``): the VQ-VAE frozen, its codes of every scene computed once; the
   transition layer on ``(codes(x), a, codes(y))``, loss ``transition * CE + mask * mean mask
   probability + graph * mean edge probability``. A ``none_fraction`` of each batch is replaced
   by no-action pairs ``(x, none, x)``.
3. ``joint`` (``joint_epochs``, default 0): everything on images with all five terms.

Data order and no-action picks depend only on ``seed``, phase and epoch; the torch RNG state
(Gumbel noise, codebook restarts) travels in the checkpoint, so ``resume=True`` continues where
the run stopped.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from guides.encoder import as_image_batch

from .grids import GRID_NAMES, factor_grid
from .model import CTVAE, LossWeights
from .pairs import PairSet, action_names, build_pairs
from .runio import RECORD, load_optimizer_state, load_run, read_record, save_run

log = logging.getLogger(__name__)

PHASES = ("vq", "transition", "joint")
GRAD_CLIP = 10.0
MASK_LR_SCALE = 10.0


@dataclass
class TrainResult:
    """What :func:`train_ctvae` returns: the model (eval mode), its history, the run folder."""

    model: CTVAE
    history: list[dict[str, Any]]
    out: Path


def run_pairs(cfg: dict[str, Any], split: str, n: int | None = None) -> PairSet:
    """The pairs of a run's train config: train pairs, or ``n`` held-out pairs (seed + 1)."""
    grid = factor_grid(cfg["dataset"])
    return build_pairs(
        grid, n or cfg["n_pairs"], split=split, imbalanced=cfg["imbalanced"],
        ratio=cfg["ratio"], seed=cfg["seed"] + (0 if split == "train" else 1),
    )


def train_ctvae(
    out: str | os.PathLike[str],
    *,
    dataset: str = "shapes",
    imbalanced: bool = False,
    ratio: float = 10.0,
    image_size: int = 32,
    n_pairs: int = 4000,
    vq_epochs: int = 3,
    epochs: int = 5,
    joint_epochs: int = 0,
    batch_size: int = 64,
    lr: float = 2e-3,
    none_fraction: float = 0.1,
    weights: LossWeights | None = None,
    seed: int = 0,
    resume: bool = False,
    progress: bool = True,
    images: np.ndarray | None = None,
    **model_options: Any,
) -> TrainResult:
    """Train a CT-VAE on ``n_pairs`` train pairs of ``dataset`` and save it in ``out``.

    Args:
        out: run directory; must not hold a run unless ``resume``.
        dataset: ``"shapes"``, ``"pendulum"`` or ``"flow"``.
        imbalanced, ratio: draw pair starts with imbalanced factor values (see
            :func:`models.ctvae.pairs.build_pairs`).
        image_size: image side (multiple of ``downsample``, default 8).
        n_pairs: train pairs.
        vq_epochs, epochs, joint_epochs: epochs of the three phases (module docstring).
        batch_size, lr: Adam settings.
        none_fraction: share of no-action pairs in transition batches.
        weights: :class:`LossWeights` (default weights if None).
        seed: seeds weights, pairs, data order and sampling.
        resume: continue the run in ``out`` (its data and settings kept; the three epoch
            totals are taken from this call, so a finished run can be trained further).
        progress: tqdm bars.
        images: all grid scenes pre-rendered ``(n_scenes, S, S, 3)`` (else rendered/cached).
        **model_options: passed to :class:`CTVAE` (``n_codebooks``, ``n_codes``, ...).

    Returns:
        A :class:`TrainResult`.
    """
    root = Path(out)
    has_run = (root / RECORD).exists()
    if has_run and not resume:
        raise ValueError(f"{root} already holds a run; pass resume=True or choose another out")
    if dataset not in GRID_NAMES:
        raise ValueError(f"dataset must be one of {GRID_NAMES}; got {dataset!r}")
    for name, value in {"vq_epochs": vq_epochs, "epochs": epochs, "joint_epochs": joint_epochs,
                        "batch_size": batch_size, "n_pairs": n_pairs}.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative int; got {value!r}")
    if resume and has_run:
        record = read_record(root)
        # a resumed run keeps its data and settings; only the epoch totals may grow
        cfg = {**record["train"], "vq_epochs": vq_epochs, "epochs": epochs,
               "joint_epochs": joint_epochs}
        model, _ = load_run(root)
    else:
        cfg = {
            "dataset": dataset, "imbalanced": imbalanced, "ratio": ratio,
            "image_size": image_size, "n_pairs": n_pairs, "vq_epochs": vq_epochs,
            "epochs": epochs, "joint_epochs": joint_epochs, "batch_size": batch_size, "lr": lr,
            "none_fraction": none_fraction, "seed": seed,
            "weights": asdict(weights or LossWeights()),
        }
        record = {"phase": 0, "epoch": 0, "step": 0, "history": []}
        torch.manual_seed(seed)
        grid = factor_grid(dataset)
        model = CTVAE(action_names(grid), image_size=image_size, **model_options)
    grid = factor_grid(cfg["dataset"])
    if images is None:
        images = grid.images(size=cfg["image_size"])
    pairs = run_pairs(cfg, "train")
    if record["step"] == 0:
        mean = images[np.concatenate([pairs.x, pairs.y])].mean(0, dtype=np.float64) / 255.0
        model.vq.set_offset(torch.as_tensor(mean.transpose(2, 0, 1).copy()).float())
    trainer = _Trainer(model, cfg, images, pairs, root, record, progress)
    trainer.run()
    model.eval()
    return TrainResult(model=model, history=trainer.history, out=root)


class _Trainer:
    """The phase loop of :func:`train_ctvae` (one optimizer per phase)."""

    def __init__(self, model: CTVAE, cfg: dict[str, Any], images: np.ndarray, pairs: PairSet,
                 root: Path, record: dict[str, Any], progress: bool) -> None:
        self.model, self.cfg, self.images, self.pairs = model, cfg, torch.as_tensor(images), pairs
        self.root, self.record, self.progress = root, record, progress
        self.history: list[dict[str, Any]] = list(record["history"])
        self.weights = LossWeights(**cfg["weights"])
        self.step = record["step"]

    def run(self) -> None:
        totals = (self.cfg["vq_epochs"], self.cfg["epochs"], self.cfg["joint_epochs"])
        resumed = self.step > 0
        for phase in range(self.record["phase"], len(PHASES)):
            start = self.record["epoch"] if phase == self.record["phase"] else 0
            if start >= totals[phase]:
                continue
            optimizer = torch.optim.Adam(self._groups(phase), lr=self.cfg["lr"])
            if resumed and phase == self.record["phase"] and start > 0:
                torch.set_rng_state(load_optimizer_state(self.root, optimizer, self.record))
            elif not resumed:
                torch.manual_seed(self.cfg["seed"] * 7919 + phase)
            resumed = False
            codes = self._all_codes() if PHASES[phase] == "transition" else None
            for epoch in range(start, totals[phase]):
                entry = self._epoch(phase, epoch, optimizer, codes)
                self.history.append(entry)
                if self.progress:
                    tqdm.write(f"{PHASES[phase]} epoch {epoch + 1}/{totals[phase]}: "
                               + ", ".join(f"{k} {v:.4g}" for k, v in entry.items()
                                           if isinstance(v, float)))
                self.record = {"train": self.cfg, "phase": phase, "epoch": epoch + 1,
                               "step": self.step, "history": self.history}
                save_run(self.root, self.model, optimizer, self.record)

    def _groups(self, phase: int) -> list[dict[str, Any]]:
        """Adam parameter groups: the intervention-mask logits learn ``MASK_LR_SCALE`` times
        faster (with Adam's normalised steps, a small sparsity gradient otherwise moves a logit
        only ~lr per step, too slowly for a few hundred steps)."""
        params = self._params(phase)
        mask = self.model.transition.mask_logits
        rest = [p for p in params if p is not mask]
        if len(rest) == len(params):
            return [{"params": rest}]
        return [{"params": rest}, {"params": [mask], "lr": self.cfg["lr"] * MASK_LR_SCALE}]

    def _params(self, phase: int) -> list[torch.nn.Parameter]:
        module = {0: self.model.vq, 1: self.model.transition, 2: self.model}[phase]
        return [p for p in module.parameters() if p.requires_grad]

    @torch.no_grad()
    def _all_codes(self) -> torch.Tensor:
        """Codes ``(n_scenes, N)`` of the frozen VQ-VAE (eval mode), filled for the scenes the
        pairs use (other rows stay 0)."""
        self.model.vq.eval()
        used = torch.as_tensor(np.unique(np.concatenate([self.pairs.x, self.pairs.y])))
        codes = torch.zeros(len(self.images), self.model.vq.n_nodes, dtype=torch.long)
        for i in range(0, len(used), 512):
            part = used[i : i + 512]
            codes[part] = self.model.vq.codes(as_image_batch(self.images[part]))
        return codes

    def _epoch(self, phase: int, epoch: int, optimizer: torch.optim.Optimizer,
               codes: torch.Tensor | None) -> dict[str, Any]:
        name, bs = PHASES[phase], self.cfg["batch_size"]
        gen = torch.Generator().manual_seed(self.cfg["seed"] * 100_003 + 1_000 * phase + epoch)
        x, a, y = (torch.as_tensor(v) for v in (self.pairs.x, self.pairs.action, self.pairs.y))
        if name == "vq":
            scenes = torch.cat([x, y])
            order = scenes[torch.randperm(len(scenes), generator=gen)]
            batches = [(order[i : i + bs],) for i in range(0, len(order), bs)]
        else:
            perm = torch.randperm(len(x), generator=gen)
            none = torch.rand(len(x), generator=gen) < self.cfg["none_fraction"]
            a_, y_ = torch.where(none, 0, a)[perm], torch.where(none, x, y)[perm]
            x_ = x[perm]
            batches = [(x_[i : i + bs], a_[i : i + bs], y_[i : i + bs])
                       for i in range(0, len(x_), bs)]
        self.model.train()
        if name == "transition":
            self.model.vq.eval()
        params = self._params(phase)
        sums: dict[str, float] = {}
        seen, t0 = 0, time.perf_counter()
        bar = tqdm(batches, desc=f"ctvae {name} {epoch + 1}", disable=not self.progress,
                   leave=False)
        for batch in bar:
            terms = self._terms(name, batch, codes)
            loss = self.model.weighted(terms, self.weights)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
            optimizer.step()
            self.step += 1
            n = len(batch[0])
            seen += n
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * n
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach()) * n
            bar.set_postfix(loss=f"{sums['loss'] / seen:.4f}")
        seconds = time.perf_counter() - t0
        per_item = 1 if name == "vq" else 2  # images per item: a pair holds two
        entry: dict[str, Any] = {"phase": name, "epoch": epoch + 1, "step": self.step,
                                 **{k: v / max(seen, 1) for k, v in sums.items()},
                                 "seconds": seconds,
                                 "images_per_s": per_item * seen / max(seconds, 1e-9)}
        if name != "transition":
            entry["perplexity"] = self._perplexity()
        return entry

    def _terms(self, name: str, batch: tuple[torch.Tensor, ...],
               codes: torch.Tensor | None) -> dict[str, torch.Tensor]:
        if name == "vq":
            x = as_image_batch(self.images[batch[0]])
            q = self.model.vq.encode(x)
            return {"recon": self.model.vq.recon_error(q.z_q, x), "vq": q.commitment}
        x, a, y = batch
        if name == "transition":
            assert codes is not None
            return self.model.transition_terms(codes[x], a, codes[y])
        return self.model.joint_terms(as_image_batch(self.images[x]), a,
                                      as_image_batch(self.images[y]))

    @torch.no_grad()
    def _perplexity(self) -> float:
        """Mean codebook perplexity over (up to) 1,024 pair images, eval mode."""
        scenes = np.unique(np.concatenate([self.pairs.x, self.pairs.y]))
        pick = np.linspace(0, len(scenes) - 1, min(1024, len(scenes))).astype(np.int64)
        idx = torch.as_tensor(scenes[pick])
        self.model.vq.eval()
        q = self.model.vq.encode(as_image_batch(self.images[idx]))
        self.model.vq.train()
        return float(q.perplexity.mean())
