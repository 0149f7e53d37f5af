"""Exact checks on a hand-set linear-Gaussian SCM, against closed-form answers.

x1 = 0.5 + u1;  x2 = 2 x1 - 1 + 0.5 u2;  x3 = -x1 + 3 x2 + 0.2 u3.
Tolerances: values are O(10) in float32 (eps 1.2e-7), so 1e-5 absolute leaves 10x headroom.
"""

import numpy as np
import pandas as pd
import pyro
import pytest
import torch
from pyro import poutine

from scm import SCM, LinearGaussian

GRAPH = {"x1": [], "x2": ["x1"], "x3": ["x1", "x2"]}


@pytest.fixture
def scm():
    return SCM(
        GRAPH,
        {
            "x1": LinearGaussian(1, 0, bias=[0.5], scale=[1.0]),
            "x2": LinearGaussian(1, 1, weight=[[2.0]], bias=[-1.0], scale=[0.5]),
            "x3": LinearGaussian(1, 2, weight=[[-1.0, 3.0]], bias=[0.0], scale=[0.2]),
        },
    )


@pytest.fixture
def factual(scm):
    return scm.sample(200, seed=1)


def test_counterfactual_matches_closed_form(scm, factual):
    cf = scm.counterfactual(factual, {"x2": 0.5})
    expected_x3 = factual["x3"] + 3.0 * (0.5 - factual["x2"])
    np.testing.assert_allclose(cf["x3"], expected_x3, atol=1e-5)


def test_counterfactual_keeps_non_descendants_bit_for_bit(scm, factual):
    cf = scm.counterfactual(factual, {"x2": 0.5})
    assert np.array_equal(cf["x1"].to_numpy(), factual["x1"].to_numpy())
    assert (cf["x2"] == 0.5).all()
    assert list(cf.columns) == list(factual.columns) and cf.index.equals(factual.index)


def test_counterfactual_on_root_propagates(scm, factual):
    cf = scm.counterfactual(factual, {"x1": 2.0})
    d = 2.0 - factual["x1"]
    np.testing.assert_allclose(cf["x2"], factual["x2"] + 2.0 * d, atol=1e-5)
    np.testing.assert_allclose(cf["x3"], factual["x3"] - d + 3.0 * 2.0 * d, atol=1e-5)


def test_per_row_interventions_in_one_call(scm, factual):
    values = np.linspace(-1, 1, len(factual))
    values[::2] = np.nan  # even rows are not intervened
    cf = scm.counterfactual(factual, {"x2": values})
    odd, even = slice(1, None, 2), slice(0, None, 2)
    np.testing.assert_allclose(cf["x2"].to_numpy()[odd], values[odd], atol=0)
    expected = factual["x3"].to_numpy()[odd] + 3.0 * (values[odd] - factual["x2"].to_numpy()[odd])
    np.testing.assert_allclose(cf["x3"].to_numpy()[odd], expected, atol=1e-5)
    np.testing.assert_allclose(
        cf[["x2", "x3"]].to_numpy()[even], factual[["x2", "x3"]].to_numpy()[even], atol=1e-5
    )


def test_several_nodes_at_once(scm, factual):
    cf = scm.counterfactual(factual, {"x1": 1.0, "x2": -1.0})
    np.testing.assert_allclose(
        cf["x3"], factual["x3"] + (factual["x1"] - 1.0) + 3.0 * (-1.0 - factual["x2"]), atol=1e-5
    )
    s = scm.do({"x1": 1.0, "x2": -1.0}).sample(4000, seed=0)
    # x3 = -1 + 3(-1) + 0.2 u3: the mean's standard error is 0.2/sqrt(4000) = 0.003.
    assert abs(s["x3"].mean() - (-4.0)) < 0.015
    assert (s["x1"] == 1.0).all() and (s["x2"] == -1.0).all()


