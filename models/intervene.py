"""Intervention grids: test images, their reconstruction, the model's intervened decode and the
renderer's ground-truth counterfactual, side by side."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np

from guides.encoder import as_image_batch
from models.checkpoint import load_model
from models.data import ImageSet
from models.data.run_data import run_images
from models.imagegrid import save_grid_png, tile, to_uint8

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
    test = run_images(cfg, "test")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(test):
        raise ValueError(f"n must be an int between 1 and the {len(test)} test images, got {n!r}")
    rows = np.floor(np.linspace(0, len(test) - 1, n) + 0.5).astype(np.int64)
    x = as_image_batch(test.images[rows])
    warn_outside_range(test, interventions)
    latent = vae.to_latent(interventions)
    if mode == "counterfactual":
        decoded, _ = vae.counterfactual(x, latent)
    elif mode == "interventional":
        decoded, _ = vae.interventional(x, latent, seed=seed)
    else:
        raise ValueError(f"mode must be 'counterfactual' or 'interventional', got {mode!r}")
    recon = vae.decode(vae.encode(x))
    truth, _ = test.counterfactual(dict(interventions), rows=rows)
    panels = [test.images[rows], to_uint8(recon), to_uint8(decoded), truth]
    title = ", ".join(f"{k}={v:g}" for k, v in interventions.items())
    return save_grid_png(tile(panels), out, labels=COLUMNS, title=f"do({title})")


def warn_outside_range(data: ImageSet, interventions: Mapping[str, float]) -> None:
    """``UserWarning`` for each intervention value outside its factor's range in ``data`` (the
    decoder has seen no such image: it extrapolates, often into a blur); unknown factors are
    left to the model's own error."""
    for name, value in interventions.items():
        if name in data.factor_names:
            column = data.factors[:, data.factor_names.index(name)]
            low, high = float(column.min()), float(column.max())
            # NaN or inf is the model's own error to give ("is NaN"), not a range warning
            if np.isfinite(float(value)) and not low <= float(value) <= high:
                warnings.warn(f"factor {name!r} = {float(value):g} lies outside the data's "
                              f"range [{low:.3g}, {high:.3g}]: the decode extrapolates",
                              UserWarning, stacklevel=3)
