"""Train a CT-VAE on action pairs of a factor grid on the shared loop (:class:`models.loop.Loop`),
checkpointing every epoch (resumable), in one process or several (DDP under torchrun).

Phases, in order (Gendron et al. train the VQ-VAE before the transition layer):

1. ``vq`` (``vq_epochs``): the VQ-VAE alone on the pairs' images (``x`` and ``y``, so an
   imbalanced pair set gives imbalanced images), loss ``recon * mse + vq * commitment``.
2. ``transition`` (``epochs``): the VQ-VAE frozen, its codes of every scene computed once; the
   transition layer on ``(codes(x), a, codes(y))``, loss ``transition * CE + mask * mean mask
   probability + graph * mean edge probability``. A ``none_fraction`` of each batch is replaced
   by no-action pairs ``(x, none, x)``.
3. ``joint`` (``joint_epochs``, default 0): everything on images with all five terms.

Each phase trains its own parameters with a fresh Adam (:meth:`Loop.rebuild` after the phase's
``requires_grad`` flags are set). Data order and no-action picks depend only on ``seed``, phase
and epoch; the torch RNG state (Gumbel noise, codebook restarts) is seeded at the start of each
phase and travels in the checkpoint, so ``resume=True`` continues exactly where the run stopped.

Several processes: ``batch_size`` is the global batch; each rank takes its shard of every global
batch and DDP averages the gradients. Every rank seeds the torch RNG alike (no rank offset): the
Gumbel structure sample is one draw per step shared by the whole batch, and codebook restarts
pick from the global batch (:mod:`models.ctvae.quantizer`), so all ranks must draw what one
process would. The EMA codebooks are synchronised by the quantizer itself (``sync``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from guides.encoder import as_image_batch
from models.distributed import Context
from models.loop import Loop, epoch_batches
from models.runlog import RunLog

from .grids import GRID_NAMES, factor_grid
from .model import CTVAE, LossWeights
from .pairs import PairSet, action_names, build_pairs
from .runio import RECORD, load_optimizer_state, load_run, read_record, save_run
from .sync import all_sum

log = logging.getLogger(__name__)

PHASES = ("vq", "transition", "joint")
GRAD_CLIP = 10.0
MASK_LR_SCALE = 10.0


@dataclass
class TrainResult:
    """What :func:`train_ctvae` returns: the model (eval mode, on the training device), its
    history, the run folder."""

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
    ctx: Context | None = None,
    amp: bool = False,
    tensorboard: bool = False,
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
        batch_size, lr: Adam settings (``batch_size`` is global: all processes together).
        none_fraction: share of no-action pairs in transition batches.
        weights: :class:`LossWeights` (default weights if None).
        seed: seeds weights, pairs, data order and sampling.
        resume: continue the run in ``out`` (its data and settings kept; the three epoch
            totals are taken from this call, so a finished run can be trained further).
        progress: tqdm bars.
        images: all grid scenes pre-rendered ``(n_scenes, S, S, 3)`` (else rendered/cached).
        ctx: the process context (:func:`models.distributed.setup`; default one CPU process).
            Under torchrun each rank trains on its shard of every global batch through DDP;
            rank 0 writes the checkpoints and the metrics.
        amp: bfloat16 autocast of the loss on CUDA (ignored on the CPU).
        tensorboard: also write the epoch metrics as TensorBoard scalars (``metrics.jsonl``
            and ``metrics.csv`` are always written; see :class:`~models.runlog.RunLog`).
        **model_options: passed to :class:`CTVAE` (``n_codebooks``, ``n_codes``, ...).

    Returns:
        A :class:`TrainResult`.
    """
    root = Path(out)
    ctx = ctx or Context()
    if dataset not in GRID_NAMES:
        raise ValueError(f"dataset must be one of {GRID_NAMES}; got {dataset!r}")
    for name, value in {"vq_epochs": vq_epochs, "epochs": epochs, "joint_epochs": joint_epochs,
                        "batch_size": batch_size, "n_pairs": n_pairs}.items():
        low = 1 if name in ("batch_size", "n_pairs") else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}; got {value!r}")
    has_run = (root / RECORD).exists()
    ctx.barrier()  # every rank has looked before rank 0 writes the first checkpoint
    if has_run and not resume:
        raise ValueError(f"{root} already holds a run; pass resume=True or choose another out")
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
        model = CTVAE(action_names(factor_grid(dataset)), image_size=image_size, **model_options)
    if cfg["batch_size"] < ctx.world or cfg["n_pairs"] < ctx.world:
        raise ValueError(f"batch_size ({cfg['batch_size']}) and n_pairs ({cfg['n_pairs']}) must "
                         f"be at least the number of processes ({ctx.world})")
    grid = factor_grid(cfg["dataset"])
    if images is None:
        for turn in ("main", "others"):  # rank 0 renders a missing cache, the others read it
            if ctx.is_main == (turn == "main"):
                images = grid.images(size=cfg["image_size"])
            ctx.barrier()
    assert images is not None
    pairs = run_pairs(cfg, "train")
    if record["step"] == 0:
        mean = images[np.concatenate([pairs.x, pairs.y])].mean(0, dtype=np.float64) / 255.0
        model.vq.set_offset(torch.as_tensor(mean.transpose(2, 0, 1).copy()).float())
    model.to(ctx.device)
    trainer = _Trainer(model, cfg, images, pairs, root, record, ctx=ctx, progress=progress,
                       amp=amp, tensorboard=tensorboard)
    trainer.run()
    model.eval()
    return TrainResult(model=model, history=trainer.history, out=root)


