"""Scores of a context model: per-context sliced Wasserstein distance (in distribution and on
held-out compositions), reconstruction error and the ELBO in bits per dimension.

The sliced Wasserstein distance ``SW_2`` between real and generated images of one context is
POT's Monte-Carlo estimate (``ot.sliced_wasserstein_distance``, Bonneel et al. 2015) over flat
pixel vectors in [0, 1], with a fixed projection seed; "Concept" averages it over the training
contexts and "Compo" over the held-out compositions, as in Markham et al. (arXiv 2507.04754,
Table 2).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import ot
import torch
from torch import Tensor

from models.data.quad import QuadData, QuadSet, context_name

from .model import ContextVAE, bits_per_dim, dequantize


def sliced_wasserstein(
    a: Tensor | np.ndarray, b: Tensor | np.ndarray, *, n_projections: int = 200, seed: int = 0
) -> float:
    """``SW_2`` between the rows of ``a (n, ...)`` and ``b (m, ...)`` (flattened), uniform
    weights, ``n_projections`` random directions drawn with ``seed``."""
    x = torch.as_tensor(a, dtype=torch.float64).flatten(1)
    y = torch.as_tensor(b, dtype=torch.float64).flatten(1)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"a and b must have the same width; got {x.shape[1]} and {y.shape[1]}")
    return float(ot.sliced_wasserstein_distance(x, y, n_projections=n_projections, seed=seed))


def _as_float(images: np.ndarray) -> Tensor:
    return torch.as_tensor(images).permute(0, 3, 1, 2).double() / 255.0


@torch.no_grad()
def context_swd(
    model: ContextVAE, data: QuadSet, *, seed: int = 0, n_projections: int = 200
) -> dict[str, float]:
    """``{context name: SW_2(real test images of it, as many generated in it)}``."""
    out = {}
    for i, ctx in enumerate(data.contexts):
        real = _as_float(data.of(ctx))
        fake = model.generate(len(real), ctx, seed=seed + 1000 * i)
        out[context_name(ctx)] = sliced_wasserstein(real, fake, n_projections=n_projections,
                                                    seed=seed)
    return out


@torch.no_grad()
def elbo_bpd(model: ContextVAE, data: QuadSet, *, seed: int = 0, batch: int = 256) -> float:
    """Mean ELBO bound in bits per dimension, each image scored in its own context."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    values = []
    for i, ctx in enumerate(data.contexts):
        images = data.images[data.context == i]
        for start in range(0, len(images), batch):
            values.append(model.elbo(dequantize(images[start : start + batch], generator=gen), ctx))
    dims = 3 * data.images.shape[1] * data.images.shape[2]
    return bits_per_dim(torch.cat(values), dims)


@torch.no_grad()
def reconstruction_mse(model: ContextVAE, data: QuadSet, *, batch: int = 256) -> float:
    """Mean squared pixel error (pixels in [0, 1]) of reconstructions at the posterior mean."""
    errors = []
    for start in range(0, len(data), batch):
        x = _as_float(data.images[start : start + batch]).float()
        errors.append(((model.reconstruct(x) - x) ** 2).flatten(1).mean(1))
    return float(torch.cat(errors).mean())


def evaluate(model: ContextVAE, data: QuadData, *, seed: int = 0) -> dict[str, object]:
    """Concept / Compo / Recon and bits per dimension in and out of distribution.

    Returns:
        ``{"concept", "compo", "recon", "bpd_in", "bpd_out"}`` floats and ``"swd"``:
        ``{context: SW_2}`` for every test and held-out context.
    """
    model.eval()
    swd_in = context_swd(model, data.test, seed=seed)
    swd_out = context_swd(model, data.heldout, seed=seed)
    return {
        "concept": float(np.mean(list(swd_in.values()))),
        "compo": float(np.mean(list(swd_out.values()))),
        "recon": reconstruction_mse(model, data.test),
        "bpd_in": elbo_bpd(model, data.test, seed=seed),
        "bpd_out": elbo_bpd(model, data.heldout, seed=seed),
        "swd": {**swd_in, **swd_out},
    }


def format_rows(rows: dict[str, dict[str, Sequence[float]]], keys: Sequence[str]) -> str:
    """A markdown table, one row per method, ``mean ± std`` over seeds for each key."""
    head = "| method | " + " | ".join(keys) + " |"
    lines = [head, "|" + "---|" * (len(keys) + 1)]
    for method, scores in rows.items():
        cells = [f"{np.mean(scores[k]):.4f} ± {np.std(scores[k]):.4f}" for k in keys]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
