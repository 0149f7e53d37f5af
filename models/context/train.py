"""Training a context module (three modes) and its ablations on context-labelled images.

Every training batch comes from one context (Markham et al., arXiv 2507.04754, Sec. 3), drawn
uniformly among the training contexts, and the module switches its architecture to it. Methods:

* ``end-to-end``: backbone and module trained together from scratch;
* ``fine-tune``: a pretrained backbone; the module alone for ``fine_tune_fraction`` of the
  steps, then everything;
* ``frozen``: a pretrained backbone, frozen; only the module learns;
* ``base-obs`` / ``base-pooled``: the backbone alone (no module) on observational images only /
  on all training contexts pooled;
* ``no-labels``: the module end-to-end with every context label ignored.

All methods run the same number of optimiser steps (the budget). The loss per step is
``(-ELBO + acyclicity h(A) + sparsity |A|) / pixels``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal, get_args

import numpy as np
import torch
from tqdm.auto import tqdm

from models.data.quad import QuadSet

from .backbone import ConvVAE
from .model import ContextVAE, dequantize
from .module import ContextModule

Method = Literal["end-to-end", "fine-tune", "frozen", "base-obs", "base-pooled", "no-labels"]
METHODS: tuple[str, ...] = get_args(Method)
PRETRAINED = ("fine-tune", "frozen")


@dataclass
class TrainConfig:
    """Budget and sizes of one training run (all methods share it)."""

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

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}; got {self.method!r}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be >= 1; got {self.steps}, "
                             f"{self.batch_size}")
        if not 0.0 <= self.fine_tune_fraction <= 1.0:
            raise ValueError(f"fine_tune_fraction must be in [0, 1]; got {self.fine_tune_fraction}")

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


def _batches(
    data: QuadSet, config: TrainConfig, rng: np.random.Generator
) -> Callable[[], tuple[np.ndarray, tuple[str, ...]]]:
    """A function drawing one batch ``(indices, context)`` per call for ``config.method``."""
    by_context = [np.flatnonzero(data.context == i) for i in range(len(data.contexts))]
    if config.method == "base-obs":
        if () not in data.contexts:
            raise ValueError("base-obs needs an observational context () in the training data")
        obs = by_context[data.contexts.index(())]
        return lambda: (rng.choice(obs, config.batch_size), ())
    if config.method == "base-pooled":
        return lambda: (rng.integers(0, len(data), config.batch_size), ())

    def draw() -> tuple[np.ndarray, tuple[str, ...]]:
        c = int(rng.integers(len(data.contexts)))
        return rng.choice(by_context[c], config.batch_size), data.contexts[c]

    return draw


def fit(
    model: ContextVAE, data: QuadSet, config: TrainConfig, *, progress: bool = True
) -> list[dict[str, float]]:
    """Train ``model`` in place for ``config.steps`` steps; returns the history (every 50 steps
    and the last: ``step``, mean ``loss`` and ``bpd`` since the previous entry)."""
    rng = np.random.default_rng(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    draw = _batches(data, config, rng)
    backbone_params = list(model.backbone.parameters())
    frozen_until = {"frozen": config.steps,
                    "fine-tune": int(round(config.fine_tune_fraction * config.steps))}.get(
        config.method, 0)
    for p in backbone_params:
        p.requires_grad_(frozen_until == 0)
    optim = torch.optim.Adam(model.parameters(), lr=config.lr)
    dims = 3 * data.images.shape[1] * data.images.shape[2]
    set_offset = getattr(getattr(model.backbone, "decoder", None), "set_offset", None)
    if set_offset is not None and config.method not in PRETRAINED:
        set_offset(dequantize(data.images[:512], generator=gen).mean(0))  # see ConvDecoder
    history, losses = [], []
    model.train()
    for step in tqdm(range(1, config.steps + 1), desc=config.method, disable=not progress):
        if step == frozen_until + 1 and frozen_until > 0:
            for p in backbone_params:
                p.requires_grad_(True)
        idx, context = draw()
        x = dequantize(data.images[idx], generator=gen)
        elbo = model.elbo(x, context)
        penalty = model.penalty(acyclicity=config.acyclicity, sparsity=config.sparsity)
        loss = (-elbo.mean() + penalty) / dims
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        losses.append(loss.item())
        if step % 50 == 0 or step == config.steps:
            mean = float(np.mean(losses))
            history.append({"step": step, "loss": mean, "bpd": mean / np.log(2.0) + 8.0})
            losses = []
    for p in backbone_params:
        p.requires_grad_(True)
    model.eval()
    return history
