"""Interventional structure read-out on factors read back from the model's decoded images.

The CT-VAE's action is an intervention on a sparse set of code slots whose effect propagates
through the learned graph to the rest of the image (Gendron, Witbrock, Dobbie, IJCAI 2023,
Sec. 3). Whether that reproduces the data's causal structure is a question about factors, so
this read-out measures factors directly, with a supervised regressor trained on real renders
(:class:`models.metrics.FactorReader`, the same reader the issue's "an action changes the
factor it names" check uses), and needs no slot-to-factor assignment:

1. For held-out scenes, the model's predictive distribution of every slot's post-action code
   under action ``a`` and under "no action" is decoded as the decoder's image of each slot's
   expected code vector (:func:`soft_decode`). One small step rarely flips a slot's most likely
   code (the transition's copy bonus), so the argmax image of ``forward_action`` barely moves;
   the expected vectors move with the probabilities.
2. **Factor shifts** ``s[a, j]``: the mean over scenes of ``|read_j(a) - read_j(none)|`` in
   units of factor ``j``'s standard deviation; row 0 (no action) is 0.
3. **Action effects** ``E[i, j]``: the mean of ``s[a, j]`` over the actions on factor ``i``
   (both directions), ``NaN`` rows for factors without an action; graph and scores by
   :mod:`models.ctvae.graphscore`.

:func:`observed_factor_shifts` is the same measurement on real pairs ``(x, y)`` (the reader's
own cross-talk included): what a perfect transition model would show through this reader.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from guides.encoder import as_image_batch
from models.data import cache_root
from models.data.imageset import ImageSet
from models.metrics import FactorReader, load_reader, save_reader, train_reader

from .effects import model_probs
from .grids import FactorGrid
from .model import CTVAE
from .pairs import step, valid


def soft_decode(model: CTVAE, probs: Tensor) -> Tensor:
    """Images ``(n, 3, H, W)`` in [0, 1] decoded from each slot's expected code vector under
    code probabilities ``probs (n, N, K)``."""
    vq = model.vq
    n = len(probs)
    group = torch.arange(vq.n_nodes, device=probs.device) // (vq.side * vq.side)
    vectors = torch.einsum("nsk,skd->nsd", probs, vq.quantizer.embed[group])  # (n, N, d)
    # node order is (codebook, row, col): back to the quantizer's (n, G * d, h, w) layout
    z = vectors.view(n, vq.n_codebooks, vq.side, vq.side, -1).permute(0, 1, 4, 2, 3)
    return vq.decode(z.reshape(n, -1, vq.side, vq.side)).clamp(0.0, 1.0)


def grid_reader(
    grid: FactorGrid,
    images: np.ndarray,
    *,
    steps: int = 400,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> FactorReader:
    """A :class:`FactorReader` of ``grid``'s factors trained on its train-split scenes
    (``images``: every scene, :meth:`FactorGrid.images`), cached beside the images."""
    size = images.shape[1]
    name = f"reader-ctvae-{grid.name}-{size}px-s{steps}-seed{seed}.safetensors"
    path = cache_root(cache_dir) / name
    reader = load_reader(path)
    if reader is None:
        train = np.flatnonzero(~grid.test_mask())
        data = ImageSet(images=images[train],
                        factors=grid.factors(grid.scenes()[train]).astype(np.float32),
                        factor_names=tuple(grid.factor_names), graph=dict(grid.graph),
                        split="train", name=grid.name, index=train)  # type: ignore[arg-type]
        reader = train_reader(data, steps=steps, seed=seed, progress=progress)
        save_reader(reader, path)
    return reader


@torch.no_grad()
def factor_shifts(
    model: CTVAE, reader: FactorReader, codes: Tensor, *, batch: int = 256
) -> np.ndarray:
    """Factor shifts ``(A + 1, F)`` (module docstring, step 2) of the scenes ``codes (n, N)``,
    in units of the reader's factor standard deviations. Call with ``model`` in eval mode."""
    if codes.dim() != 2 or len(codes) == 0:
        raise ValueError(f"codes must be (n, N) with n >= 1; got {tuple(codes.shape)}")
    predict, scale = model_probs(model), reader.scale.double().numpy()
    total = np.zeros((len(model.actions), len(reader.names)))
    for s in range(0, len(codes), batch):
        part = codes[s : s + batch]
        acts = torch.zeros(len(part), dtype=torch.long)
        base = reader.read(soft_decode(model, predict(part, acts)))
        for a in range(1, len(model.actions)):
            moved = reader.read(soft_decode(model, predict(part, acts + a)))
            total[a] += np.abs(moved - base).sum(0) / scale
    return total / len(codes)


@torch.no_grad()
def observed_factor_shifts(
    reader: FactorReader, grid: FactorGrid, images: np.ndarray, scenes: np.ndarray,
    n_actions: int,
) -> np.ndarray:
    """Factor shifts ``(n_actions + 1, F)`` read from real pairs: ``[a, j]`` is the mean of
    ``|read_j(y) - read_j(x)| / sd_j`` over the ``scenes`` (numbers ``(n,)``) that action ``a``
    keeps on the grid; row 0 is 0."""
    index, scale = grid.scenes()[scenes], reader.scale.double().numpy()
    before = reader.read(as_image_batch(images[scenes]))
    out = np.zeros((n_actions + 1, len(reader.names)))
    for a in range(1, n_actions + 1):
        moved = step(grid, index, np.full(len(scenes), a))
        ok = valid(grid, moved)
        if ok.any():
            after = reader.read(as_image_batch(images[grid.scene_number(moved[ok])]))
            out[a] = (np.abs(after - before[ok]) / scale).mean(0)
    return out


def action_effects(
    shifts: np.ndarray, action_factor: Sequence[int], n_factors: int
) -> np.ndarray:
    """Action effects ``E (F, F)``: row ``i`` the mean of ``shifts (A + 1, F)`` over the actions
    on factor ``i`` (``action_factor``: the factor of each real action ``1..A``); ``NaN`` rows
    for factors without an action."""
    if len(action_factor) != len(shifts) - 1:
        raise ValueError(f"action_factor must name one factor per real action "
                         f"({len(shifts) - 1}); got {len(action_factor)}")
    out = np.full((n_factors, shifts.shape[1]), np.nan)
    for i in range(n_factors):
        acts = [k + 1 for k, f in enumerate(action_factor) if f == i]
        if acts:
            out[i] = shifts[acts].mean(0)
    return out
