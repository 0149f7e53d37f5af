"""The context module's learned concept graph as a networkx DAG, scored against the truth."""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np

from scm.discovery import DiscoveredGraph, compare

from .module import ContextModule


def concept_graph(module: ContextModule, *, threshold: float = 0.2) -> nx.DiGraph:
    """Edges ``j -> k`` of the causal layer whose standardised strength
    (:meth:`ContextModule.edge_strength`) exceeds ``threshold``, strongest first, skipping any
    edge that would close a cycle, so the result is always a DAG. Edges carry ``weight``.
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0; got {threshold}")
    strength = module.edge_strength().numpy()
    graph = nx.DiGraph()
    graph.add_nodes_from(module.names)
    order = np.dstack(np.unravel_index(np.argsort(-strength, axis=None), strength.shape))[0]
    for j, k in order:
        if strength[j, k] <= threshold:
            break
        a, b = module.names[j], module.names[k]
        if not nx.has_path(graph, b, a):
            graph.add_edge(a, b, weight=float(strength[j, k]))
    return graph


def score_graph(graph: nx.DiGraph, truth: Any) -> dict[str, float]:  # noqa: ANN401
    """Scores of ``graph`` against the true DAG ``truth`` (any form :func:`scm.discovery.compare`
    takes, e.g. a zoo ``KnownSCM``): SHD, skeleton and arrow precision / recall / F1."""
    found = DiscoveredGraph.from_edges(list(graph.nodes), [f"{a} --> {b}" for a, b in graph.edges])
    return compare(found, truth).as_dict()
