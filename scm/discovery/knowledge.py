"""Background knowledge: required and forbidden edges, and tiers of variables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from causallearn.graph.GraphNode import GraphNode
from causallearn.utils.PCUtils.BackgroundKnowledge import BackgroundKnowledge

from scm.discovery.edges import parse_edge

Arc = tuple[str, str]


def _arcs(edges: Iterable[str | Sequence[str]], what: str) -> tuple[Arc, ...]:
    out = []
    for e in edges:
        if isinstance(e, str):
            parsed = parse_edge(e)
            if parsed.kind != "directed":
                raise ValueError(f"{what} edges must be directed like 'a -> b', got {e!r}")
            out.append((parsed.u, parsed.v) if parsed.mark_v == "arrow" else (parsed.v, parsed.u))
        elif len(e) == 2:
            out.append((str(e[0]), str(e[1])))
        else:
            raise ValueError(f"{what} edges must be 'a -> b' or (a, b) pairs, got {e!r}")
    return tuple(out)


def _cycle(arcs: Sequence[Arc]) -> list[Arc]:
    """The arcs of one directed cycle among ``arcs`` (depth-first search), or ``[]``."""
    children: dict[str, list[str]] = {}
    for u, v in arcs:
        children.setdefault(u, []).append(v)
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(u: str) -> list[Arc]:
        state[u] = 1
        path.append(u)
        for v in children.get(u, []):
            if state.get(v) == 1:
                loop = path[path.index(v) :] + [v]
                return list(zip(loop, loop[1:], strict=False))
            if v not in state and (found := visit(v)):
                return found
        state[u] = 2
        path.pop()
        return []

    for u in children:
        if u not in state and (found := visit(u)):
            return found
    return []


@dataclass(frozen=True)
class Knowledge:
    """What is known about the graph before looking at the data.

    Attributes:
        forbidden: ``(a, b)`` arcs that must not appear as ``a --> b``.
        required: ``(a, b)`` arcs that must appear as ``a --> b``.
        tiers: groups of nodes, earliest first; no arc may point from a later tier into an
            earlier one ("labels before pixels"). Arcs within a tier are allowed.

    >>> Knowledge.parse(forbid=["x2 -> x1"], tiers=[["x1"], ["x2", "x3"]]).forbids("x3", "x1")
    True
    """

    forbidden: tuple[Arc, ...] = ()
    required: tuple[Arc, ...] = ()
    tiers: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def parse(
        cls,
        *,
        forbid: Iterable[str | Sequence[str]] = (),
        require: Iterable[str | Sequence[str]] = (),
        tiers: Sequence[Sequence[str]] = (),
    ) -> Knowledge:
        """Build from edges written ``"a -> b"`` (or ``(a, b)`` pairs) and lists of tiers."""
        if isinstance(tiers, Mapping) or any(isinstance(t, str) for t in tiers):
            raise ValueError(f"tiers must be a list of lists of node names, got {tiers!r}")
        return cls(
            forbidden=_arcs(forbid, "forbidden"),
            required=_arcs(require, "required"),
            tiers=tuple(tuple(str(n) for n in t) for t in tiers),
        )

    @property
    def is_empty(self) -> bool:
        """True when nothing is known."""
        return not (self.forbidden or self.required or self.tiers)

    def tier_of(self) -> dict[str, int]:
        """``{node: tier index}`` for the nodes placed in a tier."""
        return {n: t for t, nodes in enumerate(self.tiers) for n in nodes}

    def forbids(self, u: str, v: str) -> bool:
        """Is ``u --> v`` excluded, by a forbidden arc or by the tiers?"""
        tier = self.tier_of()
        return (u, v) in self.forbidden or (u in tier and v in tier and tier[u] > tier[v])

    def check(self, names: Sequence[str]) -> None:
        """Raise ``ValueError`` for unknown nodes or contradictions among the constraints.

        Contradictions (each a one-line error naming the edges): a node in two tiers, a
        required self-loop, an edge both required and forbidden, a required edge into an
        earlier tier, and required edges that form a directed cycle (no DAG has them all;
        exact search failed on one with a bare ``AssertionError``).
        """
        known = set(names)
        placed: list[str] = [n for t in self.tiers for n in t]
        for u in [n for arc in self.forbidden + self.required for n in arc] + placed:
            if u not in known:
                raise ValueError(
                    f"background knowledge names {u!r}, which is not a column; columns are "
                    f"{sorted(known)}"
                )
        twice = sorted({n for n in placed if placed.count(n) > 1})
        if twice:
            raise ValueError(f"node(s) {twice} appear in more than one tier")
        loops = [f"{u} -> {v}" for u, v in self.required if u == v]
        if loops:
            raise ValueError(f"required edge(s) {', '.join(loops)} are self-loops")
        both = [f"{u} -> {v}" for u, v in self.required if (u, v) in self.forbidden]
        if both:
            raise ValueError(f"edge(s) {', '.join(both)} are both required and forbidden")
        tier = self.tier_of()
        against = [
            f"{u} -> {v} (tier {tier[u]} -> {tier[v]})"
            for u, v in self.required
            if self.forbids(u, v) and (u, v) not in self.forbidden
        ]
        if against:
            raise ValueError(
                f"required edge(s) {', '.join(against)} point into an earlier tier (against "
                "the tiers)"
            )
        cycle = _cycle(self.required)
        if cycle:
            raise ValueError(
                f"required edges {', '.join(f'{u} -> {v}' for u, v in cycle)} form a cycle"
            )

    def to_causallearn(self, names: Sequence[str]) -> BackgroundKnowledge:
        """The equivalent causal-learn ``BackgroundKnowledge`` (nodes matched by name)."""
        self.check(names)
        bk = BackgroundKnowledge()
        for u, v in self.forbidden:
            bk.add_forbidden_by_node(GraphNode(u), GraphNode(v))
        for u, v in self.required:
            bk.add_required_by_node(GraphNode(u), GraphNode(v))
        for t, nodes in enumerate(self.tiers):
            for n in nodes:
                bk.add_node_to_tier(GraphNode(n), t)
        return bk

    def exact_search_graphs(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(super_graph, include_graph)`` for ``bic_exact_search``, each ``(d, d)``.

        ``super_graph[i, j] = 1`` allows ``i --> j``; ``include_graph[i, j] = 1`` requires it.
        """
        self.check(names)
        d = len(names)
        allowed = np.ones((d, d)) - np.eye(d)
        for i, u in enumerate(names):
            for j, v in enumerate(names):
                if i != j and self.forbids(u, v):
                    allowed[i, j] = 0.0
        include = np.zeros((d, d))
        index = {n: i for i, n in enumerate(names)}
        for u, v in self.required:
            include[index[u], index[v]] = 1.0
        return allowed, include

    def lingam_prior(self, names: Sequence[str]) -> np.ndarray:
        """DirectLiNGAM's ``prior_knowledge`` from the tiers: ``pk[to, from] = 0`` forbids a path.

        ``-1`` marks "unknown". Only tiers translate exactly: LiNGAM's prior knowledge is about
        directed *paths*, so a forbidden or required *edge* has no equivalent there.

        Raises:
            ValueError: when forbidden or required edges are given.
        """
        self.check(names)
        if self.forbidden or self.required:
            raise ValueError(
                "method 'direct_lingam' takes tiers only: its prior knowledge forbids directed "
                "paths, not single edges; drop the forbidden/required edges or use 'pc', 'fci' "
                "or 'exact'"
            )
        d = len(names)
        pk = -np.ones((d, d))
        for i, u in enumerate(names):
            for j, v in enumerate(names):
                if i != j and self.forbids(u, v):
                    pk[j, i] = 0.0
        return pk

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"forbidden": ["a -> b"], "required": [...], "tiers": [[...]]}``."""
        return {
            "forbidden": [f"{u} -> {v}" for u, v in self.forbidden],
            "required": [f"{u} -> {v}" for u, v in self.required],
            "tiers": [list(t) for t in self.tiers],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Knowledge:
        """Inverse of :meth:`to_dict`."""
        return cls.parse(
            forbid=data.get("forbidden", ()),
            require=data.get("required", ()),
            tiers=data.get("tiers", ()),
        )
