"""Run-level helpers for the command line: an action's image grid and ranked actions of a pair.

``action_grid``: rows are held-out scenes; columns the original, its reconstruction,
``forward_action`` and the true one-step neighbour render (blank where the step leaves the
grid). ``rank_actions``: ``P(a | x, y)`` for two PNG files.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

from guides.encoder import as_image_batch
from models.data import area_weights
from scm.io import atomic_write

from .grids import factor_grid
from .pairs import parse_action, step, valid
from .retrieval import retrieve
from .runio import load_run

COLUMNS = ("original", "reconstruction", "action", "ground truth")


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)


def action_grid(
    run: str | os.PathLike[str],
    action: str,
    *,
    n: int = 8,
    out: str | os.PathLike[str] = "grid.png",
) -> Path:
    """Write the PNG grid of ``action`` (e.g. ``"light+"``) on ``n`` held-out scenes of the run's
    data set; returns the path written."""
    model, record = load_run(run)
    cfg = record["train"]
    grid = factor_grid(cfg["dataset"])
    a = parse_action(grid, action)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int; got {n!r}")
    test = np.flatnonzero(grid.test_mask())
    scenes = test[np.floor(np.linspace(0, len(test) - 1, n) + 0.5).astype(np.int64)]
    index = grid.scenes()[scenes]
    size = cfg["image_size"]
    images = grid.render(index, size=size)
    x = as_image_batch(images)
    moved = step(grid, index, np.full(n, a))
    ok = valid(grid, moved)
    truth = np.full_like(images, 255)
    if ok.any():
        truth[ok] = grid.render(moved[ok], size=size)
    panels = [images, _to_uint8(model.reconstruct(x)), _to_uint8(model.forward_action(x, action)),
              truth]
    pad = 2
    grid_img = np.full((n * (size + pad) + pad, 4 * (size + pad) + pad, 3), 255, np.uint8)
    for j, col in enumerate(panels):
        for i in range(n):
            r, c = pad + i * (size + pad), pad + j * (size + pad)
            grid_img[r : r + size, c : c + size] = col[i]
    path = Path(out)
    _save_png(grid_img, path, title=f"{cfg['dataset']}: {action}")
    return path


def _save_png(grid: np.ndarray, path: Path, *, title: str) -> None:
    from matplotlib.figure import Figure

    h, w, _ = grid.shape
    fig = Figure(figsize=(w / 40 + 0.2, h / 40 + 0.6))
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.96 - 0.4 / (h / 40 + 0.6)))
    ax.imshow(grid, interpolation="nearest")
    ax.set_xticks([(j + 0.5) * w / len(COLUMNS) for j in range(len(COLUMNS))], COLUMNS, fontsize=6)
    ax.xaxis.tick_top()
    ax.set_yticks([])
    fig.suptitle(title, fontsize=8, y=0.995)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write(path, buf.getvalue())


def read_png(path: str | os.PathLike[str], size: int) -> np.ndarray:
    """An RGB(A) PNG as uint8 ``(size, size, 3)`` (square images only; area-resized)."""
    from matplotlib.image import imread

    file = Path(path)
    if not file.exists():
        raise ValueError(f"image {file} does not exist")
    try:
        img = np.asarray(imread(file))
    except (OSError, ValueError, SyntaxError) as err:
        raise ValueError(f"image {file} is not a readable PNG: {err}") from err
    if img.dtype != np.uint8:
        img = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.shape[0] != img.shape[1]:
        raise ValueError(f"image {file} must be a square RGB or RGBA image; got {img.shape}")
    rgb = img[..., :3].astype(np.float64)
    if img.shape[0] != size:
        w = area_weights(img.shape[0], size)
        rgb = np.einsum("ij,jkc,lk->ilc", w, rgb, w)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def rank_actions(
    run: str | os.PathLike[str], before: str | os.PathLike[str], after: str | os.PathLike[str]
) -> list[tuple[str, float]]:
    """``[(action, P(a | x, y)), ...]`` best first for the PNGs ``before`` (x) and ``after`` (y)."""
    model, record = load_run(run)
    size = record["train"]["image_size"]
    x = as_image_batch(read_png(before, size)[None])
    y = as_image_batch(read_png(after, size)[None])
    _, probs = retrieve(model, x, y)
    order = np.argsort(-probs[0])
    return [(model.actions[k + 1], float(probs[0, k])) for k in order]
