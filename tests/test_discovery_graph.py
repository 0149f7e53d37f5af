"""DiscoveredGraph: edge kinds kept apart, equivalence-class DAGs, conversions, JSON, plot."""

from __future__ import annotations

import itertools
import json
import math

import networkx as nx
import numpy as np
import pytest
from causallearn.graph.Edge import Edge as ClEdge
from causallearn.graph.Endpoint import Endpoint
from causallearn.graph.GeneralGraph import GeneralGraph
from causallearn.graph.GraphNode import GraphNode

from scm import zoo
from scm.discovery import DiscoveredGraph, Edge, cpdag_of
from scm.discovery.convert import (
    edges_from_dag_matrix,
    edges_from_general_graph,
    edges_from_sem_matrix,
    to_general_graph,
)
from scm.discovery.edges import parse_edge

ALL_KINDS = ["a --> b", "b --- c", "c <-> d", "d o-o e", "a o-> e", "b --o d"]


def chain_cpdag() -> DiscoveredGraph:
    return DiscoveredGraph.from_edges(["x1", "x2", "x3"], ["x1 --- x2", "x2 --- x3"])


def v_structures(g: DiscoveredGraph) -> set[tuple[frozenset[str], str]]:
    adj = {frozenset((e.u, e.v)) for e in g.edges}
    parents = {n: {u for u, v in g.directed if v == n} for n in g.nodes}
    return {
        (frozenset((a, b)), c)
        for c in g.nodes
        for a, b in itertools.combinations(sorted(parents[c]), 2)
        if frozenset((a, b)) not in adj
    }


# -- edges and their kinds --------------------------------------------------------------


def test_kinds_are_kept_apart() -> None:
    g = DiscoveredGraph.from_edges("abcde", ALL_KINDS)
    assert g.directed == [("a", "b")]
    assert g.undirected == [("b", "c")]
    assert g.bidirected == [("c", "d")]
    assert {e.label for e in g.partial} == {"d o-o e", "a o-> e", "b --o d"}
    assert not g.is_dag


def test_edges_are_canonical_whatever_way_they_are_written() -> None:
    a = DiscoveredGraph.from_edges("abc", ["b <-- a", "c --- b"])
    b = DiscoveredGraph.from_edges("abc", ["b --- c", "a -> b"])
    assert a == b
    assert a.directed == [("a", "b")] and a.undirected == [("b", "c")]


@pytest.mark.parametrize(
    ("text", "marks"),
    [
        ("a->b", ("tail", "arrow")),
        ("a <-> b", ("arrow", "arrow")),
        ("a o-> b", ("circle", "arrow")),
        ("a---b", ("tail", "tail")),
        ("foo->bar", ("tail", "arrow")),
    ],
)
def test_parse_edge(text: str, marks: tuple[str, str]) -> None:
    e = parse_edge(text)
    assert (e.mark_u, e.mark_v) == marks


@pytest.mark.parametrize("text", ["a", "a ->", "a -> a", "a ~> b"])
def test_parse_edge_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="edge must read like"):
        parse_edge(text)


def test_graphs_hash_by_structure() -> None:
    a = DiscoveredGraph.from_edges("ab", ["a --> b"], options={"alpha": 0.05})
    b = DiscoveredGraph.from_edges("ab", ["b <- a"], options={"alpha": 0.05})
    assert a == b and len({a, b}) == 1
    assert a != DiscoveredGraph.from_edges("ab", ["a --- b"], options={"alpha": 0.05})


def test_bad_graphs_are_rejected() -> None:
    with pytest.raises(ValueError, match="not a node"):
        DiscoveredGraph.from_edges("ab", ["a --> z"])
    with pytest.raises(ValueError, match="unique"):
        DiscoveredGraph(("a", "a"), ())
    with pytest.raises(ValueError, match="mark"):
        DiscoveredGraph(("a", "b"), (Edge("a", "b", "tail", "star"),))  # type: ignore[arg-type]


# -- causal-learn conversions --------------------------------------------------------------


