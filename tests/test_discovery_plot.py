"""The discovered-graph picture: a circle per node sized to its wrapped label, none
overlapping another or the picture's edge, also for a real table's column names."""

import itertools

import numpy as np
import pytest

from scm.discovery.graph import DiscoveredGraph
from scm.discovery.plot import draw_graph, label_lines, node_sizes, plot_graph

WINE = ["alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
        "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
        "od280/od315_of_diluted_wines", "proline", "target"]


def test_long_names_wrap_at_separators_and_short_ones_stay():
    assert label_lines("hue") == "hue"
    assert label_lines("od280/od315_of_diluted_wines") == "od280/od315_\nof_diluted_\nwines"
    assert label_lines("nonflavanoid_phenols") == "nonflavanoid_\nphenols"
    assert label_lines("averyveryverylongword") == "averyveryverylongword"  # no break inside


def test_each_circle_fits_its_own_label():
    """A short name keeps the smallest circle however long the others are (the old picture
    sized every circle by the longest name: (6 * 28 + 10)² points² for wine)."""
    sizes = node_sizes(DiscoveredGraph.from_edges(WINE, []))
    assert sizes["ash"] == sizes["hue"] == 900.0
    assert sizes["od280/od315_of_diluted_wines"] < (6 * 28 + 10) ** 2 / 2


@pytest.mark.parametrize("names", [WINE, [f"x{i}" for i in range(6)],
                                   [f"a_rather_long_column_name_{i}" for i in range(20)],
                                   [f"mean_radius_{i}" for i in range(31)],  # no circle
                                   [f"x{i}" for i in range(30)]])
def test_circles_neither_overlap_nor_leave_the_picture(names):
    """Circles measured where matplotlib draws them (display pixels): every pair apart by at
    least the sum of their radii, each inside the figure. Over 20 nodes the layout is not a
    circle (Kamada-Kawai's, or the circle for a long chain of long names); the old picture
    overlapped wine's circles and, with a spring layout, 31 breast-cancer-like names'."""
    edges = [f"{a} --> {b}" for a, b in zip(names, names[1:], strict=False)]
    fig = draw_graph(DiscoveredGraph.from_edges(names, edges), title="t")
    fig.canvas.draw()
    ax = fig.axes[0]
    circles = ax.collections[0]  # draw_networkx_nodes' markers, in g.nodes order
    centres = ax.transData.transform(circles.get_offsets())
    radii = np.sqrt(circles.get_sizes()) / 2 * fig.dpi / 72
    assert len(centres) == len(names)
    for i, j in itertools.combinations(range(len(names)), 2):
        gap = np.linalg.norm(centres[i] - centres[j]) - radii[i] - radii[j]
        assert gap > 0, (names[i], names[j], gap)
    width, height = fig.canvas.get_width_height()
    assert (centres - radii[:, None] >= 0).all()
    assert (centres[:, 0] + radii <= width).all() and (centres[:, 1] + radii <= height).all()


def test_plot_graph_writes_a_png(tmp_path):
    path = tmp_path / "g.png"
    plot_graph(DiscoveredGraph.from_edges(WINE[:4], ["alcohol --> ash"]), path)
    assert path.read_bytes()[:4] == b"\x89PNG"
