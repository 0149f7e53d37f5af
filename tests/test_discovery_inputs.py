"""Bad input fails with one clear line; background knowledge reaches causal-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from scm import zoo
from scm.discovery import Knowledge, compare, discover


@pytest.fixture(scope="module")
def chain_df() -> pd.DataFrame:
    return zoo.chain().sample(2000, seed=0)


def _with(df: pd.DataFrame, **columns: Any) -> pd.DataFrame:  # noqa: ANN401 - column values
    return df.assign(**columns)


BAD: dict[str, tuple[Any, str, dict[str, Any], str]] = {
    # name: (data transform, method, options, message pattern)
    "non-numeric column with fisherz": (
        lambda df: _with(df, c=np.where(df.x1 > 0, "hi", "lo")),
        "pc",
        {},
        r"column\(s\) 'c' are categorical .* test='fisherz' .* use test='chisq' or test='gsq'",
    ),
    "non-numeric column with kci": (
        lambda df: _with(df.iloc[:50], c=np.where(df.x1.iloc[:50] > 0, "hi", "lo")),
        "pc",
        {"test": "kci"},
        r"'c' are categorical but method='pc' with test='kci' needs numeric",
    ),
    "non-numeric column with a continuous score": (
        lambda df: _with(df, c=pd.Categorical(np.where(df.x1 > 0, "hi", "lo"))),
        "ges",
        {},
        r"'c' are categorical but method='ges' with score='bic'",
    ),
    "continuous column with chisq": (
        lambda df: df,
        "pc",
        {"test": "chisq"},
        r"non-integer values .* test='chisq' .* discretise",
    ),
    "constant column": (lambda df: _with(df, k=3.0), "pc", {}, r"column\(s\) 'k' are constant"),
    "NaN": (
        lambda df: _with(df, x2=df.x2.mask(df.index == 7)),
        "pc",
        {},
        r"'x2' contain NaN",
    ),
    "inf": (
        lambda df: _with(df, x3=df.x3.mask(df.index == 7, np.inf)),
        "ges",
        {},
        r"'x3' contain inf",
    ),
    "too few rows": (lambda df: df.iloc[:9], "pc", {}, r"9 rows .* needs at least 10"),
    "too few rows for many columns": (
        lambda df: pd.DataFrame(np.random.default_rng(0).normal(size=(12, 12))).add_prefix("v"),
        "ges",
        {},
        r"12 rows .* 12 columns needs at least 14",
    ),
    "one column": (lambda df: df[["x1"]], "pc", {}, r"at least 2 columns"),
    "duplicate columns": (
        lambda df: df.set_axis(["a", "a", "b"], axis=1),
        "pc",
        {},
        r"unique, got duplicates 'a'",
    ),
    "unknown method": (
        lambda df: df,
        "pcmci",
        {},
        r"method must be one of 'pc', 'fci', .*'ica_lingam'; got 'pcmci'",
    ),
    "unknown test": (
        lambda df: df,
        "pc",
        {"test": "pearson"},
        r"test must be one of 'fisherz', 'kci', 'chisq', 'gsq' for method 'pc'; got 'pearson'",
    ),
    "unknown score": (
        lambda df: df,
        "ges",
        {"score": "aic"},
        r"score must be one of 'bic', 'bdeu', .*got 'aic'",
    ),
    "option of another method": (
        lambda df: df,
        "ges",
        {"alpha": 0.05},
        r"alpha do not apply to method 'ges'; its options are score",
    ),
    "alpha out of range": (
        lambda df: df,
        "pc",
        {"alpha": 1.5},
        r"alpha must be in \(0, 1\), got 1.5",
    ),
    "penalty with another score": (
        lambda df: df.iloc[:100],
        "ges",
        {"score": "cv_general", "penalty": 1.0},
        r"penalty applies to score='bic' only",
    ),
    "exact search too large": (
        lambda df: zoo.random_dag(16, seed=0).sample(100),
        "exact",
        {},
        r"at most 15 columns, got 16; use 'ges'",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_one_line_error(case: str, chain_df: pd.DataFrame) -> None:
    transform, method, options, pattern = BAD[case]
    with pytest.raises(ValueError, match=pattern) as info:
        discover(transform(chain_df), method, **options)
    assert "\n" not in str(info.value)


def test_wrong_types(chain_df: pd.DataFrame) -> None:
    with pytest.raises(TypeError, match="DataFrame, got ndarray"):
        discover(chain_df.to_numpy(), "pc")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="alpha must be float, got '0.05'"):
        discover(chain_df, "pc", alpha="0.05")
    with pytest.raises(TypeError, match="depth must be int"):
        discover(chain_df, "pc", depth=1.5)


def test_numpy_numbers_are_accepted_and_stored_as_json(chain_df: pd.DataFrame) -> None:
    import json

    found = discover(chain_df, "pc", alpha=np.float32(0.01), depth=np.int64(1))
    assert found.options["depth"] == 1 and type(found.options["depth"]) is int
    assert json.loads(found.to_json())["options"]["alpha"] == pytest.approx(0.01)


def test_discrete_data_accepts_integer_float_columns(chain_df: pd.DataFrame) -> None:
    # Integer-valued floats (as read from a CSV) are valid categories for chi-square.
    df = (chain_df > 0).astype(float)
    assert discover(df, "pc", test="chisq").nodes == ("x1", "x2", "x3")


# -- background knowledge ------------------------------------------------------------------


def test_pc_respects_a_forbidden_edge(chain_df: pd.DataFrame) -> None:
    free = discover(chain_df, "pc", alpha=0.01)
    assert free.undirected == [("x1", "x2"), ("x2", "x3")]
    found = discover(chain_df, "pc", alpha=0.01, knowledge=Knowledge.parse(forbid=["x1 -> x2"]))
    assert ("x1", "x2") not in found.directed + found.undirected
    assert ("x2", "x1") in found.directed


def test_pc_tiers_orient_the_chain(chain_df: pd.DataFrame) -> None:
    tiers = Knowledge.parse(tiers=[["x1"], ["x2"], ["x3"]])
    found = discover(chain_df, "pc", alpha=0.01, knowledge=tiers)
    assert found.is_dag and compare(found, zoo.chain()).shd_dag == 0
    # Tiers against the truth are obeyed too: x3 first turns every arrow around.
    backwards = discover(
        chain_df, "pc", alpha=0.01, knowledge=Knowledge.parse(tiers=[["x3"], ["x1", "x2"]])
    )
    assert sorted(backwards.directed) == [("x2", "x1"), ("x3", "x2")]


def test_fci_takes_knowledge(chain_df: pd.DataFrame) -> None:
    found = discover(
        chain_df, "fci", alpha=0.01, knowledge=Knowledge.parse(tiers=[["x1"], ["x2"], ["x3"]])
    )
    assert sorted(found.directed) == [("x1", "x2"), ("x2", "x3")]


def test_exact_search_forbidden_and_required(chain_df: pd.DataFrame) -> None:
    forbid = discover(chain_df, "exact", knowledge=Knowledge.parse(forbid=["x2 -> x1", "x3 -> x2"]))
    assert sorted(forbid.directed) == [("x1", "x2"), ("x2", "x3")]
    require = discover(chain_df, "exact", knowledge=Knowledge.parse(require=["x3 -> x2"]))
    assert ("x3", "x2") in require.directed


def test_direct_lingam_tiers() -> None:
    truth = zoo.random_dag(5, seed=1, kind="linear", noise="uniform")
    order = list(truth.graph)[::-1]  # tiers that contradict the true causal order
    found = discover(
        truth.sample(2000), "direct_lingam", knowledge=Knowledge.parse(tiers=[[n] for n in order])
    )
    rank = {n: i for i, n in enumerate(order)}
    assert found.directed and all(rank[u] < rank[v] for u, v in found.directed)


def test_knowledge_errors(chain_df: pd.DataFrame) -> None:
    with pytest.raises(
        ValueError, match="does not take background knowledge; methods that do: 'pc'"
    ):
        discover(chain_df, "ges", knowledge=Knowledge.parse(forbid=["x1 -> x2"]))
    with pytest.raises(ValueError, match="tiers only"):
        discover(chain_df, "direct_lingam", knowledge=Knowledge.parse(forbid=["x1 -> x2"]))
    with pytest.raises(ValueError, match="names 'zz', which is not a column"):
        discover(chain_df, "pc", knowledge=Knowledge.parse(forbid=["x1 -> zz"]))
    with pytest.raises(ValueError, match="both required and forbidden"):
        Knowledge.parse(forbid=["a -> b"], require=["a -> b"]).check(["a", "b"])
    with pytest.raises(ValueError, match="more than one tier"):
        Knowledge.parse(tiers=[["a"], ["a", "b"]]).check(["a", "b"])
    with pytest.raises(ValueError, match="must be directed"):
        Knowledge.parse(forbid=["a --- b"])


def test_knowledge_round_trip() -> None:
    k = Knowledge.parse(forbid=["a -> b"], require=[("c", "a")], tiers=[["c"], ["a", "b"]])
    assert Knowledge.from_dict(k.to_dict()) == k
    assert k.forbids("a", "b") and k.forbids("b", "c") and not k.forbids("c", "b")
