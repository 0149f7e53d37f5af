"""``"auto"`` nodes whose data are integer codes 0..k-1 (0/1 among them) become categorical
(``scm.auto.categorical_for_coded_columns``)."""

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
    """Columns that are not codes 0..k-1 with every code present (0/2, a constant, 1..5,
    eleven codes, a continuous column) are not switched: the categorical mechanism needs its
    categories numbered from 0. The few-valued ones (0/2, 1..5) warn, naming the node."""
    from scm.auto import categorical_for_coded_columns
    from scm.frame import to_tensors

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": np.r_[np.zeros(50), 2 * np.ones(50)], "c": np.zeros(100),
                       "d": np.linspace(0, 1, 100), "e": rng.integers(1, 6, 100).astype(float),
                       "f": np.arange(100) % 11.0})
    m = SCM({k: [] for k in df}, "auto")
    with pytest.warns(UserWarning) as caught:
        assert categorical_for_coded_columns(m, to_tensors(df, m.dims)) == []
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert "node 'a' takes only 2 distinct values (0, 2)" in messages[0]
    assert "node 'e' takes only 5 distinct values (1, 2, 3, 4, 5)" in messages[1]
    assert "recode it as 0..4" in messages[1]
    assert m.auto_nodes == set(df)


def test_a_three_arm_treatment_is_categorical_with_its_effects():
    """Codes 0/1/2 (a treatment with three arms, frequencies .5/.3/.2) make a three-category
    node: samples take those codes at the data's frequencies (.03: over three standard errors
    of the fit on 3,000 rows and of 20,000 draws together), and do(t) moves y by the arms'
    true effects 1 and -2 (tolerance .15, as for the binary treatment above)."""
    rng = np.random.default_rng(3)
    n = 3000
    x = rng.normal(size=n)
    t = rng.choice(3, size=n, p=[0.5, 0.3, 0.2]).astype(float)
    y = x + np.array([0.0, 1.0, -2.0])[t.astype(int)] + 0.5 * rng.normal(size=n)
    df = pd.DataFrame({"x": x, "t": t, "y": y})
    m = SCM({"x": [], "t": [], "y": ["x", "t"]}, "auto").fit(df, steps=400, progress=False)
    assert m.mechanisms["t"].kind == "categorical" and m.mechanisms["t"].categories == 3
    s = m.sample(20_000, seed=1)
    assert set(np.unique(s["t"])) == {0.0, 1.0, 2.0}
    for code, p in enumerate([0.5, 0.3, 0.2]):
        assert abs((s["t"] == code).mean() - p) < 0.03
    assert m.ate("t", "y", a=0.0, b=1.0, n=20_000) == pytest.approx(1.0, abs=0.15)
    assert m.ate("t", "y", a=0.0, b=2.0, n=20_000) == pytest.approx(-2.0, abs=0.15)


def test_the_loop_fit_switches_them_too():
    """``models.scm_fit.fit_scm`` (the resumable loop fit) makes the same switch, so both fits
    give 0/1 nodes the same kind of mechanism."""
    from models.scm_fit import fit_scm

    m = SCM(GRAPH, "auto")
    fit_scm(m, _rows(1000, 1), steps=50, progress=False)
    assert m.mechanisms["t"].kind == "categorical" and m.mechanisms["b"].kind == "categorical"
    assert set(np.unique(m.sample(1000, seed=0)["t"])) == {0.0, 1.0}


def test_two_fits_with_the_same_seeds_give_the_same_model():
    """The categorical mechanisms ``"auto"`` builds take their initial weights from the SCM's
    seed: two fits of new SCMs on the same rows with the same seeds are equal bit for bit
    (b's conditioner was drawn from the global stream, so each fit differed)."""
    import torch

    df = _rows(600, 1)
    torch.manual_seed(1)
    first = SCM(GRAPH, "auto").fit(df, steps=100, progress=False, seed=0)
    torch.manual_seed(2)
    second = SCM(GRAPH, "auto").fit(df, steps=100, progress=False, seed=0)
    assert first.mechanisms["b"].kind == "categorical"
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
