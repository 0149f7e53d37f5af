"""Training a context module (three modes) and its ablations on context-labelled images, on the
shared loop :class:`models.loop.Loop` (DDP under torchrun, AMP on CUDA, gradient clipping).

Every training image carries its context (Markham et al., arXiv 2507.04754, Sec. 3) and the
module switches its architecture to it row by row. By default batches mix contexts, drawing
exactly the rows the pooled base VAE draws (``batching="mixed"``); ``batching="contexts"``
takes one context per batch, a higher-variance gradient of the same objective (see
:mod:`models.context.batches`). Methods:

* ``end-to-end``: backbone and module trained together from scratch;
* ``fine-tune``: a pretrained backbone; the module alone for ``fine_tune_fraction`` of the
  steps, then everything;
* ``frozen``: a pretrained backbone, frozen; only the module learns;
* ``base-obs`` / ``base-pooled``: the backbone alone (no module) on observational images only /
  on all training contexts pooled;
* ``no-labels``: the module end-to-end with every context label ignored.

All methods run the same number of optimiser steps (the budget), in epochs of
``steps_per_epoch`` steps (the unit of checkpoints and history). The loss per step is
``(-mean ELBO + acyclicity h(A) + sparsity |A|) / pixels``.

The module methods that read the labels set the module's read-out and exogenous layer once
from the encoder's latent moments per context (:mod:`models.context.moments`, Squires et al.
2023) before their first step (a fresh backbone may first train ``moment_warmup`` steps).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal, get_args

import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm.auto import tqdm

from models.data.quad import QuadSet
from models.distributed import Context, shard
from models.loop import Loop

from .backbone import ConvVAE
from .batches import ContextBatch, Pooling, context_batches
from .model import ContextVAE, dequantize
from .module import ContextModule
from .moments import init_from_moments

Method = Literal["end-to-end", "fine-tune", "frozen", "base-obs", "base-pooled", "no-labels"]
METHODS: tuple[str, ...] = get_args(Method)
Batching = Literal["mixed", "contexts"]
BATCHINGS: tuple[str, ...] = get_args(Batching)
PRETRAINED = ("fine-tune", "frozen")
_POOLING: dict[str, Pooling] = {"base-obs": "observational", "base-pooled": "pooled"}


@dataclass
class TrainConfig:
    """Budget and sizes of one training run (all methods share it). ``batch_size`` is the
    global batch: under N processes each takes 1/N of every batch."""

    method: Method = "end-to-end"
    steps: int = 1500
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    latent_dim: int = 16
    channels: int = 16
    hidden: int = 128
    concept_dim: int = 2
    module_hidden: int = 32
    fine_tune_fraction: float = 0.5
    acyclicity: float = 10.0
    sparsity: float = 0.1
    steps_per_epoch: int = 50
    grad_clip: float | None = None
    batching: Batching = "mixed"
    exogenous_lr_scale: float = 10.0
    """Adam step of the module's exogenous location/scale parameters, as a multiple of ``lr``.
    Those must travel O(1) latent units (an intervened concept's distribution away from the
    observational one) and Adam moves a parameter by about ``lr`` per step, so at ``lr`` alone
    they cannot get there in a few hundred steps. Measured on dependent quad, end-to-end, 600
    steps, 3 seeds: Concept / Compo 0.190 / 0.190 at 1x, 0.156 / 0.181 at 10x."""

    moment_init: bool = True
    """Set the module's read-out and exogenous layer from the interventional moments of the
    encoder's latent (:func:`models.context.moments.init_from_moments`) at
    :attr:`moment_init_step`. Measured on dependent quad, 600 steps, 3 seeds (Concept / Compo
    / SHD, off -> on): frozen 0.152 / 0.177 / 22.7 -> 0.126 / 0.128 / 9.0; fine-tune 0.155 /
    0.175 / 25.0 -> 0.161 / 0.144 / 16.7; end-to-end 0.156 / 0.182 / 20.3 -> 0.160 / 0.172 /
    19.3 (within the seeds' spread; 0.172 / 0.177 with ``moment_warmup`` 50)."""
    moment_warmup: int = 0
    """Steps a fresh backbone trains before the moment initialisation. At 0 the read-out is the
    interventional discriminant of the untrained encoder's random conv features; later, the
    decoder must relearn the changed concept basis (at 50 on dependent quad: Recon 0.030 vs
    0.020, bpd_in 7.58 vs 7.29 at 0). Pretrained backbones always initialise at step 0."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}; got {self.method!r}")
        if self.batching not in BATCHINGS:
            raise ValueError(f"batching must be one of {BATCHINGS}; got {self.batching!r}")
        if not (isinstance(self.moment_warmup, int) and self.moment_warmup >= 0):
            raise ValueError(f"moment_warmup must be an int >= 0; got {self.moment_warmup!r}")
        for name in ("steps", "batch_size", "steps_per_epoch"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an int >= 1; got {value!r}")
        if not 0.0 <= self.fine_tune_fraction <= 1.0:
            raise ValueError(f"fine_tune_fraction must be in [0, 1]; got {self.fine_tune_fraction}")
        if not self.exogenous_lr_scale > 0:
            raise ValueError(f"exogenous_lr_scale must be > 0; got {self.exogenous_lr_scale!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None; got {self.grad_clip!r}")

    @property
    def epochs(self) -> int:
        """Epochs of ``steps_per_epoch`` steps in the budget (the last may be shorter)."""
        return math.ceil(self.steps / self.steps_per_epoch)

    @property
    def frozen_steps(self) -> int:
        """Steps during which the backbone stays frozen (0: trainable from the start)."""
        return {"frozen": self.steps,
                "fine-tune": int(round(self.fine_tune_fraction * self.steps))}.get(self.method, 0)

    @property
    def moment_init_step(self) -> int | None:
        """The step before which the module is set from latent moments (``None``: never; the
        base VAEs have no module and ``no-labels`` must not read the labels)."""
        if not self.moment_init or self.method not in ("end-to-end", *PRETRAINED):
            return None
        step = 0 if self.method in PRETRAINED else self.moment_warmup
        return step if step < self.steps else None

    @property
    def pooling(self) -> Pooling:
        """How :func:`context_batches` draws this method's batches: the base VAEs on
        observational / all images (labels unused), the module methods per ``batching``."""
        return _POOLING.get(self.method, self.batching)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def build_model(
    config: TrainConfig, names: list[str], *, image_size: int, backbone: ConvVAE | None = None
) -> ContextVAE:
    """The untrained model of ``config.method`` (a fresh :class:`ConvVAE` unless ``backbone``)."""
    torch.manual_seed(config.seed)
    if backbone is None:
        backbone = ConvVAE(config.latent_dim, image_size=image_size, channels=config.channels,
                           hidden=config.hidden)
    if config.method in ("base-obs", "base-pooled"):
        return ContextVAE(backbone)
    module = ContextModule(len(names), config.concept_dim, latent_dim=backbone.latent_dim,
                           hidden=config.module_hidden, names=names)
    return ContextVAE(backbone, module, use_labels=config.method != "no-labels")


def init_offset(model: ContextVAE, data: QuadSet, config: TrainConfig) -> None:
    """Set a fresh backbone's decoder offset to the mean of (up to) 512 dequantised training
    images (see :class:`models.decoder.ConvDecoder`); pretrained backbones keep theirs."""
    set_offset = getattr(getattr(model.backbone, "decoder", None), "set_offset", None)
    if set_offset is not None and config.method not in PRETRAINED:
        gen = torch.Generator().manual_seed(config.seed)
        set_offset(dequantize(data.images[:512], generator=gen).mean(0))


class ContextLoss(nn.Module):
    """The loss module of :class:`~models.loop.Loop` for a :class:`ContextVAE`.

    Its rows are *slots* of the current epoch's plan (``plan``, a list of global batches):
    slot ``s * B + j`` is row ``j`` of batch ``s``. ``forward(slots)`` of one batch returns
    ``sum_rows (-ELBO_row + penalty) / (B * pixels)``, so the shards of all processes add up to
    the one-process loss ``(-mean ELBO + penalty) / pixels`` of the batch.
    """

    def __init__(self, model: ContextVAE, images: Tensor, config: TrainConfig) -> None:
        super().__init__()
        self.model, self.images, self.config = model, images, config  # images: uint8 (N,H,W,3)
        self.shape = (3, images.shape[1], images.shape[2])
        self.plan: list[ContextBatch] = []

    def forward(self, slots: Tensor) -> Tensor:
        size = self.config.batch_size
        step = int(slots[0]) // size
        if int(slots.max()) // size != step:
            raise ValueError("the slots of one call must belong to one batch of the plan")
        batch, pos = self.plan[step], slots - step * size
        uniform, eps = batch.noise(self.shape, self.model.noise_dim)
        device = self.images.device
        images = self.images[batch.rows[pos].to(device)].permute(0, 3, 1, 2).float()
        x = (images + uniform[pos].to(device)) / 256.0  # uniform dequantisation, see dequantize
        elbo = self.model.elbo_rows(x, batch.row_contexts(pos), eps=eps[pos].to(device))
        penalty = self.model.penalty(acyclicity=self.config.acyclicity,
                                     sparsity=self.config.sparsity)
        return (-elbo.sum() + penalty * len(slots)) / (size * math.prod(self.shape))


class CarriedAdam:
    """Optimizer factory for :class:`~models.loop.Loop`: Adam over the parameters it is given,
    keeping the state of those the previous optimizer it made already had. After the
    fine-tune switch (:meth:`Loop.rebuild` with the backbone unfrozen) the module keeps its
    moments and the backbone's start fresh, as one Adam over all parameters would do."""

    def __init__(self, lr: float, scaled: Sequence[nn.Parameter] = (), scale: float = 1.0) -> None:
        self.lr, self.scale = lr, scale
        self.scaled = {id(p) for p in scaled}
        self.last: torch.optim.Optimizer | None = None

    def __call__(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        """Adam over ``params``: those in ``scaled`` at ``lr * scale``, the others at ``lr``."""
        fast = [p for p in params if id(p) in self.scaled]
        rest = [p for p in params if id(p) not in self.scaled]
        groups = [{"params": rest}] + ([{"params": fast, "lr": self.lr * self.scale}] if fast
                                       else [])
        optimizer = torch.optim.Adam(groups, lr=self.lr)
        if self.last is not None:
            for p in params:
                if p in self.last.state:
                    optimizer.state[p] = self.last.state[p]
        self.last = optimizer
        return optimizer


class ContextTrainer:
    """A :class:`ContextVAE` and its training set on a :class:`~models.loop.Loop`; call
    :meth:`epoch` for epochs ``done // steps_per_epoch, ...`` in order.

    Args:
        model: the model (moved to ``ctx.device``).
        data: the training contexts.
        config: the run's budget and sizes.
        ctx: the process context (default one CPU process).
        amp: bfloat16 autocast on CUDA.
        done: optimiser steps already taken (a resumed run), which sets the fine-tune phase.
    """

    def __init__(
        self,
        model: ContextVAE,
        data: QuadSet,
        config: TrainConfig,
        *,
        ctx: Context | None = None,
        amp: bool = False,
        done: int = 0,
    ) -> None:
        self.ctx = ctx or Context()
        if config.batch_size < self.ctx.world:
            raise ValueError(f"batch_size ({config.batch_size}) must be at least the number of "
                             f"processes ({self.ctx.world})")
        self.model, self.data, self.config, self.done = model, data, config, done
        module = model.module
        if (config.moment_init_step is not None and module is not None
                and module.n * module.d > module.latent_dim):
            raise ValueError(f"moment_init needs n_concepts * concept_dim ({module.n * module.d}) "
                             f"<= latent_dim ({module.latent_dim}); set moment_init=False")
        self._set_backbone(config.frozen_steps == 0 or done > config.frozen_steps)
        model.to(self.ctx.device)
        images = torch.as_tensor(data.images).to(self.ctx.device)
        self.loss = ContextLoss(model, images, config)
        exogenous = model.module.exogenous_parameters() if model.module is not None else []
        self.loop = Loop(self.loss, self.ctx, lr=config.lr, grad_clip=config.grad_clip, amp=amp,
                         optimizer=CarriedAdam(config.lr, exogenous, config.exogenous_lr_scale))

    def _set_backbone(self, trainable: bool) -> None:
        self.backbone_trainable = trainable
        for p in self.model.backbone.parameters():
            p.requires_grad_(trainable)

    def epoch(self, epoch: int, *, progress: bool = False) -> dict[str, float]:
        """Train epoch ``epoch`` (0-based); returns its history entry: ``epoch`` (1-based),
        ``step`` (total), mean ``loss`` per step over all processes and its ``bpd``,
        ``seconds`` and ``images_per_s`` (all processes)."""
        c = self.config
        steps = min(c.steps_per_epoch, c.steps - epoch * c.steps_per_epoch)
        if steps < 1 or self.done != epoch * c.steps_per_epoch:
            raise ValueError(f"epoch {epoch} does not follow the {self.done} steps taken "
                             f"({c.epochs} epochs of {c.steps_per_epoch} steps in the budget)")
        self.loss.plan = context_batches(self.data, pooling=c.pooling,
                                         batch_size=c.batch_size, steps=steps, seed=c.seed,
                                         epoch=epoch)
        self.model.train()
        start, total = time.perf_counter(), 0.0
        bar = tqdm(range(steps), desc=f"{c.method} epoch {epoch + 1}/{c.epochs}", leave=False,
                   disable=not (progress and self.ctx.is_main))
        for i in bar:
            if not self.backbone_trainable and self.done >= c.frozen_steps:
                self._set_backbone(True)  # fine-tune: the module phase is over
                self.loop.rebuild()
            if self.done == c.moment_init_step:
                self.init_from_moments()
            slots = torch.arange(i * c.batch_size, (i + 1) * c.batch_size)
            total += self.loop.step(shard(slots, self.ctx))
            self.done += 1
        total = self._sum_over_ranks(total)
        seconds = time.perf_counter() - start
        mean = total / steps
        return {"epoch": epoch + 1, "step": self.done, "loss": mean,
                "bpd": mean / math.log(2.0) + 8.0, "seconds": seconds,
                "images_per_s": steps * c.batch_size / max(seconds, 1e-9)}

    @torch.no_grad()
    def init_from_moments(self) -> list[int]:
        """Set the module from the encoder's posterior on every training image (midpoint
        dequantised) per context, see :func:`~models.context.moments.init_from_moments`; the
        changed parameters restart their Adam moments. Returns the identified concepts."""
        module = self.model.module
        assert module is not None
        locs, scales = [], []
        for chunk in self.loss.images.split(512):
            x = (chunk.permute(0, 3, 1, 2).float() + 0.5) / 256.0
            loc, scale = self.model.backbone.encode(x)
            locs.append(loc.float())
            scales.append(scale.float())
        contexts = [self.data.contexts[i] for i in self.data.context]
        identified = init_from_moments(module, torch.cat(locs), torch.cat(scales), contexts)
        changed = [module.read.weight, module.read.bias, module.edges,
                   *module.exogenous_parameters()]
        for p in changed:
            if self.ctx.distributed:
                dist.broadcast(p.data, src=0)  # eigh may differ in the last bits across devices
            self.loop.optimizer.state.pop(p, None)
        return identified

    def _sum_over_ranks(self, value: float) -> float:
        if not self.ctx.distributed:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.ctx.device)
        dist.all_reduce(t)
        return float(t[0])

    def close(self) -> None:
        """Leave the backbone trainable (as a loaded model is) and the model in eval mode."""
        self._set_backbone(True)
        self.model.eval()


def fit(
    model: ContextVAE,
    data: QuadSet,
    config: TrainConfig,
    *,
    ctx: Context | None = None,
    amp: bool = False,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Train ``model`` in place for ``config.steps`` steps, in memory (no checkpoints: see
    :func:`models.context.train_run`); returns the history, one entry per epoch (see
    :meth:`ContextTrainer.epoch`). A fresh backbone's decoder offset is set first."""
    init_offset(model, data, config)
    trainer = ContextTrainer(model, data, config, ctx=ctx, amp=amp)
    try:
        return [trainer.epoch(e, progress=progress) for e in range(config.epochs)]
    finally:
        trainer.close()
