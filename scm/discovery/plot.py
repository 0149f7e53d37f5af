"""Drawing a discovered graph to a PNG with matplotlib and networkx (no graphviz)."""

from __future__ import annotations

from os import PathLike
from typing import TYPE_CHECKING

import networkx as nx

if TYPE_CHECKING:  # pragma: no cover - typing only
    from scm.discovery.graph import DiscoveredGraph

# kind -> (colour, line style, matplotlib arrow style)
STYLES: dict[str, tuple[str, str, str]] = {
    "directed": ("black", "solid", "-|>"),
    "undirected": ("tab:blue", "solid", "-"),
    "bidirected": ("tab:red", "dashed", "<|-|>"),
    "partial": ("tab:purple", "dotted", "-"),  # arrowheads and circles drawn per edge
}
_HEAD = {("tail", "arrow"): "-|>", ("arrow", "tail"): "<|-", ("arrow", "arrow"): "<|-|>"}


def layout(graph: DiscoveredGraph) -> dict[str, tuple[float, float]]:
    """Node positions: a circle up to 20 nodes, else a seeded spring layout (deterministic)."""
    g = nx.Graph()
    g.add_nodes_from(graph.nodes)
    g.add_edges_from((e.u, e.v) for e in graph.edges)
    pos = nx.circular_layout(g) if len(graph.nodes) <= 20 else nx.spring_layout(g, seed=0)
    return {n: (float(p[0]), float(p[1])) for n, p in pos.items()}


def plot_graph(
    graph: DiscoveredGraph, path: str | PathLike[str], *, title: str | None = None
) -> None:
    """Write ``graph`` as a PNG to ``path``.

    Directed edges are black arrows, undirected edges blue plain lines, bidirected edges red
    dashed double arrows, and circle-marked edges purple dotted lines with an open dot at each
    circle end (``o->``, ``o-o``). Bootstrap frequencies, when present, label their edges.
    Uses a standalone ``Figure`` (no pyplot), so it touches no global matplotlib state.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    size = max(6.0, min(16.0, 1.5 * len(graph.nodes) ** 0.5 * 2.5))
    node_size = max(900, (6 * max(len(n) for n in graph.nodes) + 10) ** 2)
    fig = Figure(figsize=(size, size))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_axis_off()
    pos = layout(graph)
    g = nx.DiGraph()
    g.add_nodes_from(graph.nodes)
    g.add_edges_from((e.u, e.v) for e in graph.edges)
    nx.draw_networkx_nodes(
        g, pos, ax=ax, node_color="white", edgecolors="black", node_size=node_size
    )
    nx.draw_networkx_labels(g, pos, ax=ax, font_size=9)
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
    fig.savefig(path, format="png", dpi=120, bbox_inches="tight")
