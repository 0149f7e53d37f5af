"""Intervention grids: test images, their reconstruction, the model's intervened decode and the
renderer's ground-truth counterfactual, side by side."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from guides.encoder import as_image_batch
from models.checkpoint import load_model
from models.data import load_dataset
from scm.io import atomic_write

Mode = Literal["counterfactual", "interventional"]
COLUMNS = ("original", "reconstruction", "intervened", "ground truth")


def intervene_grid(
    run: str | os.PathLike[str],
    interventions: Mapping[str, float],
    *,
    n: int = 8,
    out: str | os.PathLike[str] = "grid.png",
    mode: Mode = "counterfactual",
    seed: int = 0,
) -> Path:
    """Write a PNG grid for ``do(interventions)`` on ``n`` test images of the run's data set.

    Rows are test images (evenly spaced over the test split); columns: original,
    reconstruction, intervened decode (``mode``: abducted noise held fixed, or descendants
    resampled), ground-truth counterfactual render.

    Args:
        run: a run directory from :func:`models.train_vae.train_run`.
        interventions: ``{factor: value}`` in the data's raw units (e.g. radians).
        n: number of test images (rows).
        out: the PNG path.
        mode: ``"counterfactual"`` or ``"interventional"``.
        seed: seeds the resampled descendants (interventional mode).

    Returns:
        The path written.
    """
    vae, record = load_model(run)
    if not interventions:
        raise ValueError("interventions is empty; give at least one factor=value")
    cfg = record["train"]
    test = load_dataset(cfg["dataset"], size=cfg["image_size"], split="test", progress=False)
    rows = np.floor(np.linspace(0, len(test) - 1, n) + 0.5).astype(np.int64)
    x = as_image_batch(test.images[rows])
    latent = vae.to_latent(interventions)
    if mode == "counterfactual":
        decoded, _ = vae.counterfactual(x, latent)
    elif mode == "interventional":
        decoded, _ = vae.interventional(x, latent, seed=seed)
    else:
        raise ValueError(f"mode must be 'counterfactual' or 'interventional', got {mode!r}")
    recon = vae.decode(vae.encode(x))
    truth, _ = test.counterfactual(dict(interventions), rows=rows)
    panels = [test.images[rows], _to_uint8(recon), _to_uint8(decoded), truth]
    grid = _tile(panels)
    path = Path(out)
    _save_png(grid, path, title=", ".join(f"{k}={v:g}" for k, v in interventions.items()))
    return path


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)


def _tile(columns: list[np.ndarray], pad: int = 2) -> np.ndarray:
    n, h, w, _ = columns[0].shape
    grid = np.full((n * (h + pad) + pad, len(columns) * (w + pad) + pad, 3), 255, np.uint8)
    for j, col in enumerate(columns):
        for i in range(n):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[y : y + h, x : x + w] = col[i]
    return grid


def _save_png(grid: np.ndarray, path: Path, *, title: str) -> None:
    from matplotlib.figure import Figure

    h, w, _ = grid.shape
    fig = Figure(figsize=(w / 50 + 0.2, h / 50 + 0.6))
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.96 - 0.4 / (h / 50 + 0.6)))
    ax.imshow(grid, interpolation="nearest")
    ax.set_xticks([(j + 0.5) * w / len(COLUMNS) for j in range(len(COLUMNS))], COLUMNS, fontsize=7)
    ax.xaxis.tick_top()
    ax.set_yticks([])
    fig.suptitle(f"do({title})", fontsize=8, y=0.995)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write(path, buf.getvalue())
