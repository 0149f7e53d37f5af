"""Structure learning on zoo SCMs: each method recovers what theory says it can."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from scm import zoo
from scm.discovery import DiscoveredGraph, compare, cpdag_of, discover

N = 2000  # rows; the sample size for exact CPDAG recovery


def reversed_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Zoo samples list columns in causal order; reverse them so order gives nothing away."""
    return df[df.columns[::-1]]


def marked(graph: DiscoveredGraph) -> set[tuple[tuple[str, str], ...]]:
    """Edges as sets of (node, mark) ends: independent of node order and edge direction."""
    return {tuple(sorted([(e.u, e.mark_u), (e.v, e.mark_v)])) for e in graph.edges}


@pytest.fixture(scope="module")
def chain_df() -> pd.DataFrame:
    return reversed_columns(zoo.chain().sample(N, seed=0))


@pytest.fixture(scope="module")
def collider_df() -> pd.DataFrame:
    return reversed_columns(zoo.collider().sample(N, seed=0))


@pytest.mark.parametrize("method", ["pc", "ges", "grasp", "boss"])
@pytest.mark.parametrize("name", ["chain", "collider"])
def test_cpdag_methods_recover_the_cpdag(method: str, name: str) -> None:
    truth = getattr(zoo, name)()
    options = {"alpha": 0.01} if method == "pc" else {}
    found = discover(reversed_columns(truth.sample(N, seed=0)), method, **options)
    assert compare(found, truth).shd_cpdag == 0
    assert marked(found) == marked(cpdag_of(truth))


@pytest.mark.parametrize("method", ["pc", "ges"])
def test_chain_edges_stay_undirected(method: str, chain_df: pd.DataFrame) -> None:
    found = discover(chain_df, method)
    assert found.directed == []
    assert sorted(found.undirected) == [("x2", "x1"), ("x3", "x2")]  # node order is x3, x2, x1


@pytest.mark.parametrize("method", ["pc", "ges"])
def test_collider_is_oriented(method: str, collider_df: pd.DataFrame) -> None:
    found = discover(collider_df, method)
    assert sorted(found.directed) == [("x1", "x3"), ("x2", "x3")]
    assert found.undirected == []


def test_fci_keeps_circle_marks(chain_df: pd.DataFrame, collider_df: pd.DataFrame) -> None:
    chain = discover(chain_df, "fci", alpha=0.01)
    assert {e.label for e in chain.edges} == {"x3 o-o x2", "x2 o-o x1"}
    collider = discover(collider_df, "fci", alpha=0.01)
    assert {e.label for e in collider.edges} == {"x1 o-> x3", "x2 o-> x3"}
    assert collider.directed == [] and collider.undirected == []


def test_fci_finds_a_latent_confounder() -> None:
    # a -> b <- L -> c <- d with L hidden: FCI's PAG is a o-> b <-> c <-o d (Zhang 2008).
    rng = np.random.default_rng(0)
    a, d, latent = rng.normal(size=(3, N))
    df = pd.DataFrame(
        {
            "a": a,
            "b": a + latent + 0.5 * rng.normal(size=N),
            "c": d - latent + 0.5 * rng.normal(size=N),
            "d": d,
        }
    )
    found = discover(df, "fci", alpha=0.01)
    assert found.bidirected == [("b", "c")]
    assert {e.label for e in found.partial} == {"a o-> b", "d o-> c"}
    assert found.directed == [] and found.undirected == []
    with pytest.raises(ValueError, match="not directed"):
        found.to_scm()


def test_pc_with_kci_on_few_rows() -> None:
    # KCI is cubic in n: 200 rows keep it to a fraction of a second.
    truth = zoo.collider()
    found = discover(truth.sample(200, seed=0), "pc", test="kci", alpha=0.01)
    assert compare(found, truth).shd_cpdag == 0


