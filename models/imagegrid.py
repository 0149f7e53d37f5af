"""PNG grids of image columns (original | reconstruction | intervened | truth, ...)."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from scm.io import atomic_write


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images ``(n, 3, H, W)`` in [0, 1] as uint8 ``(n, H, W, 3)``."""
    return (images.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)


def tile(columns: Sequence[np.ndarray], pad: int = 2) -> np.ndarray:
    """One uint8 image of ``columns`` side by side, each uint8 ``(n, H, W, 3)`` stacked down
    its column, on white with ``pad`` pixels between cells."""
    n, h, w, _ = columns[0].shape
    grid = np.full((n * (h + pad) + pad, len(columns) * (w + pad) + pad, 3), 255, np.uint8)
    for j, col in enumerate(columns):
        for i in range(n):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[y : y + h, x : x + w] = col[i]
    return grid


def save_grid_png(
    grid: np.ndarray,
    path: str | os.PathLike[str],
    *,
    labels: Sequence[str],
    title: str,
    pixels_per_inch: float = 50,
    fontsize: float = 7,
) -> Path:
    """Write ``grid`` (from :func:`tile`) as a PNG with a label over each column and a title,
    atomically; returns the path."""
    from matplotlib.figure import Figure

    h, w, _ = grid.shape
    height = h / pixels_per_inch + 0.6
    fig = Figure(figsize=(w / pixels_per_inch + 0.2, height))
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.96 - 0.4 / height))
    ax.imshow(grid, interpolation="nearest")
    ax.set_xticks([(j + 0.5) * w / len(labels) for j in range(len(labels))], labels,
                  fontsize=fontsize)
    ax.xaxis.tick_top()
    ax.set_yticks([])
    fig.suptitle(title, fontsize=8, y=0.995)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    path = Path(path)
    atomic_write(path, buf.getvalue())
    return path
