"""Edges with endpoint marks: the one representation behind DAGs, CPDAGs and PAGs.

An edge ``u *-* v`` carries a mark at each end, as in Tetrad and causal-learn
(``causallearn.graph.Endpoint``): ``"tail"``, ``"arrow"`` or ``"circle"``. A directed edge is
(tail, arrow), an undirected CPDAG edge (tail, tail), a bidirected PAG edge (arrow, arrow), and
any edge with a circle is partially oriented. Keeping the marks, rather than a kind, means
that nothing is ever oriented by the conversion itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, NamedTuple

Mark = Literal["tail", "arrow", "circle"]
EdgeKind = Literal["directed", "undirected", "bidirected", "partial"]

MARKS: tuple[Mark, ...] = ("tail", "circle", "arrow")
"""The marks, weakest first; the canonical edge puts the stronger mark at ``v``."""

_LEFT = {"tail": "-", "circle": "o", "arrow": "<"}
_RIGHT = {"tail": "-", "circle": "o", "arrow": ">"}


class Edge(NamedTuple):
    """``u *-* v`` with ``mark_u`` at ``u`` and ``mark_v`` at ``v``.

    >>> Edge("a", "b", "tail", "arrow").label
    'a --> b'
    """

    u: str
    v: str
    mark_u: Mark
    mark_v: Mark

    @property
    def kind(self) -> EdgeKind:
        """``"directed"``, ``"undirected"``, ``"bidirected"`` or ``"partial"`` (a circle)."""
        marks = {self.mark_u, self.mark_v}
        if "circle" in marks:
            return "partial"
        if marks == {"tail", "arrow"}:
            return "directed"
        return "undirected" if marks == {"tail"} else "bidirected"

    @property
    def label(self) -> str:
        """Tetrad notation: ``a --> b``, ``a --- b``, ``a <-> b``, ``a o-> b``, ``a o-o b``."""
        return f"{self.u} {_LEFT[self.mark_u]}-{_RIGHT[self.mark_v]} {self.v}"

    def reversed(self) -> Edge:
        """The same edge written from ``v`` to ``u``."""
        return Edge(self.v, self.u, self.mark_v, self.mark_u)


def canonical(edge: Edge, order: Sequence[str]) -> Edge:
    """Return ``edge`` written in its canonical direction.

    The stronger mark (``tail < circle < arrow``) goes at ``v``, so a directed edge reads
    parent -> child; symmetric edges are written in the order of ``order`` (the node list).
    """
    for mark in (edge.mark_u, edge.mark_v):
        if mark not in MARKS:
            raise ValueError(f"edge mark must be one of {MARKS}, got {mark!r} in {edge!r}")
    rank_u, rank_v = MARKS.index(edge.mark_u), MARKS.index(edge.mark_v)
    if rank_u > rank_v or (rank_u == rank_v and order.index(edge.u) > order.index(edge.v)):
        return edge.reversed()
    return edge


_ARROWS: dict[str, tuple[Mark, Mark]] = {
    "-->": ("tail", "arrow"),
    "->": ("tail", "arrow"),
    "<--": ("arrow", "tail"),
    "<-": ("arrow", "tail"),
    "---": ("tail", "tail"),
    "--": ("tail", "tail"),
    "<->": ("arrow", "arrow"),
    "o->": ("circle", "arrow"),
    "<-o": ("arrow", "circle"),
    "o-o": ("circle", "circle"),
    "--o": ("tail", "circle"),
    "o--": ("circle", "tail"),
}


# "<u> <arrow> <v>" with whitespace around the arrow; u and v may contain spaces ("x 1").
_SPACED_ARROW = re.compile(
    r"(.+?)\s+("
    + "|".join(re.escape(a) for a in sorted(_ARROWS, key=len, reverse=True))
    + r")\s+(.+)"
)


def parse_edge(text: str) -> Edge:
    """Parse an edge written in Tetrad notation, e.g. ``"a --> b"``, ``"a->b"``, ``"a o-> b"``.

    With spaces around the arrow any of ``--> <-- --- <-> o-> <-o o-o --o o--`` is read; without
    spaces only the circle-free arrows (``-> --> <- <-- -- --- <->``), since ``o`` may be part
    of a node name. Node names are what is left of the arrow and right of it, stripped, so
    they may contain spaces: ``"x 1 -> x 2"`` is ``x 1 --> x 2``.

    Returns:
        The :class:`Edge` as written (not canonicalised).

    Raises:
        ValueError: when ``text`` is not ``<node> <arrow> <node>``.
    """
    spaced = _SPACED_ARROW.fullmatch(text.strip())
    if spaced:
        u, arrow, v = spaced.groups()
    else:
        for arrow in sorted((a for a in _ARROWS if "o" not in a), key=len, reverse=True):
            u, sep, v = (side.strip() for side in text.partition(arrow))
            if sep and u and v:
                break
        else:
            u = v = ""
    if not u or not v or u == v:
        raise ValueError(
            f"edge must read like 'a -> b', 'a --- b', 'a <-> b' or 'a o-> b', got {text!r}"
        )
    return Edge(u, v, *_ARROWS[arrow])
