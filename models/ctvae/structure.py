"""Structure read-out: the learned code-slot graph, and the same graph aggregated to factors.

Slot graph: edge ``i -> j`` weighted by its probability averaged over the real actions' edge
sets (an edge matters only where an action moves its source). Slot assignment: each slot goes
to the factor its code is most informative about (normalised mutual information between the
slot's code and the factor's value binned in ``bins`` quantiles, over a sample of scenes; slots
below ``min_nmi`` stay unassigned). :func:`adjacency_effects` aggregates the action edge sets
to factors relative to the "no action" edge set; :func:`compare_graphs` gives the structural
Hamming distance to the true graph.

The learned adjacency is a weak read-out of the factor graph: with free intervention masks an
action can touch every slot it must change directly, so the loss does not need the edges, and at
the bench budget the edge probabilities stay near their initial ~0.3 (mean move from the
initial values 0.06 on pendulum, 0.15 on flow). The interventional read-outs
(:mod:`models.ctvae.readback`, :mod:`models.ctvae.effects`) ask the model what its actions do
instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import networkx as nx
import numpy as np
import torch

from .model import CTVAE


def slot_names(model: CTVAE) -> list[str]:
    """Names ``"g{codebook}r{row}c{col}"`` of the ``N`` code slots, in node order."""
    s = model.vq.side
    return [f"g{g}r{r}c{c}" for g in range(model.vq.n_codebooks) for r in range(s)
            for c in range(s)]


@torch.no_grad()
def slot_weights(model: CTVAE) -> np.ndarray:
    """``(N, N)`` edge probabilities averaged over the real actions' edge sets."""
    return model.transition.edge_probs()[1:].mean(0).nan_to_num(0.0).numpy()


def code_graph(model: CTVAE, *, threshold: float = 0.5) -> nx.DiGraph:
    """The learned slot graph: every slot a node, edges with mean probability > ``threshold``
    (attribute ``weight``)."""
    w, names = slot_weights(model), slot_names(model)
    g = nx.DiGraph()
    g.add_nodes_from(names)
    for i, j in zip(*np.nonzero(w > threshold), strict=True):
        g.add_edge(names[i], names[j], weight=float(w[i, j]))
    return g


def _nmi(a: np.ndarray, b: np.ndarray) -> float:
    """Mutual information of two discrete arrays over the smaller of their entropies."""
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(1), joint.sum(0)
    nz = joint > 0
    mi = float((joint[nz] * np.log(joint[nz] / np.outer(pa, pb)[nz])).sum())
    ent = [float(-(p[p > 0] * np.log(p[p > 0])).sum()) for p in (pa, pb)]
    return mi / max(min(ent), 1e-12)


def assign_slots(
    codes: np.ndarray, factors: np.ndarray, *, bins: int = 8, min_nmi: float = 0.05
) -> np.ndarray:
    """Factor column of each slot ``(N,)`` (-1: unassigned) from codes ``(n, N)`` and raw
    factors ``(n, F)`` of the same scenes."""
    binned = []
    for f in factors.T:
        edges = np.unique(np.quantile(f, np.linspace(0, 1, bins + 1)[1:-1]))
        binned.append(np.searchsorted(edges, f))
    out = np.full(codes.shape[1], -1)
    for i in range(codes.shape[1]):
        _, c = np.unique(codes[:, i], return_inverse=True)
        if c.max() == 0:
            continue
        scores = [_nmi(c, b) for b in binned]
        if max(scores) >= min_nmi:
            out[i] = int(np.argmax(scores))
    return out


@torch.no_grad()
def adjacency_effects(
    model: CTVAE, assignment: np.ndarray, action_factor: Sequence[int], n_factors: int
) -> np.ndarray:
    """The learned graph aggregated to factors ``(F, F)``: ``[i, j]`` is the mean edge
    probability from ``i``'s slots to ``j``'s slots in the edge sets of the actions on ``i``
    (``action_factor``: the factor of each real action ``1..A``), minus the same in the "no
    action" edge set (the null); ``NaN`` where ``i`` has no action or either has no slot."""
    probs = model.transition.edge_probs().nan_to_num(0.0).numpy()
    out = np.full((n_factors, n_factors), np.nan)
    for i in range(n_factors):
        acts = [k + 1 for k, f in enumerate(action_factor) if f == i]
        src = np.flatnonzero(assignment == i)
        for j in range(n_factors):
            dst = np.flatnonzero(assignment == j)
            if acts and len(src) and len(dst):
                w = probs[acts].mean(0) - probs[0]
                out[i, j] = float(w[np.ix_(src, dst)].mean())
    return out


def compare_graphs(found: nx.DiGraph, truth: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """``{"shd", "missing", "extra", "reversed", "true_edges"}`` of ``found`` against a true
    graph ``{child: parents}`` (a reversed edge counts once)."""
    true = {(p, c) for c, ps in truth.items() for p in ps}
    got = set(found.edges)
    reversed_ = {(u, v) for (u, v) in got if (v, u) in true and (u, v) not in true}
    missing = {e for e in true if e not in got and (e[1], e[0]) not in got}
    extra = {e for e in got if e not in true and e not in reversed_}
    return {"shd": len(missing) + len(extra) + len(reversed_), "missing": len(missing),
            "extra": len(extra), "reversed": len(reversed_), "true_edges": len(true)}