def test_soft_shift_moves_descendants_exactly(scm):
    obs = scm.sample(500, seed=3)
    shifted = scm.do({"x2": lambda v: v + 0.5}).sample(500, seed=3)
    # Same seed = same noise, so the shift is exact row by row.
    np.testing.assert_allclose(shifted["x2"] - obs["x2"], 0.5, atol=1e-5)
    np.testing.assert_allclose(shifted["x3"] - obs["x3"], 1.5, atol=1e-5)
    cf = scm.counterfactual(obs, {"x2": lambda v: v + 0.5})
    np.testing.assert_allclose(cf["x3"] - obs["x3"], 1.5, atol=1e-5)


def test_ate_is_exact_with_common_random_numbers(scm):
    # d x3 / d x1 through both paths: -1 + 3 * 2 = 5.
    assert scm.ate("x1", "x3", a=0.0, b=1.0, n=1000) == pytest.approx(5.0, abs=1e-4)
    assert scm.ate("x2", "x1", a=0.0, b=1.0, n=1000) == pytest.approx(0.0, abs=1e-6)


def test_poutine_do_on_model_equals_scm_do(scm):
    pyro.set_rng_seed(0)
    values = poutine.do(scm.model, data={"x1": torch.tensor(1.0)})(300)
    ours = scm.do({"x1": 1.0}).sample(300, seed=0)
    np.testing.assert_array_equal(
        values["x3"].detach().numpy()[:, 0], ours["x3"].to_numpy(np.float32)
    )
    assert torch.all(values["x1"] == 1.0)


def test_poutine_condition_log_prob_equals_scm_log_prob(scm, factual):
    data = {k: torch.tensor(factual[[k]].to_numpy(), dtype=torch.float32) for k in GRAPH}
    tr = poutine.trace(poutine.condition(scm.model, data=data)).get_trace(len(factual))
    assert tr.log_prob_sum().item() == pytest.approx(scm.log_prob(factual).sum(), rel=1e-5)
    assert tr.observation_nodes == list(GRAPH)


def test_log_prob_is_the_gaussian_density(scm, factual):
    from scipy.stats import norm

    x1, x2, x3 = (factual[k].to_numpy() for k in GRAPH)
    expected = (
        norm.logpdf(x1, 0.5, 1.0)
        + norm.logpdf(x2, 2 * x1 - 1, 0.5)
        + norm.logpdf(x3, -x1 + 3 * x2, 0.2)
    )
    np.testing.assert_allclose(scm.log_prob(factual), expected, atol=1e-4)


def test_sampling_is_reproducible_and_seed_dependent(scm):
    a, b, c = scm.sample(50, seed=4), scm.sample(50, seed=4), scm.sample(50, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a.to_numpy(), c.to_numpy())


def test_per_row_do_sampling(scm):
    values = np.arange(100, dtype=float)
    s = scm.do({"x1": values}).sample(100, seed=0)
    np.testing.assert_array_equal(s["x1"].to_numpy(), values)
    with pytest.raises(ValueError, match="100 rows but n=50"):
        scm.do({"x1": values}).sample(50)


def test_vector_node_counterfactual_is_exact():
    w = torch.tensor([[1.0, -2.0]])
    scm = SCM(
        {"z": [], "y": ["z"]},
        {
            "z": LinearGaussian(2, 0, bias=[0.0, 1.0], scale=[1.0, 0.5]),
            "y": LinearGaussian(1, 2, weight=w, bias=[0.3], scale=[0.1]),
        },
        dims={"z": 2},
    )
    factual = scm.sample(100, seed=0)
    new_z = np.array([0.5, -0.5])
    cf = scm.counterfactual(factual, {"z": new_z})
    z = factual[["z[0]", "z[1]"]].to_numpy()
    expected = factual["y"].to_numpy() + (new_z - z) @ w.numpy()[0]
    np.testing.assert_allclose(cf["y"], expected, atol=1e-5)
    np.testing.assert_array_equal(cf[["z[0]", "z[1]"]].to_numpy(), np.tile(new_z, (100, 1)))