class _PairLoss(nn.Module):
    """The loss module of :class:`~models.loop.Loop` for every phase: items of the phase (scenes
    of the pairs in ``vq``, pairs otherwise) -> this shard's share of the global batch's loss.

    The CT-VAE terms are batch means (and the sparsity terms do not depend on the batch), so a
    shard of ``b`` rows of a global batch of ``B`` returns ``b / B`` times its weighted terms:
    the shares of all ranks add up to the one-process batch loss, as the loop's contract (a sum
    over rows) requires. It also sums each term over the epoch for the metrics.
    """

    def __init__(self, model: CTVAE, images: Tensor, pairs: PairSet, weights: LossWeights,
                 device: torch.device) -> None:
        super().__init__()
        self.model, self.images, self.weights, self.device = model, images, weights, device
        self.x, self.a, self.y = (torch.as_tensor(v) for v in (pairs.x, pairs.action, pairs.y))
        self.scenes = torch.cat([self.x, self.y])
        self.phase = "vq"
        self.codes: Tensor | None = None
        self.none = torch.zeros(len(self.x), dtype=torch.bool)
        self.batch_len = torch.ones(len(self.scenes), dtype=torch.long)
        self.sums: dict[str, Tensor] = {}

    def set_phase(self, phase: str, codes: Tensor | None = None) -> None:
        """Train only the phase's parameters (``requires_grad``); ``codes (n_scenes, N)``: the
        frozen VQ-VAE's codes, for ``transition``."""
        self.phase, self.codes = phase, codes
        trained = {"vq": self.model.vq, "transition": self.model.transition,
                   "joint": self.model}[phase]
        self.model.requires_grad_(False)
        trained.requires_grad_(True)

    def items(self) -> int:
        """Items of the current phase: ``2 n_pairs`` scenes in ``vq``, ``n_pairs`` pairs else."""
        return len(self.scenes) if self.phase == "vq" else len(self.x)

    def start_epoch(self, batches: list[Tensor], none: Tensor) -> None:
        """The epoch's global batches (each row's batch length) and no-action picks."""
        self.batch_len = torch.zeros(self.items(), dtype=torch.long)
        for batch in batches:
            self.batch_len[batch] = len(batch)
        self.none, self.sums = none, {}

    def forward(self, rows: Tensor) -> Tensor:
        terms = self._terms(rows)
        loss = self.model.weighted(terms, self.weights)
        for name, value in {**terms, "loss": loss}.items():
            part = value.detach().double() * len(rows)
            self.sums[name] = self.sums[name] + part if name in self.sums else part
        return loss * (len(rows) / int(self.batch_len[rows[0]]))

    def images_of(self, scenes: Tensor) -> Tensor:
        """Scenes ``(b,)`` as float images ``(b, 3, S, S)`` on the device."""
        return as_image_batch(self.images[scenes].to(self.device))

    def _terms(self, rows: Tensor) -> dict[str, Tensor]:
        if self.phase == "vq":
            x = self.images_of(self.scenes[rows])
            q = self.model.vq.encode(x)
            return {"recon": self.model.vq.recon_error(q.z_q, x), "vq": q.commitment}
        none = self.none[rows]
        x, a, y = self.x[rows], torch.where(none, 0, self.a[rows]), self.y[rows]
        y = torch.where(none, x, y)
        if self.phase == "transition":
            assert self.codes is not None
            return self.model.transition_terms(self.codes[x].to(self.device), a.to(self.device),
                                               self.codes[y].to(self.device))
        return self.model.joint_terms(self.images_of(x), a.to(self.device), self.images_of(y))


