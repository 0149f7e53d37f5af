"""Causal graphs: normalise the ways a user can write a DAG into one validated form."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import networkx as nx

GraphLike = Mapping[str, Iterable[str]] | nx.DiGraph | Iterable[tuple[str, str]]


def as_parent_dict(graph: GraphLike) -> dict[str, list[str]]:
    """Return ``{node: [parents]}`` in topological order for any accepted graph form.

    Args:
        graph: ``{child: [parents]}`` (every parent must also be a key; ``None`` for no
            parents), a :class:`networkx.DiGraph`, or an iterable of ``(parent, child)``
            edges (a bare name adds a node without edges). Node names become strings. A
            fully oriented :class:`~scm.discovery.DiscoveredGraph`, or its JSON document (as
            ``cauflow discover --out`` writes it), is read as its parents.

    Raises:
        ValueError: on a self-loop, a cycle, a parent that is not a declared node,
            or an empty graph.
        TypeError: when ``graph`` is none of the accepted forms.
    """
    graph = _discovered_parents(graph)
    if isinstance(graph, nx.DiGraph):
        g = nx.relabel_nodes(nx.DiGraph(graph), str)  # node names are strings, as below
    elif isinstance(graph, nx.Graph):
        raise ValueError(
            "graph is an undirected networkx.Graph; a causal graph needs directed edges: "
            "pass a networkx.DiGraph"
        )
    elif isinstance(graph, Mapping):
        g = nx.DiGraph()
        g.add_nodes_from(str(n) for n in graph)
        for child, parents in graph.items():
            if parents is None:  # JSON's null for a root
                continue
            if isinstance(parents, str):
                raise TypeError(
                    f"parents of {child!r} must be a list of node names, got the string "
                    f"{parents!r}; write [{parents!r}]"
                )
            for p in parents:
                if p not in graph:
                    raise ValueError(
                        f"parent {p!r} of node {child!r} is not declared as a node; "
                        f"add {p!r}: [] to the graph"
                    )
                g.add_edge(str(p), str(child))
    elif isinstance(graph, Iterable) and not isinstance(graph, str | bytes):
        g = nx.DiGraph()
        for edge in graph:
            if isinstance(edge, str):  # a node without edges
                g.add_node(edge)
                continue
            if not (isinstance(edge, tuple | list) and len(edge) == 2):
                raise TypeError(
                    f"edges must be (parent, child) pairs (or a node name for a node without "
                    f"edges), got {edge!r}"
                )
            g.add_edge(str(edge[0]), str(edge[1]))
    else:
        raise TypeError(
            "graph must be a dict {child: [parents]}, a networkx.DiGraph or a list of "
            f"(parent, child) edges, got {type(graph).__name__}"
        )
    return _validated(g)


def _validated(g: nx.DiGraph) -> dict[str, list[str]]:
    if g.number_of_nodes() == 0:
        raise ValueError("graph has no nodes")
    loops = list(nx.selfloop_edges(g))
    if loops:
        raise ValueError(
            f"graph has a self-loop on node {loops[0][0]!r}; a node cannot cause itself"
        )
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        raise ValueError(f"graph is cyclic: {path}; an SCM needs a DAG")
    # Lexicographic tie-break keeps the order stable across graph forms and runs.
    order = list(nx.lexicographical_topological_sort(g, key=_insertion_key(g)))
    return {n: sorted(g.predecessors(n), key=order.index) for n in order}


def _insertion_key(g: nx.DiGraph):  # noqa: ANN202 - returns a sort key function
    position = {n: i for i, n in enumerate(g.nodes)}
    return lambda n: position[n]


def to_networkx(parents: Mapping[str, Iterable[str]]) -> nx.DiGraph:
    """Return the DAG ``parents`` describes as a :class:`networkx.DiGraph` (nodes in order)."""
    g = nx.DiGraph()
    g.add_nodes_from(parents)
    g.add_edges_from((p, c) for c, ps in parents.items() for p in ps)
    return g


def descendants(parents: Mapping[str, Iterable[str]], nodes: Iterable[str]) -> set[str]:
    """Return the strict descendants of ``nodes`` (not including ``nodes`` themselves)."""
    g = to_networkx(parents)
    out: set[str] = set()
    for n in nodes:
        out |= nx.descendants(g, n)
    return out


def _discovered_parents(graph: object) -> object:
    """``graph``'s ``{child: [parents]}`` if it is a :class:`~scm.discovery.DiscoveredGraph`
    or the JSON document of one (``ValueError`` unless fully oriented), else ``graph``."""
    from scm.discovery.graph import SCHEMA, DiscoveredGraph

    if isinstance(graph, Mapping) and graph.get("schema") == SCHEMA:
        graph = DiscoveredGraph.from_dict(graph)
    if isinstance(graph, DiscoveredGraph):
        graph.require_oriented("an SCM")
        return graph.parents()
    if isinstance(graph, nx.DiGraph):  # to_networkx() stores an undirected edge as two arcs
        other = sorted({tuple(sorted((u, v))) for u, v, kind in graph.edges(data="kind")
                        if kind not in (None, "directed")})
        if other:
            shown = ", ".join(f"{u} - {v}" for u, v in other[:3])
            raise ValueError(
                f"graph has {len(other)} edge(s) that are not directed ({shown}); an SCM needs "
                "a DAG: pick one of the class with DiscoveredGraph.dags() (`cauflow discover "
                "--dag` writes one)"
            )
    return graph
