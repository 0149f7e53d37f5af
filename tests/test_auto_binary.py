"""``"auto"`` nodes whose data are 0 or 1 become categorical
(``scm.auto.categorical_for_binary_columns``)."""

import numpy as np
import pandas as pd
import pytest

from scm import SCM

GRAPH = {"x": [], "t": [], "y": ["x", "t"], "b": ["y"]}


def _rows(n: int, seed: int) -> pd.DataFrame:
    """x ~ N(0, 1), t ~ Bernoulli(.3), y = x + 1.5 t + 0.5 u, b = 1[y + u' > 0.5]."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = (rng.random(n) < 0.3).astype(float)
    y = x + 1.5 * t + 0.5 * rng.normal(size=n)
    b = (y + rng.normal(size=n) > 0.5).astype(float)
    return pd.DataFrame({"x": x, "t": t, "y": y, "b": b})


@pytest.fixture(scope="module")
def fitted() -> tuple[SCM, pd.DataFrame]:
    df = _rows(3000, 0)
    return SCM(GRAPH, "auto").fit(df, steps=400, progress=False, seed=0), df


def test_binary_columns_get_categorical_mechanisms_and_sample_0_or_1(fitted, tmp_path):
    """The 0/1 nodes (a root and a child) turn categorical and leave ``auto_nodes``; their
    samples are 0 or 1 with the data's frequency: 20,000 draws of t have a standard error of
    .003 and the fit on 3,000 rows one of .008, so .03 is over three of both together."""
    m, df = fitted
    assert m.mechanisms["t"].kind == "categorical" and m.mechanisms["b"].kind == "categorical"
    assert not {"t", "b"} & m.auto_nodes and m.mechanisms["y"].kind != "categorical"
    s = m.sample(20_000, seed=1)
    assert set(np.unique(s["t"])) == {0.0, 1.0} and set(np.unique(s["b"])) == {0.0, 1.0}
    assert abs(s["t"].mean() - df["t"].mean()) < 0.03
    assert abs(s["b"].mean() - df["b"].mean()) < 0.03
    m.save(tmp_path / "m")
    loaded = SCM.load(tmp_path / "m")
    assert loaded.mechanisms["t"].kind == "categorical"
    assert loaded.sample(500, seed=2).equals(m.sample(500, seed=2))


def test_queries_through_a_binary_treatment(fitted):
    """do(t) moves y by the true effect 1.5 (tolerance .15: the fitted flow's mean error on
    3,000 rows with noise std .5, ten times the standard error of 20,000 draws); a
    counterfactual that flips t recomputes y exactly-invertibly (y' - y = ±1.5 to .15), and
    one that would recompute the binary b names it."""
    m, df = fitted
    assert m.ate("t", "y", a=0.0, b=1.0, n=20_000) == pytest.approx(1.5, abs=0.15)
    factual = df.head(200)[["x", "t", "y"]]
    sub = SCM({"x": [], "t": [], "y": ["x", "t"]},
              {"x": m.mechanisms["x"], "t": m.mechanisms["t"], "y": m.mechanisms["y"]})
    cf = sub.counterfactual(factual, {"t": 1.0 - factual["t"].to_numpy()})
    shift = (cf["y"] - factual["y"]).to_numpy()
    np.testing.assert_allclose(shift, 1.5 * (1.0 - 2.0 * factual["t"].to_numpy()), atol=0.15)
    with pytest.raises(ValueError, match="node 'b'.*not invertible"):
        m.counterfactual(df.head(10), {"t": 1.0})


def test_other_columns_stay_continuous():
    """Columns with values other than 0 and 1 (0/2, or 0/1 with one value only) are not
    switched: the categorical mechanism needs both categories and nothing else."""
    from scm.auto import categorical_for_binary_columns
    from scm.frame import to_tensors

    df = pd.DataFrame({"a": np.r_[np.zeros(50), 2 * np.ones(50)], "c": np.zeros(100),
                       "d": np.linspace(0, 1, 100)})
    m = SCM({"a": [], "c": [], "d": []}, "auto")
    assert categorical_for_binary_columns(m, to_tensors(df, m.dims)) == []
    assert m.auto_nodes == {"a", "c", "d"}


def test_the_loop_fit_switches_them_too():
    """``models.scm_fit.fit_scm`` (the resumable loop fit) makes the same switch, so both fits
    give 0/1 nodes the same kind of mechanism."""
    from models.scm_fit import fit_scm

    m = SCM(GRAPH, "auto")
    fit_scm(m, _rows(1000, 1), steps=50, progress=False)
    assert m.mechanisms["t"].kind == "categorical" and m.mechanisms["b"].kind == "categorical"
    assert set(np.unique(m.sample(1000, seed=0)["t"])) == {0.0, 1.0}
