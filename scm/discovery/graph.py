"""The result of structure learning: what a method found, kept exactly as it found it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from os import PathLike
from typing import TYPE_CHECKING, Any

import networkx as nx

from scm.discovery.edges import Edge, EdgeKind, canonical, parse_edge

if TYPE_CHECKING:  # pragma: no cover - typing only
    from scm import SCM

SCHEMA = "cauflow.discovered_graph"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class DiscoveredGraph:
    """A DAG, CPDAG, PDAG or PAG over named nodes, with each edge's endpoint marks.

    Directed (``-->``), undirected (``---``, CPDAG), bidirected (``<->``, PAG) and
    partially oriented (``o->``, ``o-o``, ``--o``, PAG) edges are kept apart and are never
    oriented silently: an undirected edge stays undirected until the user picks a DAG from
    :meth:`dags`.

    Attributes:
        nodes: node names, in the data's column order.
        edges: canonical :class:`~scm.discovery.edges.Edge` s (stronger mark at ``v``).
        method: the method that produced the graph (``""`` when built by hand).
        options: the method's resolved options, JSON-serialisable.
        frequencies: bootstrap frequency of each edge label (``"a --> b"``), in ``[0, 1]``;
            empty without a bootstrap.
    """

    nodes: tuple[str, ...]
    edges: tuple[Edge, ...]
    method: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    frequencies: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        nodes = tuple(str(n) for n in self.nodes)
        if len(set(nodes)) != len(nodes):
            raise ValueError(f"node names must be unique, got {list(nodes)}")
        known = set(nodes)
        edges: dict[Edge, None] = {}  # ordered and deduplicated
        for edge in self.edges:
            edge = Edge(*edge)
            for end in (edge.u, edge.v):
                if end not in known:
                    raise ValueError(f"edge {edge.label!r} names {end!r}, which is not a node")
            if edge.u == edge.v:
                raise ValueError(f"edge {edge.label!r} is a self-loop")
            edges[canonical(edge, nodes)] = None
        # A fixed order makes equality independent of how the edges were listed.
        position = {n: i for i, n in enumerate(nodes)}
        order = sorted(edges, key=lambda e: (position[e.u], position[e.v], e.mark_u, e.mark_v))
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "edges", tuple(order))
        object.__setattr__(self, "options", dict(self.options))
        object.__setattr__(self, "frequencies", {k: float(f) for k, f in self.frequencies.items()})

    def __hash__(self) -> int:
        # Equal graphs have equal nodes and edges; options and frequencies are dicts.
        return hash((self.nodes, self.edges))

    @classmethod
    def from_edges(
        cls, nodes: Sequence[str], edges: Iterable[str | Edge], **fields: Any
    ) -> DiscoveredGraph:
        """Build a graph from edges written as ``"a --> b"``, ``"a --- b"``… or :class:`Edge` s.

        >>> DiscoveredGraph.from_edges(["a", "b", "c"], ["a --- b", "c --> b"]).directed
        [('c', 'b')]
        """
        parsed = tuple(parse_edge(e) if isinstance(e, str) else Edge(*e) for e in edges)
        return cls(tuple(nodes), parsed, **fields)

    # -- the edge kinds, kept apart ---------------------------------------------------------
    def _of_kind(self, kind: EdgeKind) -> list[tuple[str, str]]:
        return [(e.u, e.v) for e in self.edges if e.kind == kind]

    @property
    def directed(self) -> list[tuple[str, str]]:
        """``(parent, child)`` pairs of the ``-->`` edges."""
        return self._of_kind("directed")

    @property
    def undirected(self) -> list[tuple[str, str]]:
        """Pairs joined by ``---`` (orientation not identified), in node order."""
        return self._of_kind("undirected")

    @property
    def bidirected(self) -> list[tuple[str, str]]:
        """Pairs joined by ``<->`` (a latent confounder, in a PAG), in node order."""
        return self._of_kind("bidirected")

    @property
    def partial(self) -> list[Edge]:
        """The edges with a circle mark (``o->``, ``o-o``, ``--o``), with their marks."""
        return [e for e in self.edges if e.kind == "partial"]

    @property
    def is_dag(self) -> bool:
        """True when every edge is directed and there is no directed cycle."""
        if any(e.kind != "directed" for e in self.edges):
            return False
        return nx.is_directed_acyclic_graph(self._digraph_of(self.directed))

    def _digraph_of(self, pairs: Iterable[tuple[str, str]]) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_nodes_from(self.nodes)
        g.add_edges_from(pairs)
        return g

    def parents(self) -> dict[str, list[str]]:
        """``{node: [parents]}`` of a fully directed graph, nodes in data order.

        Raises:
            ValueError: when some edge is not directed (see :meth:`dags`).
        """
        self.require_oriented("parents()")
        return {n: [u for u, v in self.directed if v == n] for n in self.nodes}

    def require_oriented(self, what: str) -> None:
        """``ValueError`` naming the edges that are not directed, for ``what`` (the thing that
        needs a DAG, e.g. ``"an SCM"``)."""
        other = [e.label for e in self.edges if e.kind != "directed"]
        if other:
            shown = ", ".join(other[:3]) + (" …" if len(other) > 3 else "")
            raise ValueError(
                f"{what} needs a fully oriented graph, but {len(other)} edge(s) are not directed "
                f"({shown}); pick one DAG of the equivalence class with .dags(limit=...) "
                "(`cauflow discover --dag` writes one)"
            )

    # -- conversions ------------------------------------------------------------------------
    def to_networkx(self) -> nx.DiGraph:
        """Return a :class:`networkx.DiGraph` with the edges' kinds and marks as attributes.

        A directed edge ``a --> b`` is the arc ``a -> b``; every other edge (``---``, ``<->``,
        ``o->``…) is stored as both arcs ``a -> b`` and ``b -> a``, as in pcalg's adjacency
        convention, so ``nx.is_directed_acyclic_graph`` is True only for a real DAG. Each arc
        has ``kind`` (``"directed"``, ``"undirected"``, ``"bidirected"``, ``"partial"``),
        ``marks`` (the marks at its source and target) and, after a bootstrap, ``frequency``.
        """
        g = nx.DiGraph()
        g.add_nodes_from(self.nodes)
        for e in self.edges:
            attrs: dict[str, Any] = {"kind": e.kind}
            if e.label in self.frequencies:
                attrs["frequency"] = self.frequencies[e.label]
            g.add_edge(e.u, e.v, marks=(e.mark_u, e.mark_v), **attrs)
            if e.kind != "directed":
                g.add_edge(e.v, e.u, marks=(e.mark_v, e.mark_u), **attrs)
        return g

    def dags(self, limit: int = 1000) -> list[DiscoveredGraph]:
        """Return up to ``limit`` DAGs that orient this CPDAG/PDAG without changing its class.

        Each DAG keeps every directed edge, orients every undirected edge, has no directed
        cycle and no v-structure the input does not have (a consistent extension, Dor &
        Tarsi 1992). A chain ``a --- b --- c`` gives 3 DAGs.

        Raises:
            ValueError: for a PAG (bidirected or circle edges), or ``limit < 1``.
        """
        from scm.discovery.extensions import consistent_extensions

        return consistent_extensions(self, limit=limit)

    def to_scm(self, mechanisms: Any = "flow") -> SCM:
        """Build ``scm.SCM(parents, mechanisms=mechanisms)`` from this fully oriented graph.

        Args:
            mechanisms: passed to :class:`scm.SCM` (``"flow"``, ``"linear"``,
                ``"additive"`` or a dict per node).

        Raises:
            ValueError: when some edge is undirected, bidirected or partial; pick a DAG with
                :meth:`dags` first.
        """
        self.require_oriented("to_scm()")
        from scm import SCM

        return SCM(self.parents(), mechanisms=mechanisms)

    def with_frequencies(self, frequencies: Mapping[str, float]) -> DiscoveredGraph:
        """Return a copy carrying bootstrap ``frequencies`` (edge label -> fraction)."""
        return replace(self, frequencies=dict(frequencies))

    def plot(self, path: str | PathLike[str], *, title: str | None = None) -> None:
        """Draw the graph to a PNG at ``path`` (see :func:`scm.discovery.plot.plot_graph`)."""
        from scm.discovery.plot import plot_graph

        plot_graph(self, path, title=title)

    def summary(self) -> str:
        """One edge per line in Tetrad notation, with its bootstrap frequency if any."""
        lines = []
        for e in self.edges:
            freq = self.frequencies.get(e.label)
            lines.append(e.label if freq is None else f"{e.label}  ({freq:.2f})")
        return "\n".join(lines) if lines else "(no edges)"

    # -- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON form: ``{"schema", "version", "nodes", "edges", ...}``."""
        return {
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "nodes": list(self.nodes),
            "edges": [
                {"u": e.u, "v": e.v, "marks": [e.mark_u, e.mark_v], "label": e.label}
                for e in self.edges
            ],
            "method": self.method,
            "options": dict(self.options),
            "frequencies": dict(self.frequencies),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DiscoveredGraph:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: for another schema or a newer version than this code reads.
        """
        if data.get("schema") != SCHEMA:
            raise ValueError(f"expected a {SCHEMA!r} document, got schema {data.get('schema')!r}")
        version = data.get("version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ValueError(
                f"{SCHEMA} version {version!r} is not readable; this code reads up to "
                f"version {SCHEMA_VERSION}"
            )
        edges = tuple(Edge(e["u"], e["v"], *e["marks"]) for e in data["edges"])
        return cls(
            tuple(data["nodes"]),
            edges,
            method=data.get("method", ""),
            options=data.get("options", {}),
            frequencies=data.get("frequencies", {}),
        )

    def to_json(self) -> str:
        """The graph as a JSON string (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> DiscoveredGraph:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def save(self, path: str | PathLike[str]) -> None:
        """Write :meth:`to_json` to ``path``."""
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | PathLike[str]) -> DiscoveredGraph:
        """Read a graph written by :meth:`save`."""
        with open(path, encoding="utf-8") as fh:
            return cls.from_json(fh.read())
