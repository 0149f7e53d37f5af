"""Stress-test findings (notes/s16/stress2_disc): units, caps, knowledge, collinear data."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest
from causallearn.search.FCMBased.lingam import DirectLiNGAM, ICALiNGAM
from causallearn.utils.PDAG2DAG import pdag2dag

from scm import zoo
from scm.discovery import Knowledge, bootstrap, discover
from scm.discovery.convert import to_general_graph
from scm.discovery.methods import lingam_weights


@pytest.fixture(scope="module")
def chain_df() -> pd.DataFrame:
    return zoo.chain().sample(1000, seed=0)  # x1 -> x2 -> x3


@pytest.fixture(scope="module")
def laplace_df() -> pd.DataFrame:
    return zoo.random_dag(6, seed=2, kind="linear", noise="laplace").sample(2000, seed=0)


# --- LiNGAM does not depend on the columns' units --------------------------------------------


def _rescaled(df: pd.DataFrame, factor: float) -> tuple[pd.DataFrame, np.ndarray]:
    """``df`` with x0, x2, x4 multiplied by ``factor``, and the per-column factors."""
    scale = np.array([factor if k % 2 == 0 else 1.0 for k in range(df.shape[1])])
    return df * scale, scale


@pytest.mark.parametrize("method", ["ica_lingam", "direct_lingam"])
@pytest.mark.parametrize("factor", [1e2, 1e-5])
def test_lingam_graph_is_unit_invariant(method: str, factor: float, laplace_df: pd.DataFrame):
    # Before: ica_lingam went from 6 edges to 13 at x100; direct_lingam to 2 edges at x1e-5.
    scaled, _ = _rescaled(laplace_df, factor)
    assert discover(scaled, method).edges == discover(laplace_df, method).edges


@pytest.mark.parametrize("model", [ICALiNGAM, DirectLiNGAM])
def test_lingam_weights_rescale_with_the_units(model: type, laplace_df: pd.DataFrame):
    scaled, s = _rescaled(laplace_df, 1e2)
    b = lingam_weights(model(random_state=0), laplace_df.to_numpy())
    b_scaled = lingam_weights(model(random_state=0), scaled.to_numpy())
    # x_j = sum_i B[j, i] x_i: in new units B[j, i] becomes B[j, i] * s_j / s_i.
    np.testing.assert_allclose(b_scaled, b * s[:, None] / s[None, :], rtol=1e-6, atol=1e-9)
    assert np.count_nonzero(b) == 6  # the true edges only


# --- GES max_parents ---------------------------------------------------------------------------


def _three_parents() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    a, b, c = rng.standard_normal((3, 2000))
    d = a + b + c + 0.5 * rng.standard_normal(2000)  # d has 3 parents a, b, c
    return pd.DataFrame({"a": a, "b": b, "c": c, "d": d})


def _max_parents_in_a_dag_of(graph) -> int:  # noqa: ANN001 - a DiscoveredGraph
    dag = pdag2dag(to_general_graph(graph.nodes, graph.edges))
    return max(len(dag.get_parents(n)) for n in dag.get_nodes())


@pytest.mark.parametrize("k", [0, 1, 2])
def test_ges_max_parents_is_a_bound(k: int):
    # Before: max_parents=0 gave d 2 parents, and 1 gave a and d 2 parents each.
    found = discover(_three_parents(), "ges", max_parents=k)
    assert _max_parents_in_a_dag_of(found) <= k
    assert (len(found.edges) == 0) == (k == 0)


def test_ges_max_parents_negative():
    with pytest.raises(ValueError, match=r"max_parents must be >= 0 .* got -1"):
        discover(_three_parents(), "ges", max_parents=-1)


# --- background knowledge ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("require", "tiers", "message"),
    [
        ([("x1", "x1")], (), r"required edge\(s\) x1 -> x1 are self-loops"),
        (["x1 -> x2", "x2 -> x1"], (), r"required edges x1 -> x2, x2 -> x1 form a cycle"),
        (
            ["x1 -> x2", "x2 -> x3", "x3 -> x1"],
            (),
            r"required edges x1 -> x2, x2 -> x3, x3 -> x1 form a cycle",
        ),
        (["x3 -> x1"], [["x1"], ["x3"]], r"x3 -> x1 \(tier 1 -> 0\) point into an earlier tier"),
    ],
)
@pytest.mark.parametrize("method", ["pc", "fci", "exact"])
def test_contradictory_knowledge_is_refused(
    method: str, require: list, tiers: list, message: str, chain_df: pd.DataFrame
):
    # Before: accepted; PC/FCI dropped an edge, exact failed with a bare AssertionError.
    with pytest.raises(ValueError, match=message):
        discover(chain_df, method, knowledge=Knowledge.parse(require=require, tiers=tiers))


def test_required_and_forbidden_names_the_edge():
    with pytest.raises(ValueError, match=r"edge\(s\) a -> b are both required and forbidden"):
        Knowledge.parse(forbid=["a -> b", "b -> a"], require=["a -> b"]).check(["a", "b"])


def test_pc_keeps_a_required_edge_its_tests_remove(chain_df: pd.DataFrame):
    found = discover(chain_df, "pc", knowledge=Knowledge.parse(require=["x1 -> x3"]))
    assert ("x1", "x3") in found.directed  # before: only x1 --- x2 --- x3
    assert {frozenset(p) for p in found.directed + found.undirected} == {
        frozenset(p) for p in [("x1", "x2"), ("x2", "x3"), ("x1", "x3")]
    }


def test_pc_orients_an_adjacent_required_edge(chain_df: pd.DataFrame):
    found = discover(chain_df, "pc", knowledge=Knowledge.parse(require=["x3 -> x2"]))
    assert ("x3", "x2") in found.directed


def test_fci_refuses_a_required_edge_it_cannot_add(chain_df: pd.DataFrame):
    with pytest.raises(ValueError, match=r"'fci' cannot enforce required edge\(s\) x1 -> x3"):
        discover(chain_df, "fci", knowledge=Knowledge.parse(require=["x1 -> x3"]))


def test_knowledge_names_with_spaces():
    # Before: spaces were deleted, giving ('x1', 'x2') and ('myvar', 'y').
    k = Knowledge.parse(forbid=["x 1 -> x 2", "my var->y"], require=["a  <-  b c"])
    assert k.forbidden == (("x 1", "x 2"), ("my var", "y"))
    assert k.required == (("b c", "a"),)


# --- data and options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "copy", [lambda s: s, lambda s: 2 * s + 1, lambda s: 1000 * s, lambda s: s / 3]
)
def test_collinear_columns_are_refused(copy, chain_df: pd.DataFrame):  # noqa: ANN001
    # Before: "Data correlation matrix is singular" from causal-learn, or x1 --- x2 dropped.
    df = chain_df.assign(x1b=copy(chain_df["x1"]))
    with pytest.raises(ValueError, match=r"columns 'x1' and 'x1b' are exact linear functions"):
        discover(df, "pc")


def test_a_linear_combination_is_refused(chain_df: pd.DataFrame):
    df = chain_df.assign(s=chain_df["x1"] - 2 * chain_df["x3"])
    with pytest.raises(ValueError, match=r"'x1', 'x3', 's' are an exact linear combination"):
        discover(df, "ges")


@pytest.mark.parametrize(("method", "depth"), [("pc", -1), ("pc", -5), ("fci", -5)])
def test_negative_depth_is_refused(method: str, depth: int, chain_df: pd.DataFrame):
    # Before: PC ran no tests (the complete graph); FCI raised causal-learn's TypeError.
    with pytest.raises(ValueError, match=rf"depth must be >= 0 \(or None .*\), got {depth}"):
        discover(chain_df, method, depth=depth)


def _rare_column() -> pd.DataFrame:
    df = zoo.chain().sample(200, seed=0)
    df["rare"] = 0
    df.loc[:2, "rare"] = 1  # 3 of 200 rows are 1: some resamples miss them all
    return df


def test_bootstrap_redraws_a_resample_with_a_constant_column():
    # Before: "column(s) 'rare' are constant" aborted the whole run.
    freq = bootstrap(_rare_column(), "pc", B=50, seed=0)
    assert freq and all(0.0 <= f <= 1.0 for f in freq.values())
    assert freq == bootstrap(_rare_column(), "pc", B=50, seed=0)


def test_bootstrap_gives_up_after_max_redraws(monkeypatch: pytest.MonkeyPatch):
    module = importlib.import_module("scm.discovery.bootstrap")
    monkeypatch.setattr(module, "MAX_REDRAWS", 1)
    with pytest.raises(ValueError, match=r"1 resamples in a row .*'rare' are constant"):
        bootstrap(_rare_column(), "pc", B=50, seed=0)


def test_a_semicolon_separated_table_read_as_one_column_says_so():
    """A ';'-separated CSV read with commas is one column: discovery said only "at least 2
    columns"; fit already named the separator."""
    one = pd.DataFrame({"x1;x2;x3": ["0.1;0.2;0.3", "0.4;0.5;0.6"] * 20})
    with pytest.raises(ValueError, match=r"looks separated by ';'.*sep=';'"):
        discover(one, "pc")