def test_general_graph_endpoints_read_faithfully() -> None:
    nodes = [GraphNode(n) for n in "abcde"]
    g = GeneralGraph(nodes)
    a, b, c, d, e = nodes
    g.add_directed_edge(b, a)  # b --> a
    g.add_edge(ClEdge(b, c, Endpoint.TAIL, Endpoint.TAIL))
    g.add_edge(ClEdge(c, d, Endpoint.ARROW, Endpoint.ARROW))
    g.add_edge(ClEdge(e, d, Endpoint.CIRCLE, Endpoint.ARROW))  # e o-> d
    # causal-learn's matrix convention: graph[i, j] is the mark at i on the i-j edge.
    assert (g.graph[1, 0], g.graph[0, 1]) == (-1, 1)
    found = DiscoveredGraph(tuple("abcde"), tuple(edges_from_general_graph(g)))
    assert {x.label for x in found.edges} == {"b --> a", "b --- c", "c <-> d", "e o-> d"}


def test_general_graph_round_trip() -> None:
    g = DiscoveredGraph.from_edges("abcde", ALL_KINDS)
    back = DiscoveredGraph(
        g.nodes, tuple(edges_from_general_graph(to_general_graph(g.nodes, g.edges)))
    )
    assert back == g


def test_adjacency_matrix_conventions() -> None:
    dag = np.zeros((3, 3))
    dag[0, 2] = 1  # exact search: dag[i, j] = 1 is i --> j
    assert [e.label for e in edges_from_dag_matrix(dag, ["a", "b", "c"])] == ["a --> c"]
    b = np.zeros((3, 3))
    b[2, 0] = 1.5  # LiNGAM: x = B x + e, B[j, i] != 0 is i --> j
    b[1, 0] = 0.05
    assert [e.label for e in edges_from_sem_matrix(b, ["a", "b", "c"], threshold=0.1)] == [
        "a --> c"
    ]


# -- networkx ------------------------------------------------------------------------------


def test_to_networkx_marks_and_arcs() -> None:
    g = DiscoveredGraph.from_edges("abcde", ALL_KINDS).with_frequencies({"a --> b": 0.7})
    nxg = g.to_networkx()
    assert nxg.has_edge("a", "b") and not nxg.has_edge("b", "a")
    assert nxg["a"]["b"] == {"kind": "directed", "marks": ("tail", "arrow"), "frequency": 0.7}
    assert nxg.has_edge("b", "c") and nxg.has_edge("c", "b")
    assert nxg["e"]["a"]["marks"] == ("arrow", "circle")
    assert not nx.is_directed_acyclic_graph(chain_cpdag().to_networkx())
    assert nx.is_directed_acyclic_graph(chain_cpdag().dags()[0].to_networkx())


# -- DAGs of the equivalence class ---------------------------------------------------------


def test_chain_cpdag_has_three_dags() -> None:
    dags = chain_cpdag().dags()
    assert len(dags) == 3
    assert len({d.edges for d in dags}) == 3
    for d in dags:
        assert d.is_dag and v_structures(d) == set()


@pytest.mark.parametrize(
    ("edges", "count"),
    [
        (["a --- b", "a --- c", "a --- d"], 4),  # a tree: one DAG per choice of root
        ([f"{u} --- {v}" for u, v in itertools.combinations("abcd", 2)], 24),  # a clique: 4!
        (["a --> c", "b --> c", "c --> d"], 1),  # already a DAG
        (["a --> c", "b --> c", "c --- d"], 1),  # only c --> d avoids a new v-structure
    ],
)
def test_number_of_dags(edges: list[str], count: int) -> None:
    assert len(DiscoveredGraph.from_edges("abcd", edges).dags()) == count


def test_dags_limit() -> None:
    clique = DiscoveredGraph.from_edges(
        "abcd", [f"{u} --- {v}" for u, v in itertools.combinations("abcd", 2)]
    )
    assert len(clique.dags(limit=5)) == 5
    with pytest.raises(ValueError, match="limit"):
        clique.dags(limit=0)


