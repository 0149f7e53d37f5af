"""Drawing a discovered graph to a PNG with matplotlib and networkx (no graphviz)."""

from __future__ import annotations

import math
import re
from os import PathLike
from typing import TYPE_CHECKING, Any

import networkx as nx

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

    from scm.discovery.graph import DiscoveredGraph

# kind -> (colour, line style, matplotlib arrow style)
STYLES: dict[str, tuple[str, str, str]] = {
    "directed": ("black", "solid", "-|>"),
    "undirected": ("tab:blue", "solid", "-"),
    "bidirected": ("tab:red", "dashed", "<|-|>"),
    "partial": ("tab:purple", "dotted", "-"),  # arrowheads and circles drawn per edge
}
_HEAD = {("tail", "arrow"): "-|>", ("arrow", "tail"): "<|-", ("arrow", "arrow"): "<|-|>"}


def layout(
    graph: DiscoveredGraph, sizes: dict[str, float] | None = None
) -> dict[str, tuple[float, float]]:
    """Node positions: a circle up to 20 nodes, else Kamada-Kawai's (deterministic; its
    closest pair of 31 nodes stood 3x as far apart, relative to the layout's span, as the
    seeded spring layout's, which made the circles of breast-cancer's 31 columns overlap),
    unless, given the circles' areas ``sizes``, the circle needs a smaller picture
    (:func:`figure_inches`: a long chain of long names)."""
    g = nx.Graph()
    g.add_nodes_from(graph.nodes)
    g.add_edges_from((e.u, e.v) for e in graph.edges)
    ring = _floats(nx.circular_layout(g))
    if len(graph.nodes) <= 20:
        return ring
    spread = _floats(nx.kamada_kawai_layout(g))
    if sizes is not None and figure_inches(ring, sizes) < figure_inches(spread, sizes):
        return ring
    return spread


def _floats(pos: dict[str, Any]) -> dict[str, tuple[float, float]]:
    return {n: (float(p[0]), float(p[1])) for n, p in pos.items()}


LINE_CHARS = 12
"""Labels longer than this wrap at ``_``, spaces, ``/`` or ``-`` onto more lines (up to
three), so that a real table's column names (``od280/od315_of_diluted_wines``) do not size
every node's circle."""


def label_lines(name: str) -> str:
    """``name`` wrapped for its node's circle: lines of about :data:`LINE_CHARS` characters,
    broken after ``_``, ``' '``, ``/`` or ``-`` (never inside a word), at most three lines."""
    if len(name) <= LINE_CHARS:
        return name
    words = re.findall(r"[^_ /-]+[_ /-]*", name)
    lines = [""]
    for word in words:
        if lines[-1] and len(lines[-1]) + len(word.rstrip()) > LINE_CHARS and len(lines) < 3:
            lines.append("")
        lines[-1] += word
    return "\n".join(line.rstrip(" ") for line in lines)


def node_sizes(graph: DiscoveredGraph) -> dict[str, float]:
    """Each node's marker area (points²): a circle around its wrapped label
    (:func:`label_lines`) at font size 9, at least 900."""
    out = {}
    for n in graph.nodes:
        lines = label_lines(n).split("\n")
        width = 6 * max(len(line) for line in lines) + 10
        out[n] = float(max(900, width ** 2, (14 * len(lines) + 10) ** 2))
    return out


MAX_INCHES = 30.0
"""The largest picture :func:`draw_graph` makes (3,600 pixels at the PNG's 120 dpi); past
it, circles of very many long names may touch."""


def figure_inches(pos: dict[str, tuple[float, float]], sizes: dict[str, float]) -> float:
    """The square figure's side (inches) at which every pair of circles (areas ``sizes``,
    points²) at layout positions ``pos`` stands apart by a tenth of their radii, the axes
    taking ~3/4 of the figure; at least 6 and the old ``3.75 sqrt(n)``, at most
    :data:`MAX_INCHES`."""
    names = list(pos)
    xy = [pos[n] for n in names]
    radius = [sizes[n] ** 0.5 / 144 for n in names]  # inches
    need = 0.0  # inches per layout unit
    for i in range(len(names)):
        for j in range(i):
            apart = math.dist(xy[i], xy[j])
            need = max(need, 1.1 * (radius[i] + radius[j]) / max(apart, 1e-6))
    span = max(max(c) - min(c) for c in zip(*xy, strict=True)) if len(xy) > 1 else 0.0
    wanted = need * span / 0.75 + 2 * max(radius)
    return max(6.0, min(MAX_INCHES, max(1.5 * len(names) ** 0.5 * 2.5, wanted)))


