"""Data that a fit used to take without complaint and answer wrongly: a refit of an ``"auto"``
SCM, no held-out rows, tiny units, constant and float32-rounded columns, repeated rows, a
single row. Each test fails on the code before the fix it guards."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from scm import SCM, zoo
from scm.frame import to_tensors
from scm.mechanisms.base import spread
from scm.rows import split_rows

TRIANGLE, CHAIN = zoo.triangle(), zoo.chain()


def test_a_refit_of_an_auto_scm_makes_its_own_choices():
    """Fitting the chain's (linear) data first made every ``"auto"`` node linear, and a refit
    on the triangle's data then kept them linear; now the refit equals a new SCM's fit to the
    bit (the same initial flows, the same seed)."""
    tri = TRIANGLE.sample(1000, seed=1)
    refit = SCM(TRIANGLE.graph, "auto")
    refit.fit(CHAIN.sample(1000, seed=0), steps=200, progress=False)
    assert {m.kind for m in refit.mechanisms.values()} == {"linear"}
    refit.fit(tri, steps=200, progress=False)
    fresh = SCM(TRIANGLE.graph, "auto").fit(tri, steps=200, progress=False)
    kinds = {k: m.kind for k, m in fresh.mechanisms.items()}
    assert kinds["x3"] == "flow"  # heteroscedastic: the check calls for the flow
    assert {k: m.kind for k, m in refit.mechanisms.items()} == kinds
    factual = TRIANGLE.sample(50, seed=2)
    pd.testing.assert_frame_equal(refit.counterfactual(factual, {"x1": 1.0}),
                                  fresh.counterfactual(factual, {"x1": 1.0}))


def test_a_refit_undoes_a_categorical_choice():
    """A 0/1 column made ``t`` categorical; refitted on continuous ``t`` it was refused
    ("node 't' is categorical")."""
    rng = np.random.default_rng(0)
    t = rng.random(300)
    df = pd.DataFrame({"t": (t < 0.5).astype(float), "y": t + rng.normal(size=300)})
    m = SCM({"t": [], "y": ["t"]}, "auto").fit(df, steps=100, progress=False)
    assert m.mechanisms["t"].kind == "categorical"
    m.fit(df.assign(t=t), steps=100, progress=False)
    assert m.mechanisms["t"].kind != "categorical" and "t" in m.auto_nodes


@pytest.mark.parametrize("n, val_fraction", [(19, 0.1), (500, 0.0)])
def test_auto_without_held_out_rows_decides_by_the_linearity_check(n, val_fraction):
    """Below 20 rows or with ``val_fraction=0`` nothing is held out; ``"auto"`` kept a flow at
    every node then (19 chain rows: counterfactual RMSE 3.4 stds against .69 for linear). Now
    the check decides, with a warning: the chain's nodes are linear, and with 500 rows the
    triangle's curved x2 (2 tanh x1) and heteroscedastic x3 keep their flows."""
    chain = SCM(CHAIN.graph, "auto")
    with pytest.warns(UserWarning, match="no held-out rows"):
        chain.fit(CHAIN.sample(n, seed=0), val_fraction=val_fraction, steps=100, progress=False)
    assert {m.kind for m in chain.mechanisms.values()} == {"linear"}
    if n >= 500:
        tri = SCM(TRIANGLE.graph, "auto")
        with pytest.warns(UserWarning, match="flows kept: \\['x2', 'x3'\\]"):
            tri.fit(TRIANGLE.sample(n, seed=0), val_fraction=0.0, steps=100, progress=False)
        assert [tri.mechanisms[k].kind for k in tri.nodes] == ["linear", "flow", "flow"]


def test_tiny_units_are_standardised_by_their_own_spread():
    """Columns of spread 1e-8 were divided by a floor of 1e-6, so a flow saw values within
    ±.01 and its samples came out 3.7 times too wide. The flow root's samples now have the
    data's spread: 4,000 draws estimate a std to ~1.1%, the fit on 2,000 rows to ~1.6%, so 10%
    is several of both."""
    x = np.random.default_rng(0).normal(size=2000) * 1e-8
    m = SCM({"x": []}, "flow").fit(pd.DataFrame({"x": x}), steps=300, progress=False)
    assert float(m.mechanisms["x"].scale) == pytest.approx(x.std(), rel=0.05)  # train rows'
    assert m.sample(4000, seed=1)["x"].std() == pytest.approx(x.std(), rel=0.1)


