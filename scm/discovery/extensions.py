"""The DAGs of an equivalence class: consistent extensions of a CPDAG or PDAG."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from scm.discovery.edges import Edge

if TYPE_CHECKING:  # pragma: no cover - typing only
    from scm.discovery.graph import DiscoveredGraph


def consistent_extensions(graph: DiscoveredGraph, *, limit: int = 1000) -> list[DiscoveredGraph]:
    """Return up to ``limit`` DAGs that extend ``graph`` (Dor & Tarsi, 1992).

    An extension keeps every directed edge, orients every undirected one, is acyclic and has
    exactly the input's v-structures, so for a CPDAG the extensions are its Markov
    equivalence class (Verma & Pearl, 1990). Search is depth-first over the undirected
    edges, pruning an orientation as soon as it closes a cycle or a new v-structure.

    Returns:
        Fully directed :class:`DiscoveredGraph` s, at most ``limit``; empty when the PDAG
        has no consistent extension.

    Raises:
        ValueError: for bidirected or circle edges (a PAG), a directed cycle in the input,
            or ``limit < 1``.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    other = [e.label for e in graph.edges if e.kind in ("bidirected", "partial")]
    if other:
        raise ValueError(
            "dags() enumerates DAGs of a CPDAG/PDAG; this graph has PAG edges "
            f"({', '.join(other[:3])}), whose DAGs would need latent variables"
        )
    parents: dict[str, set[str]] = {n: set() for n in graph.nodes}
    for u, v in graph.directed:
        parents[v].add(u)
    if any(_reaches(parents, v, u) for u, v in graph.directed):
        raise ValueError("the graph's directed edges form a cycle; it has no DAG extension")
    adjacent = {frozenset((e.u, e.v)) for e in graph.edges}
    undirected = graph.undirected
    out: list[DiscoveredGraph] = []
    for assignment in _orient(undirected, 0, parents, adjacent):
        edges = [Edge(u, v, "tail", "arrow") for u, v in graph.directed]
        edges += [Edge(u, v, "tail", "arrow") for u, v in assignment]
        out.append(
            type(graph)(graph.nodes, tuple(edges), method=graph.method, options=graph.options)
        )
        if len(out) >= limit:
            break
    return out


def _orient(
    undirected: list[tuple[str, str]],
    k: int,
    parents: dict[str, set[str]],
    adjacent: set[frozenset[str]],
) -> Iterator[list[tuple[str, str]]]:
    """Yield orientations of ``undirected[k:]`` consistent with ``parents`` (mutated, restored)."""
    if k == len(undirected):
        yield []
        return
    a, b = undirected[k]
    for u, v in ((a, b), (b, a)):
        if not _allowed(parents, adjacent, u, v):
            continue
        parents[v].add(u)
        for rest in _orient(undirected, k + 1, parents, adjacent):
            yield [(u, v), *rest]
        parents[v].remove(u)


def _allowed(parents: dict[str, set[str]], adjacent: set[frozenset[str]], u: str, v: str) -> bool:
    """Can the undirected edge ``u --- v`` become ``u --> v``?

    Not if ``v`` already reaches ``u`` (a cycle), nor if ``v`` has a parent ``w`` not adjacent
    to ``u``: ``w --> v <-- u`` would be a v-structure the input does not have, since one of
    its edges was undirected there.
    """
    if any(frozenset((w, u)) not in adjacent for w in parents[v]):
        return False
    return not _reaches(parents, v, u)


def _reaches(parents: dict[str, set[str]], start: str, target: str) -> bool:
    """Is there a directed path ``start -> ... -> target``? (searched from ``target`` up)."""
    seen, stack = set(), [target]
    while stack:
        node = stack.pop()
        if node == start:
            return True
        for p in parents[node]:
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return False
