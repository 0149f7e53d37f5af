"""Action retrieval: which action turned ``x`` into ``y``?

For a pair, every real action ``a`` is applied to the codes of ``x``; its distance is the
cross-entropy of the predicted code distribution against the actual codes of ``y``, summed over
slots, and ``P(a | x, y) = softmin(distance)`` (Gendron et al., IJCAI 2023, Sec. 4.2). Accuracy
counts the top action; undirected accuracy counts it right when its axis is right (``+`` and
``-`` merged).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .model import CTVAE
from .pairs import undirected


@torch.no_grad()
def action_distances(model: CTVAE, codes_x: Tensor, codes_y: Tensor, *, batch: int = 256) -> Tensor:
    """Distances ``(n, A)`` (column ``a - 1`` is action ``a``) for code pairs ``(n, N)``.
    Uses the deterministic structure (call with the model in eval mode)."""
    n_actions = len(model.actions) - 1
    out = []
    for s in range(0, len(codes_x), batch):
        cx, cy = codes_x[s : s + batch], codes_y[s : s + batch]
        b = len(cx)
        acts = torch.arange(1, n_actions + 1).repeat_interleave(b)
        logits = model.transition_logits(cx.repeat(n_actions, 1), acts)  # (A * b, N, K)
        logp = torch.log_softmax(logits, -1)
        nll = -logp.gather(-1, cy.repeat(n_actions, 1)[..., None])[..., 0].sum(-1)
        out.append(nll.view(n_actions, b).T)
    return torch.cat(out)


def action_probs(distances: Tensor) -> Tensor:
    """``softmin`` over actions: ``(n, A)`` rows summing to 1."""
    return torch.softmax(-distances, dim=-1)


def retrieval_accuracy(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """``{"accuracy", "undirected"}`` of predicted vs actual action indices (``1..A``)."""
    p, a = np.asarray(predicted), np.asarray(actual)
    if p.shape != a.shape or p.ndim != 1 or len(p) == 0:
        raise ValueError(f"predicted and actual must be equal-length 1-d; got {p.shape}, {a.shape}")
    return {
        "accuracy": float(np.mean(p == a)),
        "undirected": float(np.mean(undirected(p) == undirected(a))),
    }


@torch.no_grad()
def retrieve(model: CTVAE, x: Tensor, y: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Rank the actions for image pairs ``x, y (n, 3, H, W)``.

    Returns:
        ``(best, probs)``: the best action index ``(n,)`` in ``1..A`` and ``P(a | x, y)``
        ``(n, A)`` (column ``a - 1`` is action ``a``).
    """
    was = model.training
    model.eval()
    try:
        d = action_distances(model, model.vq.codes(x), model.vq.codes(y))
    finally:
        model.train(was)
    probs = action_probs(d)
    return (probs.argmax(-1) + 1).numpy(), probs.numpy()
