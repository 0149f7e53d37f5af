"""compare() against hand-counted examples; bootstrap frequencies, seeded and parallel."""

from __future__ import annotations

import math

import networkx as nx
import pandas as pd
import pytest

from scm import zoo
from scm.discovery import DiscoveredGraph, bootstrap, compare, cpdag_of

TRUTH = {"a": [], "b": ["a"], "c": ["b"], "d": ["b"]}  # a -> b -> {c, d}: CPDAG all undirected


def found(*edges: str) -> DiscoveredGraph:
    return DiscoveredGraph.from_edges("abcd", edges)


def test_perfect_dag() -> None:
    c = compare(found("a --> b", "b --> c", "b --> d"), TRUTH)
    assert (c.shd_dag, c.shd_cpdag) == (0, 3)  # the DAG's arrows are not in its CPDAG
    assert c.skeleton_f1 == 1.0 and c.arrow_f1 == 1.0


def test_cpdag_scores() -> None:
    c = compare(found("a --- b", "b --- c", "b --- d"), TRUTH)
    assert (c.shd_dag, c.shd_cpdag) == (3, 0)
    assert (c.skeleton_precision, c.skeleton_recall) == (1.0, 1.0)
    assert c.arrow_recall == 0.0 and math.isnan(c.arrow_precision) and math.isnan(c.arrow_f1)


def test_hand_counted_errors() -> None:
    # reversed b -> a (1), missing b - d (1), extra a -> c (1), right b -> c.
    c = compare(found("b --> a", "b --> c", "a --> c"), TRUTH)
    assert c.shd_dag == 3
    assert c.skeleton_precision == pytest.approx(2 / 3) and c.skeleton_recall == pytest.approx(
        2 / 3
    )
    # arrowheads found: a (wrong), c twice (one right, from b); true: b, c, d.
    assert c.arrow_precision == pytest.approx(1 / 3) and c.arrow_recall == pytest.approx(1 / 3)
    assert c.as_dict()["shd_dag"] == 3 and set(c.as_dict()) >= {"shd_cpdag", "arrow_f1"}


def test_truth_forms_agree() -> None:
    g = found("a --- b", "b --> c")
    nxg = nx.DiGraph([("a", "b"), ("b", "c"), ("b", "d")])
    forms = [
        TRUTH,
        nxg,
        [("a", "b"), ("b", "c"), ("b", "d")],
        found("a --> b", "b --> c", "b --> d"),
    ]
    assert len({compare(g, t) for t in forms}) == 1
    chain = zoo.chain()
    assert compare(cpdag_of(chain), chain).shd_cpdag == 0


def test_compare_errors() -> None:
    with pytest.raises(ValueError, match=r"same nodes; only in truth: \['e'\]"):
        compare(found("a --> b"), {**TRUTH, "e": []})
    with pytest.raises(ValueError, match="cyclic"):
        compare(found("a --> b"), [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])


def test_cpdag_of_follows_meek() -> None:
    # a -> c <- b is a v-structure; c -> d is then compelled (Meek rule 1).
    cpdag = cpdag_of({"a": [], "b": [], "c": ["a", "b"], "d": ["c"]})
    assert sorted(cpdag.directed) == [("a", "c"), ("b", "c"), ("c", "d")]
    assert cpdag_of(zoo.chain()).undirected == [("x1", "x2"), ("x2", "x3")]


# -- bootstrap ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def collider_df() -> pd.DataFrame:
    return zoo.collider().sample(500, seed=0)


def test_bootstrap_frequencies(collider_df: pd.DataFrame) -> None:
    freqs = bootstrap(collider_df, "pc", B=12, seed=0, alpha=0.01)
    assert freqs["x1 --> x3"] == 1.0 and freqs["x2 --> x3"] == 1.0
    assert all(0 < f <= 1 for f in freqs.values())
    assert list(freqs.values()) == sorted(freqs.values(), reverse=True)


def test_bootstrap_counts_directed_and_undirected_apart() -> None:
    chain = zoo.chain().sample(500, seed=0)
    freqs = bootstrap(chain, "pc", B=6, seed=0, alpha=0.01)
    assert freqs["x1 --- x2"] == 1.0 and "x1 --> x2" not in freqs and "x2 --> x1" not in freqs
    oriented = bootstrap(chain, "exact", B=6, seed=0)  # one DAG per resample: arrows only
    assert all("-->" in label for label in oriented)


def test_bootstrap_is_seeded_and_parallel_is_identical(collider_df: pd.DataFrame) -> None:
    noisy = zoo.random_dag(6, seed=2, kind="linear").sample(150, seed=0)
    serial = bootstrap(noisy, "pc", B=8, seed=5)
    assert bootstrap(noisy, "pc", B=8, seed=5) == serial
    assert min(serial.values()) < 1.0  # small n: some edges come and go, so seeds matter
    assert bootstrap(noisy, "pc", B=8, seed=5, n_jobs=2) == serial


def test_bootstrap_errors(collider_df: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="B must be an integer >= 1"):
        bootstrap(collider_df, "pc", B=0)
    with pytest.raises(ValueError, match="n_jobs must be an integer >= 1"):
        bootstrap(collider_df, "pc", n_jobs=0)
    with pytest.raises(ValueError, match="test must be one of"):
        bootstrap(collider_df, "pc", test="nope")


def test_bootstrap_frequencies_on_the_graph(collider_df: pd.DataFrame, tmp_path) -> None:  # noqa: ANN001
    from scm.discovery import discover

    g = discover(collider_df, "pc").with_frequencies(bootstrap(collider_df, "pc", B=4, seed=0))
    assert g.to_networkx()["x1"]["x3"]["frequency"] == 1.0
    assert DiscoveredGraph.from_json(g.to_json()).frequencies == g.frequencies