def test_a_constant_column_warns_and_standardises_by_one():
    """A constant parent was divided by 1e-6 in its children's conditioners: ``do(c=4)`` on a
    column always 3 answered E[x2] ~ 4e5 (data std ~1). Now its scale is 1, so the
    intervention moves the child's conditioner input by one unit, and fit warns."""
    rng = np.random.default_rng(0)
    c, x1 = np.full(500, 3.0), rng.normal(size=500)
    df = pd.DataFrame({"c": c, "x1": x1, "x2": x1 + 0.5 * rng.normal(size=500)})
    m = SCM({"c": [], "x1": [], "x2": ["c", "x1"]}, "flow")
    with pytest.warns(UserWarning, match="node 'c' is constant"):
        m.fit(df, steps=200, progress=False)
    assert m.mechanisms["x2"].context_scale.tolist()[0] == 1.0
    assert abs(m.do({"c": 4.0}).sample(2000, seed=0)["x2"].mean()) < 10.0
    assert torch.equal(spread(torch.tensor([[3.0, 1.0], [3.0, 2.0]])),
                       torch.tensor([1.0, 0.5**0.5]))


def test_columns_that_float32_rounds_coarsely_draw_a_warning():
    """At an offset of 1e6 float32 rounds unit-spread values in steps of .06 std (the chain
    shifted by 1e7 answered ate 0.0, truth -1.8); the warning names the node and the step."""
    df = CHAIN.sample(300, seed=0)
    with pytest.warns(UserWarning, match="varies by .* around 1e\\+06") as record:
        SCM(CHAIN.graph, "linear").fit(df + 1e6, progress=False)
    assert [str(w.message).split("'")[1] for w in record] == ["x1", "x2", "x3"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SCM(CHAIN.graph, "linear").fit(df + 1e3, progress=False)  # steps of 6e-5: fine


def test_a_large_offset_draws_the_float32_warning_not_advice_to_recode():
    """A timestamp-like root (1.7e9 + N(0, 100^2)) rounds in float32 to a few values: the
    float32 warning names it, and "auto" no longer advises recoding it as categorical codes
    (its 442 distinct values became 6 float32 values, which the advice would have kept)."""
    df = CHAIN.sample(442, seed=0)
    df["x1"] = 1.7e9 + 100.0 * df["x1"]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        SCM(CHAIN.graph, "auto").fit(df, progress=False, epochs=2)
    messages = [str(w.message) for w in record]
    assert any("'x1' varies by" in m and "float32" in m for m in messages), messages
    assert not any("recode" in m for m in messages), messages


def test_copies_of_a_row_are_held_out_or_trained_on_together():
    """Fifty rows repeated 40 times put copies of training rows among the held-out ones, so
    early stopping and ``"auto"``'s choice scored the fit on its training rows (counterfactual
    RMSE 2.25 stds against .31 on the fifty rows alone). Rows without repeats keep the split
    of before: the same permutation of the rows."""
    df = CHAIN.sample(50, seed=0)
    m = SCM(CHAIN.graph, "auto")
    x = to_tensors(pd.concat([df] * 40, ignore_index=True), m.dims)
    parts = split_rows(x, m, torch.Generator().manual_seed(0), 0.1)
    rows = {name: {tuple(r) for r in torch.cat(list(p.values()), -1).tolist()}
            for name, p in parts.items()}
    assert len(rows["val"]) == len(rows["sel"]) == 5 and len(rows["train"]) == 40
    assert not (rows["val"] & rows["train"] or rows["sel"] & rows["train"]
                or rows["val"] & rows["sel"])
    assert len(parts["val"]["x1"]) == 200 and len(parts["train"]["x1"]) == 1600

    distinct = to_tensors(df, m.dims)
    plain = split_rows(distinct, m, torch.Generator().manual_seed(0), 0.1)
    order = torch.randperm(50, generator=torch.Generator().manual_seed(0))
    assert torch.equal(plain["val"]["x1"], distinct["x1"][order[:5]])


@pytest.mark.parametrize("seed", [0, 1])
def test_copies_of_rows_count_once_in_autos_choice(seed):
    """100 chain rows, and the same rows twenty times: ``"auto"`` makes the same choice
    (linear at every node). Counted twenty times, the copies made the linearity check's
    statistic and the held-out gains twentyfold, and flows won linear nodes (seed 0: x2 and
    x3, seed 1: x1 and x3)."""
    df = CHAIN.sample(100, seed=seed)
    once = SCM(CHAIN.graph, "auto").fit(df, progress=False, steps=200)
    copies = SCM(CHAIN.graph, "auto").fit(pd.concat([df] * 20, ignore_index=True),
                                          progress=False, steps=200)
    assert [m.kind for m in once.mechanisms.values()] == ["linear"] * 3
    assert [m.kind for m in copies.mechanisms.values()] == ["linear"] * 3


def test_one_row_is_refused():
    with pytest.raises(ValueError, match="at least 2 rows"):
        SCM(CHAIN.graph, "linear").fit(CHAIN.sample(1, seed=0), progress=False)


def test_a_declared_flow_on_a_few_valued_column_warns():
    """``"auto"`` makes 0/1 columns categorical; a declared flow fitted a density to them and
    sampled P(t = 1) = .39 on Bernoulli(.5) data, without a word. Distinct values that do not
    repeat (a few rows of continuous data) are not few-valued: no recode warning there."""
    rng = np.random.default_rng(0)
    t = (rng.random(200) < 0.5).astype(float)
    df = pd.DataFrame({"t": t, "y": t + rng.normal(size=200)})
    with pytest.warns(UserWarning, match="node 't' takes only 2 distinct values \\(0, 1\\)"):
        SCM({"t": [], "y": ["t"]}, "flow").fit(df, steps=20, progress=False)
    few = CHAIN.sample(5, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        SCM(CHAIN.graph, "auto").fit(few, steps=20, progress=False)
    assert [str(w.message)[:17] for w in caught] == ["no held-out rows "]


def test_rows_of_codes_repeat_by_chance_and_keep_the_row_split():
    """A table of 0/1 columns has at most 8 distinct rows: grouping its repeats would hold
    out whole cells (or, below 20 groups, nothing), so tables without a non-integer value keep
    the plain shuffled split and the few-rows warning counts rows."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.integers(0, 2, size=(400, 3)).astype(float), columns=["a", "b", "c"])
    m = SCM({"a": [], "b": ["a"], "c": ["b"]}, "auto")
    x = to_tensors(df, m.dims)
    parts = split_rows(x, m, torch.Generator().manual_seed(0), 0.1)
    order = torch.randperm(400, generator=torch.Generator().manual_seed(0))
    assert torch.equal(parts["val"]["a"], x["a"][order[:40]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.fit(df, steps=20, progress=False)


def test_a_missing_value_code_far_from_the_rest_warns():
    """One y of 99999 in the chain (unit scale): the fit warns, naming the node, the row and
    the value (it set y's standardisation: the ATE of x1 on x3 fell to ~0 on such data, see
    scm.rows.FAR_OUT_MADS); the clean table draws no warning (pytest turns one into an error),
    nor does a Student-t(3) column's tail."""
    df = zoo.chain().sample(500, seed=0)
    SCM(zoo.chain().graph, "linear").fit(df, progress=False)
    df.loc[7, "x2"] = 99999.0
    with pytest.warns(UserWarning, match=r"node 'x2' has 1 value\(s\) over 1000 robust stds .*"
                                         r"99999 at row 7"):
        SCM(zoo.chain().graph, "linear").fit(df, progress=False)
    heavy = pd.DataFrame({"t": np.random.default_rng(0).standard_t(3, size=5000)})
    SCM({"t": []}, "linear").fit(heavy, progress=False)