class _Trainer:
    """The phase loop of :func:`train_ctvae`: one :class:`Loop`, rebuilt for each phase."""

    def __init__(self, model: CTVAE, cfg: dict[str, Any], images: np.ndarray, pairs: PairSet,
                 root: Path, record: dict[str, Any], *, ctx: Context, progress: bool,
                 amp: bool, tensorboard: bool) -> None:
        self.model, self.cfg, self.pairs, self.ctx = model, cfg, pairs, ctx
        self.images = torch.as_tensor(images)
        self.root, self.record, self.progress, self.amp = root, record, progress, amp
        self.history: list[dict[str, Any]] = list(record["history"])
        self.step = record["step"]
        self.loss = _PairLoss(model, self.images, pairs, LossWeights(**cfg["weights"]),
                              ctx.device)
        self.loop: Loop | None = None
        self.runlog = RunLog(root, enabled=ctx.is_main, tensorboard=tensorboard, key="step")

    def run(self) -> None:
        totals = (self.cfg["vq_epochs"], self.cfg["epochs"], self.cfg["joint_epochs"])
        self.model.vq.quantizer.sync = self.ctx.distributed
        try:
            for phase in range(self.record["phase"], len(PHASES)):
                start = self.record["epoch"] if phase == self.record["phase"] else 0
                if start < totals[phase]:
                    self._phase(phase, start, totals[phase])
        finally:
            self.model.vq.quantizer.sync = False
            self.model.requires_grad_(True)
            self.runlog.close()

    def _phase(self, phase: int, start: int, total: int) -> None:
        name = PHASES[phase]
        codes = self._all_codes() if name == "transition" else None
        self.loss.set_phase(name, codes)
        if self.loop is None:
            self.loop = Loop(self.loss, self.ctx, lr=self.cfg["lr"], grad_clip=GRAD_CLIP,
                             amp=self.amp, optimizer=self._adam)
        else:
            self.loop.rebuild()
        if start > 0:  # inside the phase of the checkpoint: its optimizer and RNG state
            torch.set_rng_state(load_optimizer_state(self.root, self.loop.optimizer, self.record))
        else:  # the same on every rank (module docstring)
            torch.manual_seed(self.cfg["seed"] * 7919 + phase)
        for epoch in range(start, total):
            entry = self._epoch(phase, epoch)
            self.history.append(entry)
            if self.progress and self.ctx.is_main:
                tqdm.write(f"{name} epoch {epoch + 1}/{total}: "
                           + ", ".join(f"{k} {v:.4g}" for k, v in entry.items()
                                       if isinstance(v, float)))
            self.record = {"train": self.cfg, "phase": phase, "epoch": epoch + 1,
                           "step": self.step, "history": self.history}
            if self.ctx.is_main:
                save_run(self.root, self.model, self.loop.optimizer, self.record)
                self.runlog.write(entry)
            self.ctx.barrier()

    def _adam(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        """Adam over the phase's parameters: the intervention-mask logits learn
        ``MASK_LR_SCALE`` times faster (with Adam's normalised steps, a small sparsity gradient
        otherwise moves a logit only ~lr per step, too slowly for a few hundred steps)."""
        mask = self.model.transition.mask_logits
        rest = [p for p in params if p is not mask]
        groups: list[dict[str, Any]] = [{"params": rest}]
        if len(rest) < len(params):
            groups.append({"params": [mask], "lr": self.cfg["lr"] * MASK_LR_SCALE})
        return torch.optim.Adam(groups, lr=self.cfg["lr"])

    @torch.no_grad()
    def _all_codes(self) -> Tensor:
        """Codes ``(n_scenes, N)`` (CPU) of the frozen VQ-VAE (eval mode), filled for the scenes
        the pairs use (other rows stay 0)."""
        self.model.vq.eval()
        used = torch.as_tensor(np.unique(np.concatenate([self.pairs.x, self.pairs.y])))
        codes = torch.zeros(len(self.images), self.model.vq.n_nodes, dtype=torch.long)
        for i in range(0, len(used), 512):
            part = used[i : i + 512]
            codes[part] = self.model.vq.codes(self.loss.images_of(part)).cpu()
        return codes

    def _epoch(self, phase: int, epoch: int) -> dict[str, Any]:
        assert self.loop is not None
        name, bs, seed = PHASES[phase], self.cfg["batch_size"], self.cfg["seed"]
        key = 1_000 * phase + epoch  # the loop seeds the epoch's order by (seed, key)
        n = self.loss.items()
        batches = epoch_batches(n, bs, seed, key)
        # The no-action picks: the same generator draws, after the order's permutation.
        gen = torch.Generator().manual_seed(seed * 100_003 + key)
        torch.randperm(len(self.pairs), generator=gen)
        none = torch.rand(len(self.pairs), generator=gen) < self.cfg["none_fraction"]
        self.loss.start_epoch(batches, none)
        # A last global batch with fewer rows than processes would leave a rank without rows.
        limit = len(batches) - 1 if len(batches[-1]) < self.ctx.world else None
        self.model.train()
        if name == "transition":
            self.model.vq.eval()
        stats = self.loop.epoch(key, n, bs, seed, limit=limit, progress=self.progress,
                                desc=f"ctvae {name} {epoch + 1}")
        self.step += stats.steps
        names = sorted(self.loss.sums)  # the same on every rank
        totals = all_sum(torch.stack([self.loss.sums[k] for k in names]))  # over all shards
        seen = stats.rows  # rows of all ranks
        per_item = 1 if name == "vq" else 2  # images per item: a pair holds two
        means = {k: float(v) / max(seen, 1) for k, v in zip(names, totals, strict=True)}
        # phase_index: the CSV keeps numbers only, and epochs restart in each phase
        entry: dict[str, Any] = {"phase": name, "phase_index": phase, "epoch": epoch + 1,
                                 "step": self.step, **means,
                                 "seconds": stats.seconds,
                                 "images_per_s": per_item * seen / max(stats.seconds, 1e-9),
                                 "processes": self.ctx.world}
        if name != "transition":
            entry["perplexity"] = self._perplexity()
        return entry

    @torch.no_grad()
    def _perplexity(self) -> float:
        """Mean codebook perplexity over (up to) 1,024 pair images, eval mode."""
        scenes = np.unique(np.concatenate([self.pairs.x, self.pairs.y]))
        pick = np.linspace(0, len(scenes) - 1, min(1024, len(scenes))).astype(np.int64)
        self.model.vq.eval()
        q = self.model.vq.encode(self.loss.images_of(torch.as_tensor(scenes[pick])))
        self.model.vq.train()
        return float(q.perplexity.mean())

