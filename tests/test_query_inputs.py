"""Query inputs: labelled per-row values, soft interventions' shapes, row counts, NaN and None.

The fitted SCM is a hand-set linear-Gaussian chain with the zoo's equations
(x2 = 1.5 x1 + u2, x3 = -1.2 x2 + u3), so its answers are exact; the zoo's ground truth
reads interventions the same way and must agree.
"""

import math
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from scm import SCM, LinearGaussian, zoo

GRAPH = {"x1": [], "x2": ["x1"], "x3": ["x2"]}


def chain_scm(offset: float = 0.0) -> SCM:
    """The zoo's chain with hand-set mechanisms; ``offset`` shifts x1's mean."""
    return SCM(
        GRAPH,
        {
            "x1": LinearGaussian(1, 0, bias=[offset], scale=[1.0]),
            "x2": LinearGaussian(1, 1, weight=[[1.5]], bias=[0.0], scale=[1.0]),
            "x3": LinearGaussian(1, 1, weight=[[-1.2]], bias=[0.0], scale=[1.0]),
        },
    )


@pytest.fixture(params=["fitted", "zoo"])
def model(request):
    return chain_scm() if request.param == "fitted" else zoo.chain()


@pytest.fixture
def factual():
    """Five rows in shuffled order (index e.g. [83, 53, 70, 45, 44])."""
    return zoo.chain().sample(100, seed=0).sample(5, random_state=0)


# ----------------------------------------------------------------- per-row values as a Series
def test_series_is_aligned_to_the_factual_rows_by_label(model, factual):
    new_x1 = (factual.x1 + 1.0).sort_index()  # same labels, other order
    assert not new_x1.index.equals(factual.index)
    cf = model.counterfactual(factual, {"x1": new_x1})
    # float32 in the fitted SCM: values O(1), so 1e-5 leaves ample headroom
    np.testing.assert_allclose(cf.x1, factual.x1 + 1.0, atol=1e-5)
    np.testing.assert_allclose(cf.x2, factual.x2 + 1.5, atol=1e-5)
    assert cf.index.equals(factual.index)


def test_series_with_nan_rows_is_aligned_too(model, factual):
    new_x1 = pd.Series([np.nan, 2.0, np.nan, 3.0, np.nan], index=factual.index).sort_index()
    cf = model.counterfactual(factual, {"x1": new_x1})
    expected = np.where([False, True, False, True, False], [0, 2.0, 0, 3.0, 0], factual.x1)
    np.testing.assert_allclose(cf.x1, expected, atol=1e-5)


@pytest.mark.parametrize("index", ["0..4", "first four", "one label twice"])
def test_series_with_another_index_is_refused(model, factual, index):
    labels = {
        "0..4": [0, 1, 2, 3, 4],
        "first four": list(factual.index[:4]),
        "one label twice": [factual.index[0], *factual.index[:4]],
    }[index]
    values = pd.Series(np.arange(len(labels), dtype=float), index=labels)
    with pytest.raises(ValueError, match="intervention values for 'x1' are a Series whose index "
                       "does not match the factual rows' index"):
        model.counterfactual(factual, {"x1": values})


def test_series_on_a_factual_frame_with_repeated_labels(model, factual):
    factual = factual.set_axis([7, 7, 3, 3, 1])
    same = pd.Series(np.arange(5.0), index=factual.index)
    np.testing.assert_allclose(model.counterfactual(factual, {"x1": same}).x1, np.arange(5.0))
    with pytest.raises(ValueError, match="Series whose index does not match"):
        model.counterfactual(factual, {"x1": same.sort_index()})


def test_arrays_stay_positional(model, factual):
    values = np.arange(5.0)
    for given in (values, list(values)):
        cf = model.counterfactual(factual, {"x1": given})
        np.testing.assert_allclose(cf.x1, values, atol=1e-6)


def test_do_sample_reads_a_series_by_position(model):
    values = pd.Series([1.0, 2.0, 3.0], index=[30, 10, 20])
    np.testing.assert_allclose(model.do({"x1": values}).sample(3, seed=0).x1, [1, 2, 3], atol=1e-6)


# ----------------------------------------------------------------- soft interventions' shapes
def test_soft_intervention_may_return_one_value_per_row(model, factual):
    """``(n,)`` for a scalar node is read as ``(n, 1)``."""
    flat = model.do({"x2": lambda v: v[:, 0] + 1.0}).sample(4, seed=0)
    shaped = model.do({"x2": lambda v: v + 1.0}).sample(4, seed=0)
    pd.testing.assert_frame_equal(flat, shaped)
    cf = model.counterfactual(factual, {"x2": lambda v: v[:, 0] + 1.0})
    np.testing.assert_allclose(cf.x2, factual.x2 + 1.0, atol=1e-5)


