"""Learned factors as a table: encode a data set with a trained model's guide, then search
for the factor DAG with :mod:`scm.discovery` and score it against the data set's true graph."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
import torch

from guides.encoder import as_image_batch
from models.caufvae import CauFVAE
from models.data import ImageSet
from scm.discovery import DiscoveredGraph, compare, discover


def encode_factors(vae: CauFVAE, images: np.ndarray, *, batch: int = 256) -> pd.DataFrame:
    """Posterior means of every factor, a column per factor; returns ``(n, k)``.

    A vector factor is summarised by the first principal component of its block (centred,
    sign fixed so that the component correlates positively with the block's first
    coordinate): one number per factor, as constraint- and score-based searches expect.
    """
    parts: dict[str, list[torch.Tensor]] = {f: [] for f in vae.factors}
    for start in range(0, len(images), batch):
        z = vae.encode(as_image_batch(images[start : start + batch]))
        for f in vae.factors:
            parts[f].append(z[f])
    columns = {}
    for f in vae.factors:
        block = torch.cat(parts[f]).double().numpy()
        columns[f] = block[:, 0] if block.shape[1] == 1 else _first_component(block)
    return pd.DataFrame(columns)


def _first_component(block: np.ndarray) -> np.ndarray:
    centred = block - block.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    score = centred @ vt[0]
    return score if np.corrcoef(score, block[:, 0])[0, 1] >= 0 else -score


def discover_latents(
    vae: CauFVAE, data: ImageSet, *, method: str = "pc", **options: Any
) -> tuple[DiscoveredGraph, dict[str, float]]:
    """Search the factor DAG over the encoded ``data``; returns ``(graph, scores vs truth)``."""
    table = encode_factors(vae, data.images)
    found = discover(table, method=method, **options)
    truth = {k: list(v) for k, v in data.graph.items()}
    return found, compare(found, truth).as_dict()


def discover_run(
    run: str | os.PathLike[str], *, method: str = "pc", split: str = "test", **options: Any
) -> tuple[DiscoveredGraph, dict[str, float]]:
    """:func:`discover_latents` for a run directory written by ``models.train_vae.train_run``."""
    from models.checkpoint import load_model
    from models.data.run_data import run_images

    vae, record = load_model(run)
    cfg = record["train"]
    data = run_images(cfg, split)
    return discover_latents(vae, data, method=method, **options)


def write_latent_table(
    run: str | os.PathLike[str], folder: str | os.PathLike[str]
) -> tuple[str, str]:
    """Encode a CauF-VAE run's test split into ``folder/factors.csv`` (:func:`encode_factors`)
    and its data set's true graph into ``folder/truth.json``; returns both paths."""
    import json

    from models.checkpoint import load_model
    from models.data.run_data import run_images

    vae, record = load_model(run)
    cfg = record["train"]
    test = run_images(cfg, "test")
    factors, truth = os.path.join(folder, "factors.csv"), os.path.join(folder, "truth.json")
    encode_factors(vae, test.images).to_csv(factors, index=False)
    with open(truth, "w") as fh:
        json.dump({k: list(v) for k, v in test.graph.items()}, fh)
    return factors, truth
