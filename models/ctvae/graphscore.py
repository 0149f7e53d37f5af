"""Factor-effect matrices to graphs, and graphs scored against the true factor graph.

An effect matrix ``E (F, F)`` holds, in row ``i``, how much the actions on factor ``i`` move
each factor (``NaN`` rows: factors without an action); see :mod:`models.ctvae.readback` (factors
read back from decoded images) and :mod:`models.ctvae.effects` (code slots aggregated to
factors). In a causal model an intervention on a variable moves exactly its descendants (Pearl,
*Causality*, 2009, Sec. 1.3), so single-factor interventions reveal the ancestral relation; the
direct graph is its transitive reduction when no edge runs parallel to a directed path (Tian &
Pearl, "Causal discovery from changes", UAI 2001; Kocaoglu, Shanmugam, Bareinboim, NeurIPS
2017, Sec. 3).

- :func:`effect_graph`: edge ``i -> j`` when ``E[i, j] >= rel_threshold * E[i, i]`` (the action
  moves ``j`` at least that fraction as much as its own factor: a scale-free cut, since one grid
  step is a larger or smaller move by factor and data set), then the transitive reduction.
- :func:`edge_scores` / :func:`edge_auroc`: the threshold-free score, ``E[i, j] / E[i, i]``
  (the quantity the graph cuts) ranked against the true edges over the candidate pairs (a
  source with an action, any other target), with :func:`random_auroc_pvalue` the exact chance
  that random scores rank as well.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import networkx as nx
import numpy as np


def effect_graph(
    effects: np.ndarray,
    factor_names: Sequence[str],
    *,
    rel_threshold: float = 0.25,
    reduce: bool = True,
) -> nx.DiGraph:
    """The read-out factor graph (module docstring); edges carry ``weight`` = ``E[i, j]``
    and ``relative`` = ``E[i, j] / E[i, i]``. ``reduce=False`` keeps the ancestral edges."""
    if not 0.0 < rel_threshold <= 1.0:
        raise ValueError(f"rel_threshold must lie in (0, 1]; got {rel_threshold!r}")
    g = nx.DiGraph()
    g.add_nodes_from(factor_names)
    for i, fi in enumerate(factor_names):
        own = effects[i, i]
        if not np.isfinite(own) or own <= 0:
            continue
        for j, fj in enumerate(factor_names):
            e = effects[i, j]
            if i != j and np.isfinite(e) and e >= rel_threshold * own:
                g.add_edge(fi, fj, weight=float(e), relative=float(e / own))
    if reduce and nx.is_directed_acyclic_graph(g):
        reduced = nx.transitive_reduction(g)
        reduced.add_nodes_from(g.nodes)
        reduced.add_edges_from((u, v, g.edges[u, v]) for u, v in reduced.edges)
        return reduced
    return g


def edge_scores(
    effects: np.ndarray, factor_names: Sequence[str], *, relative: bool = True
) -> dict[tuple[str, str], float]:
    """Scores of the candidate edges ``(source, target)``: every ordered pair whose source has
    an action (a finite ``E[i, i]``); a target that cannot be seen (``NaN``) scores 0.

    ``relative`` (default): ``E[i, j] / E[i, i]``, the quantity :func:`effect_graph` cuts at
    ``rel_threshold``, so the AUROC of these scores summarises the graph over every threshold
    (before the reduction); a source whose own effect is not positive scores 0. Otherwise the
    raw ``E[i, j]``, which compares a strong action's cross-talk with a weak action's children.
    """
    n = len(factor_names)
    out = {}
    for i in range(n):
        own = effects[i, i]
        if not np.isfinite(own):
            continue
        for j in range(n):
            if i != j:
                e = float(np.nan_to_num(effects[i, j]))
                out[factor_names[i], factor_names[j]] = (
                    (e / own if own > 0 else 0.0) if relative else e)
    return out


def true_edges(
    truth: Mapping[str, Sequence[str]], *, ancestral: bool = False
) -> set[tuple[str, str]]:
    """Edges ``(parent, child)`` of a true graph ``{child: parents}``; with ``ancestral``, its
    transitive closure (every ``(ancestor, descendant)``)."""
    g = nx.DiGraph([(p, c) for c, ps in truth.items() for p in ps])
    g.add_nodes_from(truth)
    return set(nx.transitive_closure_dag(g).edges if ancestral else g.edges)


def edge_auroc(scores: Mapping[tuple[str, str], float], positives: set[tuple[str, str]]) -> float:
    """AUROC of the candidate-edge ``scores`` against ``positives`` (ties count 1/2): the chance
    that a true edge outscores a false one. ``NaN`` if the candidates hold only one class."""
    pos = np.array([v for e, v in scores.items() if e in positives])
    neg = np.array([v for e, v in scores.items() if e not in positives])
    if not len(pos) or not len(neg):
        return float("nan")
    diff = pos[:, None] - neg[None, :]  # the Mann-Whitney U statistic over n_pos * n_neg
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def random_auroc_pvalue(n_pos: int, n_neg: int, auroc: float) -> float:
    """Exact chance that random (tie-free) scores of ``n_pos`` true and ``n_neg`` false edges
    reach an AUROC of at least ``auroc``: every placement of the true edges among the ranks is
    equally likely."""
    n = n_pos + n_neg
    hits = total = 0
    for ranks in itertools.combinations(range(n), n_pos):  # ranks of the true edges, 0 = lowest
        above = sum(r - k for k, r in enumerate(ranks))  # false edges below each true edge
        total += 1
        hits += above / (n_pos * n_neg) >= auroc - 1e-12
    return hits / total