def brute_force_class(dag: DiscoveredGraph) -> set[tuple[Edge, ...]]:
    """Every orientation of ``dag``'s skeleton that is acyclic with the same v-structures."""
    out = set()
    for flips in itertools.product([False, True], repeat=len(dag.edges)):
        arcs = [
            f"{e.v} --> {e.u}" if f else f"{e.u} --> {e.v}"
            for e, f in zip(dag.edges, flips, strict=True)
        ]
        cand = DiscoveredGraph.from_edges(dag.nodes, arcs)
        if cand.is_dag and v_structures(cand) == v_structures(dag):
            out.add(cand.edges)
    return out


@pytest.mark.parametrize("seed", [0, 3, 4])
def test_dags_are_the_markov_equivalence_class(seed: int) -> None:
    # Cross-checks causal-learn's dag2cpdag and our enumeration against a brute-force
    # enumeration of the Markov equivalence class (Verma & Pearl: same skeleton and
    # v-structures).
    truth = zoo.random_dag(8, seed=seed, expected_degree=1.5)
    arcs = [f"{p} --> {c}" for c, ps in truth.graph.items() for p in ps]
    true_dag = DiscoveredGraph.from_edges(truth.nodes, arcs)
    expected = brute_force_class(true_dag)
    assert len(expected) > 1  # the chosen seeds have classes worth enumerating
    dags = cpdag_of(truth).dags(limit=10_000)
    assert {d.edges for d in dags} == expected
    assert len(dags) == len(expected)  # no duplicates


def test_dags_refuse_pags_and_cycles() -> None:
    with pytest.raises(ValueError, match="PAG"):
        DiscoveredGraph.from_edges("ab", ["a <-> b"]).dags()
    with pytest.raises(ValueError, match="cycle"):
        DiscoveredGraph.from_edges("abc", ["a --> b", "b --> c", "c --> a"]).dags()


# -- SCM -------------------------------------------------------------------------------------


def test_to_scm_refuses_a_cpdag() -> None:
    with pytest.raises(ValueError, match=r"not directed .*\.dags\("):
        chain_cpdag().to_scm()


def test_to_scm_from_a_chosen_dag() -> None:
    dag = chain_cpdag().dags()[0]
    model = dag.to_scm(mechanisms="linear")
    assert model.parents == {"x1": [], "x2": ["x1"], "x3": ["x2"]}


# -- JSON ------------------------------------------------------------------------------------


def test_json_round_trip(tmp_path) -> None:  # noqa: ANN001 - pytest fixture
    g = DiscoveredGraph.from_edges(
        "abcde",
        ALL_KINDS,
        method="fci",
        options={"alpha": 0.01, "test": "fisherz"},
        frequencies={"a --> b": 0.25, "b --- c": 1.0},
    )
    assert DiscoveredGraph.from_json(g.to_json()) == g
    g.save(tmp_path / "g.json")
    assert DiscoveredGraph.load(tmp_path / "g.json") == g
    doc = json.loads((tmp_path / "g.json").read_text())
    assert doc["schema"] == "cauflow.discovered_graph" and doc["version"] == 1


def test_json_rejects_other_documents() -> None:
    doc = chain_cpdag().to_dict()
    with pytest.raises(ValueError, match="schema"):
        DiscoveredGraph.from_dict({**doc, "schema": "something.else"})
    with pytest.raises(ValueError, match="version 2"):
        DiscoveredGraph.from_dict({**doc, "version": 2})


# -- plot --------------------------------------------------------------------------------------


def test_plot_writes_a_png(tmp_path) -> None:  # noqa: ANN001 - pytest fixture
    g = DiscoveredGraph.from_edges("abcde", ALL_KINDS, frequencies={"a --> b": 0.9})
    g.plot(tmp_path / "g.png", title="kinds")
    data = (tmp_path / "g.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000


def test_summary_shows_frequencies() -> None:
    g = chain_cpdag().with_frequencies({"x1 --- x2": 0.875})
    assert g.summary().splitlines() == ["x1 --- x2  (0.88)", "x2 --- x3"]
    assert not math.isnan(g.frequencies["x1 --- x2"])