def test_soft_intervention_returning_one_number_sets_every_row(model):
    df = model.do({"x2": lambda v: 2.5}).sample(4, seed=0)
    np.testing.assert_allclose(df.x2, 2.5)


@pytest.mark.parametrize(
    ("fn", "shape"),
    [(lambda v: v[:3], "(3, 1)"), (lambda v: v.repeat(1, 2) if hasattr(v, "repeat_interleave")
                                  else np.repeat(v, 2, axis=1), "(5, 2)")],
    ids=["fewer rows", "two columns"],
)
def test_soft_intervention_of_the_wrong_shape_names_the_node(model, factual, fn, shape):
    message = re.escape(
        f"soft intervention on 'x2' returned shape {shape}; expected (n, 1) = (5, 1)"
    )
    with pytest.raises(ValueError, match=message):
        model.do({"x2": fn}).sample(5, seed=0)
    with pytest.raises(ValueError, match=message):
        model.counterfactual(factual, {"x2": fn})


# ----------------------------------------------------------------- row counts
@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_row_count_must_be_a_positive_int(n):
    scm = chain_scm()
    message = re.escape(f"n must be a positive int, got {n!r}")
    with pytest.raises(ValueError, match=message):
        scm.sample(n)
    with pytest.raises(ValueError, match=message):
        scm.do({"x1": 1.0}).sample(n)
    with pytest.raises(ValueError, match=message):
        scm.ate("x1", "x3", n=n)


def test_numpy_row_counts_are_ints():
    assert len(chain_scm().sample(np.int64(3))) == 3


# ----------------------------------------------------------------- NaN and None
@pytest.mark.parametrize("value", [math.nan, np.array([math.nan]), np.float32("nan")])
def test_a_nan_intervention_is_refused(model, factual, value):
    message = "intervention on 'x1' is NaN; NaN is only for leaving some rows"
    with pytest.raises(ValueError, match=message):
        model.do({"x1": value}).sample(5, seed=0)
    with pytest.raises(ValueError, match=message):
        model.counterfactual(factual, {"x1": value})


def test_a_nan_vector_intervention_is_refused():
    scm = SCM({"z": [], "y": ["z"]}, mechanisms="linear", dims={"z": 2})
    with pytest.raises(ValueError, match="intervention on 'z' is NaN"):
        scm.do({"z": [math.nan, math.nan]})


def test_nan_rows_of_per_row_values_are_still_left_alone(model, factual):
    cf = model.counterfactual(factual, {"x1": [math.nan] * 5})
    np.testing.assert_allclose(cf, factual, atol=1e-5)


def test_none_is_refused(model, factual):
    with pytest.raises(TypeError, match="intervention on 'x1' is None"):
        model.do({"x1": None}).sample(5, seed=0)
    with pytest.raises(TypeError, match="intervention on 'x1' is None"):
        model.counterfactual(factual, {"x1": None})


def test_cli_do_with_nan_is_one_line(tmp_path):
    chain_scm().save(str(tmp_path))
    r = CliRunner().invoke(app, ["do", str(tmp_path), "--set", "x1=nan"])
    assert r.exit_code == 2, r.output
    assert "intervention on 'x1' is NaN" in r.output and "Traceback" not in r.output


# ----------------------------------------------------------------- precision of the ATE
def test_ate_is_averaged_in_float64_far_from_zero():
    """x1 near 1e7, x3 near -1.8e7: float32 samples, each exact to float32's spacing there
    (1 or 2), but a float32 mean of 20,000 of them lost the whole effect (exactly 0 before).
    The samples' own float32 arithmetic is not exact either (1.5 * (1e7 + 1) rounds to
    1.5e7 + 2), so the reference is the same samples averaged in float64."""
    offset, n = 1e7, 20_000
    scm = chain_scm(offset)
    ate = scm.ate("x1", "x3", a=offset, b=offset + 1.0, n=n)
    hi, lo = (scm.do({"x1": v}).sample_tensors(n, 0)["x3"].double().mean().item()
              for v in (offset + 1.0, offset))
    assert ate == pytest.approx(hi - lo, abs=1e-9)  # float64 sums of 20,000 values ~2e7
    assert ate < -1.0


def test_an_intervention_given_as_text_is_refused():
    """numpy reads "1.0" as the number 1.0, so do({"x1": "1.0"}) ran as do(x1 = 1); text is
    refused by name, per-row values too; numbers pass."""
    model = SCM(zoo.chain().graph, "linear")
    for text in ("1.0", ["1", "2"]):
        with pytest.raises(ValueError, match="intervention on 'x1' must be a number.*got the "
                                             "text '1"):
            model.do({"x1": text})
    model.do({"x1": 1.0})
