"""Scoring a discovered graph against a known DAG."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import networkx as nx
from causallearn.graph.ArrowConfusion import ArrowConfusion
from causallearn.graph.SHD import SHD
from causallearn.utils.DAG2CPDAG import dag2cpdag

from scm.discovery.convert import edges_from_general_graph, to_dag, to_general_graph
from scm.discovery.graph import DiscoveredGraph
from scm.graph import GraphLike, as_parent_dict


@dataclass(frozen=True)
class Comparison:
    """Scores of a found graph against the true DAG.

    Attributes:
        shd_dag: structural Hamming distance to the true DAG: node pairs whose edge differs
            in presence or in either endpoint mark (an undirected edge where the DAG has an
            arrow counts 1), as ``causallearn.graph.SHD``.
        shd_cpdag: the same distance to the true DAG's CPDAG, i.e. ignoring orientations no
            method could identify from observational data; 0 for a perfect PC/GES result.
        skeleton_precision, skeleton_recall, skeleton_f1: adjacencies, direction ignored.
        arrow_precision, arrow_recall, arrow_f1: arrowheads against the true DAG's arrows
            (``causallearn.graph.ArrowConfusion``): an undirected edge has none, ``<->`` two.
            ``nan`` when a ratio is 0/0 (no arrow found, or none to find).
    """

    shd_dag: int
    shd_cpdag: int
    skeleton_precision: float
    skeleton_recall: float
    skeleton_f1: float
    arrow_precision: float
    arrow_recall: float
    arrow_f1: float

    def as_dict(self) -> dict[str, float]:
        """The scores as a plain ``{name: value}`` dict."""
        return asdict(self)

    def summary(self) -> str:
        """The scores on one line each, ``nan`` shown as ``n/a``."""
        return "\n".join(
            f"{k}: {v}" if isinstance(v, int) else f"{k}: {'n/a' if math.isnan(v) else f'{v:.3f}'}"
            for k, v in self.as_dict().items()
        )


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else math.nan


def _f1(p: float, r: float) -> float:
    if math.isnan(p) or math.isnan(r):
        return math.nan
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def true_parents(truth: Any) -> dict[str, list[str]]:  # noqa: ANN401 - several graph forms
    """``{node: [parents]}`` of ``truth``: a graph form of :func:`scm.graph.as_parent_dict`,
    an object with a ``.graph`` parent dict (a zoo ``KnownSCM``), or a fully oriented
    :class:`DiscoveredGraph`."""
    if isinstance(truth, DiscoveredGraph):
        return truth.parents()
    if isinstance(truth, Mapping | nx.DiGraph | list | tuple):
        return as_parent_dict(truth)
    graph: GraphLike = getattr(truth, "graph", truth)  # a KnownSCM (nx.DiGraph.graph is not this)
    return as_parent_dict(graph)


def cpdag_of(truth: Any) -> DiscoveredGraph:  # noqa: ANN401 - see true_parents
    """The CPDAG of a DAG, from causal-learn's ``dag2cpdag`` (Chickering 1995's labelling)."""
    parents = true_parents(truth)
    nodes = list(parents)
    arcs = [(p, c) for c, ps in parents.items() for p in ps]
    cpdag = dag2cpdag(to_dag(nodes, arcs))
    return DiscoveredGraph(tuple(nodes), tuple(edges_from_general_graph(cpdag)), method="cpdag")


def compare(found: DiscoveredGraph, truth: Any) -> Comparison:  # noqa: ANN401 - see true_parents
    """Score ``found`` against the true DAG ``truth``.

    Args:
        found: the learned graph (DAG, CPDAG or PAG).
        truth: the true DAG: ``{node: [parents]}``, a ``networkx.DiGraph``, a list of
            ``(parent, child)`` pairs, a zoo ``KnownSCM`` or a fully oriented graph.

    Returns:
        A :class:`Comparison`.

    Raises:
        ValueError: when the two graphs have different nodes, or ``truth`` is not a DAG.
    """
    parents = true_parents(truth)
    if set(parents) != set(found.nodes):
        missing, extra = set(parents) - set(found.nodes), set(found.nodes) - set(parents)
        raise ValueError(
            f"found and true graphs must have the same nodes; only in truth: {sorted(missing)}, "
            f"only in found: {sorted(extra)}"
        )
    arcs = [(p, c) for c, ps in parents.items() for p in ps]
    dag = to_dag(found.nodes, arcs)
    est = to_general_graph(found.nodes, found.edges)
    cpdag = dag2cpdag(to_dag(found.nodes, arcs))

    true_adj = {frozenset(a) for a in arcs}
    found_adj = {frozenset((e.u, e.v)) for e in found.edges}
    tp = len(true_adj & found_adj)
    sk_p, sk_r = _ratio(tp, len(found_adj)), _ratio(tp, len(true_adj))

    arrows = ArrowConfusion(dag, est)
    a_tp, a_fp, a_fn = arrows.get_arrows_tp(), arrows.get_arrows_fp(), arrows.get_arrows_fn()
    ar_p, ar_r = _ratio(a_tp, a_tp + a_fp), _ratio(a_tp, a_tp + a_fn)
    return Comparison(
        shd_dag=int(SHD(dag, est).get_shd()),
        shd_cpdag=int(SHD(cpdag, est).get_shd()),
        skeleton_precision=sk_p,
        skeleton_recall=sk_r,
        skeleton_f1=_f1(sk_p, sk_r),
        arrow_precision=ar_p,
        arrow_recall=ar_r,
        arrow_f1=_f1(ar_p, ar_r),
    )