def test_ges_generalized_score() -> None:
    # The RKHS cross-validated score (Huang et al. 2018) is slow: 200 rows.
    truth = zoo.chain()
    found = discover(truth.sample(200, seed=0), "ges", score="cv_general")
    assert compare(found, truth).shd_cpdag == 0


@pytest.mark.parametrize("method", ["direct_lingam", "ica_lingam"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lingam_recovers_the_full_dag(method: str, seed: int) -> None:
    truth = zoo.random_dag(6, seed=seed, kind="linear", noise="uniform")
    found = discover(reversed_columns(truth.sample(N, seed=0)), method)
    assert found.is_dag
    assert compare(found, truth).shd_dag == 0


def test_exact_search_returns_a_dag_of_the_true_class(chain_df: pd.DataFrame) -> None:
    found = discover(chain_df, "exact")
    assert found.is_dag and len(found.edges) == 2
    assert marked(cpdag_of(found)) == marked(cpdag_of(zoo.chain()))


def test_exact_search_on_collider(collider_df: pd.DataFrame) -> None:
    assert compare(discover(collider_df, "exact"), zoo.collider()).shd_dag == 0


@pytest.mark.parametrize("test", ["chisq", "gsq"])
def test_discrete_tests_on_categorical_columns(test: str) -> None:
    df = _categorical_chain(3000)
    found = discover(df, "pc", test=test, alpha=0.01)
    assert {e.label for e in found.edges} == {"colour --- size", "size --- flag"}


def test_bdeu_score_on_categorical_columns() -> None:
    found = discover(_categorical_chain(3000), "ges", score="bdeu")
    assert {e.label for e in found.edges} == {"colour --- size", "size --- flag"}


def _categorical_chain(n: int) -> pd.DataFrame:
    """colour -> size -> flag with string, string and integer columns (each link 80% copy)."""
    rng = np.random.default_rng(0)
    colour = rng.choice(["red", "green", "blue"], n)
    size = np.where(
        rng.random(n) < 0.8,
        np.where(colour == "red", "big", "small"),
        rng.choice(["big", "small"], n),
    )
    flag = np.where(rng.random(n) < 0.8, (size == "big").astype(int), rng.integers(0, 2, n))
    return pd.DataFrame({"colour": colour, "size": size, "flag": flag})


@pytest.mark.parametrize("method", ["grasp", "boss"])
def test_permutation_methods_are_seeded_and_leave_global_random_alone(method: str) -> None:
    df = zoo.random_dag(8, seed=3, kind="linear").sample(500, seed=0)
    random.seed(123)
    before = random.getstate()
    a = discover(df, method, seed=7)
    assert random.getstate() == before
    assert discover(df, method, seed=7) == a


def test_options_are_recorded(chain_df: pd.DataFrame) -> None:
    found = discover(chain_df, "pc", alpha=0.02, depth=1)
    assert found.method == "pc"
    assert found.options["alpha"] == 0.02 and found.options["depth"] == 1
    assert found.options["test"] == "fisherz"  # defaults recorded too


def test_library_prints_stay_off_stdout(
    chain_df: pd.DataFrame, capsys: pytest.CaptureFixture
) -> None:
    from scm.discovery import Knowledge

    discover(chain_df, "fci", knowledge=Knowledge.parse(forbid=["x1 -> x2"]))
    assert capsys.readouterr().out == ""


def test_ges_on_many_columns_without_a_parent_cap_warns(monkeypatch):
    """GES on 31 columns ran past 300 s with no progress: over 20 columns without
    max_parents it warns first (the search itself stubbed out here)."""
    import causallearn.search.ScoreBased.GES as ges_module

    def stop(*args, **kwargs):
        raise RuntimeError("stubbed GES")

    monkeypatch.setattr(ges_module, "ges", stop)
    wide = pd.DataFrame(np.random.default_rng(0).normal(size=(100, 21)),
                        columns=[f"c{i}" for i in range(21)])
    with pytest.warns(UserWarning, match="GES over 21 columns without max_parents"):
        with pytest.raises(RuntimeError, match="stubbed"):
            discover(wide, "ges")
