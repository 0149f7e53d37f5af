"""Run-level helpers for the command line: an action's image grid and ranked actions of a pair.

``action_grid``: rows are held-out scenes; columns the original, its reconstruction,
``forward_action`` and the true one-step neighbour render (blank where the step leaves the
grid). ``rank_actions``: ``P(a | x, y)`` for two PNG files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from guides.encoder import as_image_batch
from models.data import area_weights
from models.imagegrid import save_grid_png, tile, to_uint8

from .grids import factor_grid
from .pairs import parse_action, step, valid
from .retrieval import retrieve
from .runio import load_run

COLUMNS = ("original", "reconstruction", "action", "ground truth")


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
    test = np.flatnonzero(grid.test_mask())
    # bounded as the CauF-VAE grid is: --n 100000 rendered and tiled for minutes
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(test):
        raise ValueError(f"n must be an int between 1 and the {len(test)} test scenes; got {n!r}")
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
    panels = [images, to_uint8(model.reconstruct(x)), to_uint8(model.forward_action(x, action)),
              truth]
    return save_grid_png(tile(panels), out, labels=COLUMNS, title=f"{cfg['dataset']}: {action}",
                         pixels_per_inch=40, fontsize=6)


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