def plot_graph(
    graph: DiscoveredGraph, path: str | PathLike[str], *, title: str | None = None
) -> None:
    """Write ``graph`` as a PNG to ``path`` (:func:`draw_graph`'s figure)."""
    draw_graph(graph, title=title).savefig(path, format="png", dpi=120, bbox_inches="tight")


def draw_graph(graph: DiscoveredGraph, *, title: str | None = None) -> Figure:
    """``graph`` drawn on a new matplotlib ``Figure``.

    Directed edges are black arrows, undirected edges blue plain lines, bidirected edges red
    dashed double arrows, and circle-marked edges purple dotted lines with an open dot at each
    circle end (``o->``, ``o-o``). Bootstrap frequencies, when present, label their edges.
    A node's circle fits its label, wrapped (:func:`label_lines`), and the figure grows with
    the circles so that they do not overlap. A standalone ``Figure`` (no pyplot): it touches
    no global matplotlib state.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    sizes = node_sizes(graph)
    pos = layout(graph, sizes)
    size = figure_inches(pos, sizes)
    widest = max(sizes.values()) ** 0.5 / 72
    fig = Figure(figsize=(size, size))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_aspect("equal", adjustable="datalim")  # one scale: circles stay apart both ways
    g = nx.DiGraph()
    g.add_nodes_from(graph.nodes)
    g.add_edges_from((e.u, e.v) for e in graph.edges)
    node_size = [sizes[n] for n in g.nodes]  # per node, in g.nodes order (networkx's)
    nx.draw_networkx_nodes(
        g, pos, ax=ax, node_color="white", edgecolors="black", node_size=node_size
    )
    nx.draw_networkx_labels(g, pos, labels={n: label_lines(n) for n in g.nodes}, ax=ax,
                            font_size=9)
    ax.margins(0.7 * widest / (0.75 * size))  # the outer circles inside the picture
    labels: dict[tuple[str, str], str] = {}
    handles = []
    for kind, (colour, style, arrow) in STYLES.items():
        edges = [e for e in graph.edges if e.kind == kind]
        if not edges:
            continue
        for e in edges:
            # A circle mark: the edge's arrowhead (if any) plus an open dot near the circle end.
            head = _HEAD.get(
                tuple(m if m != "circle" else "tail" for m in (e.mark_u, e.mark_v)), "-"
            )
            nx.draw_networkx_edges(
                g,
                pos,
                edgelist=[(e.u, e.v)],
                nodelist=list(g.nodes),
                ax=ax,
                arrows=True,
                arrowstyle=head if kind == "partial" else arrow,
                arrowsize=18,
                edge_color=colour,
                style=style,
                width=1.6,
                node_size=node_size,
            )
            for end, other, mark in ((e.u, e.v, e.mark_u), (e.v, e.u, e.mark_v)):
                if mark == "circle":
                    (x0, y0), (x1, y1) = pos[end], pos[other]
                    t = 0.18  # fraction of the edge from the circle's node, clear of the node
                    ax.scatter(
                        [x0 + t * (x1 - x0)],
                        [y0 + t * (y1 - y0)],
                        s=45,
                        zorder=3,
                        facecolors="white",
                        edgecolors=colour,
                        linewidths=1.6,
                    )
            if e.label in graph.frequencies:
                labels[(e.u, e.v)] = f"{graph.frequencies[e.label]:.2f}"
        handles.append(Line2D([], [], color=colour, linestyle=style, label=kind))
    if labels:
        nx.draw_networkx_edge_labels(g, pos, edge_labels=labels, ax=ax, font_size=8)
    if handles:
        ax.legend(handles=handles, loc="lower right", fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    return fig
