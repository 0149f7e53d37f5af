"""Conversions between causal-learn's graphs and :class:`Edge` lists.

causal-learn stores a graph as ``G.graph``, a ``(d, d)`` integer matrix whose entry ``[i, j]``
is the :class:`causallearn.graph.Endpoint.Endpoint` value of the mark *at node i* on the edge
between ``i`` and ``j``: ``-1`` tail, ``1`` arrow, ``2`` circle, so ``i --> j`` is
``graph[i, j] == -1, graph[j, i] == 1`` (the docstrings of ``pc_alg``, ``ges`` and ``fci``;
checked on chain and collider data for PC, GES, FCI, GRaSP and BOSS in causal-learn 0.1.4.8).
Two edges on one pair use the codes 4/5, which only ``GeneralGraph.get_graph_edges`` unpacks,
so edges are read through it and never from the matrix directly.

Adjacency-matrix outputs use two *different* conventions: ``bic_exact_search`` returns
``dag[i, j] == 1`` for ``i --> j``, while LiNGAM's ``adjacency_matrix_`` is the SEM matrix
``B`` of ``x = B x + e``, so ``B[j, i] != 0`` means ``i --> j``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from causallearn.graph.Dag import Dag
from causallearn.graph.Edge import Edge as ClEdge
from causallearn.graph.Endpoint import Endpoint
from causallearn.graph.GeneralGraph import GeneralGraph
from causallearn.graph.GraphNode import GraphNode

from scm.discovery.edges import Edge, Mark

# Keyed by name: causal-learn's Endpoint overrides __eq__ without __hash__.
_FROM_ENDPOINT: dict[str, Mark] = {"TAIL": "tail", "ARROW": "arrow", "CIRCLE": "circle"}
_TO_ENDPOINT: dict[Mark, Endpoint] = {
    "tail": Endpoint.TAIL,
    "arrow": Endpoint.ARROW,
    "circle": Endpoint.CIRCLE,
}


def edges_from_general_graph(graph: GeneralGraph) -> list[Edge]:
    """Read every edge of a causal-learn ``GeneralGraph`` with its two endpoint marks.

    Raises:
        ValueError: for an endpoint other than tail, arrow or circle (``STAR``/``NULL``).
    """
    out = []
    for e in graph.get_graph_edges():
        ends = (e.get_endpoint1().name, e.get_endpoint2().name)
        if any(end not in _FROM_ENDPOINT for end in ends):
            raise ValueError(f"causal-learn edge {e} has an endpoint cauflow does not model")
        out.append(
            Edge(
                e.get_node1().get_name(),
                e.get_node2().get_name(),
                _FROM_ENDPOINT[ends[0]],
                _FROM_ENDPOINT[ends[1]],
            )
        )
    return out


def edges_from_dag_matrix(dag: np.ndarray, names: Sequence[str]) -> list[Edge]:
    """Edges of a ``(d, d)`` 0/1 matrix: ``dag[i, j] != 0`` is ``names[i] --> names[j]``."""
    rows, cols = np.nonzero(np.asarray(dag))
    return [Edge(names[i], names[j], "tail", "arrow") for i, j in zip(rows, cols, strict=True)]


def edges_from_sem_matrix(
    b: np.ndarray, names: Sequence[str], threshold: float = 0.0
) -> list[Edge]:
    """Edges of LiNGAM's ``B`` (SEM ``x = B x + e``): ``|B[j, i]| > threshold`` is ``i --> j``."""
    return edges_from_dag_matrix((np.abs(np.asarray(b)) > threshold).T, names)


def to_general_graph(nodes: Sequence[str], edges: Sequence[Edge]) -> GeneralGraph:
    """Build a causal-learn ``GeneralGraph`` with these nodes and marked edges."""
    cl_nodes = {n: GraphNode(n) for n in nodes}
    g = GeneralGraph(list(cl_nodes.values()))
    for e in edges:
        g.add_edge(
            ClEdge(cl_nodes[e.u], cl_nodes[e.v], _TO_ENDPOINT[e.mark_u], _TO_ENDPOINT[e.mark_v])
        )
    return g


def to_dag(nodes: Sequence[str], arcs: Sequence[tuple[str, str]]) -> Dag:
    """Build a causal-learn ``Dag`` (what ``dag2cpdag`` takes) from ``(parent, child)`` arcs."""
    cl_nodes = {n: GraphNode(n) for n in nodes}
    g = Dag(list(cl_nodes.values()))
    for u, v in arcs:
        g.add_directed_edge(cl_nodes[u], cl_nodes[v])
    return g
