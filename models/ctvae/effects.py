"""Interventional structure read-out on code slots: which factors' slots does the model move
when it applies an action on another factor?

The CT-VAE's action is an intervention on a sparse set of code slots whose effect propagates
through the learned graph to the rest of the image (Gendron, Witbrock, Dobbie, IJCAI 2023,
Sec. 3); this module asks the trained model where its actions land, slot by slot, and
aggregates the slots to factors (:mod:`models.ctvae.graphscore` turns the result into a graph
and scores it; :mod:`models.ctvae.readback` reads factors from decoded images instead).

1. **Slot shifts** ``r[a, s]``: for held-out scenes, the total-variation distance between the
   model's predictive distribution of slot ``s``'s post-action code under action ``a`` and
   under "no action" (row 0, the null, is 0), averaged over scenes: the expected share of
   scenes whose slot ``s`` the action rewrites. The distribution, not its argmax, is read: the
   transition's copy bonus keeps most argmax codes in place after one small step (on the bench
   pendulum model argmax codes changed in 0.1% of slots under any action, so argmax change
   rates rank nothing), while the probabilities still move where the action acts.
2. **Factor effects** ``E[i, j]``: the mean, over the actions on factor ``i`` (both
   directions), of ``r[a, s] - r[0, s]`` averaged over the slots assigned to factor ``j``
   (:func:`models.ctvae.structure.assign_slots`); ``NaN`` where ``i`` has no action or ``j``
   no slot. ``E[i, i]`` is the action's effect on its own factor.

Its limit is the assignment: each slot goes to one factor, so a factor whose slots are all
better explained by another (pendulum's shadow length, which shares its cells with the shadow
position) gets no slot and cannot be seen. :func:`observed_shifts` (the data's own codes, real
``y`` instead of predictions) shows what this assignment allows at best.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from guides.encoder import as_image_batch

from .grids import FactorGrid
from .model import CTVAE
from .pairs import step, valid

PredictProbs = Callable[[Tensor, Tensor], Tensor]
"""``predict(codes (B, N) int64, actions (B,) int64) -> post-action code probabilities
(B, N, K)``."""


def model_probs(model: CTVAE) -> PredictProbs:
    """The CT-VAE's predictive code distribution (deterministic structure: ``model`` in eval)."""
    return lambda codes, actions: torch.softmax(model.transition_logits(codes, actions), -1)


@torch.no_grad()
def slot_shifts(
    predict: PredictProbs, codes: Tensor, n_actions: int, *, batch: int = 512
) -> np.ndarray:
    """Slot shifts ``(n_actions + 1, N)`` (module docstring, step 1): ``[a, s]`` is the mean over
    the ``n`` scenes of ``codes (n, N)`` of the total-variation distance between the predicted
    code distributions of slot ``s`` under action ``a`` and under action 0; row 0 is 0."""
    if codes.dim() != 2 or len(codes) == 0:
        raise ValueError(f"codes must be (n, N) with n >= 1; got {tuple(codes.shape)}")
    total = torch.zeros(n_actions + 1, codes.shape[1], dtype=torch.float64)
    for s in range(0, len(codes), batch):
        part = codes[s : s + batch]
        none = predict(part, torch.zeros(len(part), dtype=torch.long))
        for a in range(1, n_actions + 1):
            p = predict(part, torch.full((len(part),), a, dtype=torch.long))
            total[a] += 0.5 * (p - none).abs().sum(-1).double().sum(0)
    return (total / len(codes)).numpy()


@torch.no_grad()
def observed_shifts(
    model: CTVAE, grid: FactorGrid, images: np.ndarray, scenes: np.ndarray
) -> np.ndarray:
    """The data's own slot shifts ``(A + 1, N)``: ``[a, s]`` is the share of the scenes (scene
    numbers ``(n,)``) whose slot ``s`` has a different VQ code in the real image after action
    ``a`` (scenes that ``a`` moves off the grid left out); row 0 is 0."""
    index = grid.scenes()[scenes]
    codes = model.vq.codes(as_image_batch(images[scenes]))
    out = np.zeros((len(model.actions), codes.shape[1]))
    for a in range(1, len(model.actions)):
        moved = step(grid, index, np.full(len(scenes), a))
        ok = valid(grid, moved)
        if ok.any():
            after = model.vq.codes(as_image_batch(images[grid.scene_number(moved[ok])]))
            out[a] = (after != codes[torch.as_tensor(ok)]).double().mean(0).numpy()
    return out


def action_factors(model: CTVAE, grid: FactorGrid) -> list[int]:
    """The factor column each real action of ``model`` moves (``len(model.actions) - 1``)."""
    names = list(grid.factor_names)
    return [names.index(grid.axis_factor[a[:-1]]) for a in model.actions[1:]]


def factor_effects(
    shifts: np.ndarray,
    assignment: np.ndarray,
    action_factor: Sequence[int],
    n_factors: int,
) -> np.ndarray:
    """Factor effects ``E (F, F)`` (module docstring, step 2).

    Args:
        shifts: :func:`slot_shifts` or :func:`observed_shifts` ``(A + 1, N)``.
        assignment: factor of each slot ``(N,)``, -1 for none.
        action_factor: factor index moved by each real action, ``A`` entries (action ``a`` is
            ``shifts[a]``, ``a = 1..A``).
        n_factors: ``F``.
    """
    if len(action_factor) != len(shifts) - 1:
        raise ValueError(f"action_factor must name one factor per real action "
                         f"({len(shifts) - 1}); got {len(action_factor)}")
    lift = shifts[1:] - shifts[:1]  # (A, N): above the no-action null
    out = np.full((n_factors, n_factors), np.nan)
    for i in range(n_factors):
        acts = [k for k, f in enumerate(action_factor) if f == i]
        for j in range(n_factors):
            slots = np.flatnonzero(assignment == j)
            if acts and len(slots):
                out[i, j] = float(lift[np.ix_(acts, slots)].mean())
    return out
