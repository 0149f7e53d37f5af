"""Declared linear-Gaussian mechanisms are fitted in closed form: least squares on every row."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import scm.rows
from scm import SCM, zoo
from scm.fit import node_nll, split_rows
from scm.frame import to_tensors
from scm.mechanisms import LinearGaussian


def _data_units(mech: LinearGaussian) -> tuple[np.ndarray, float, float]:
    """``(weights, intercept, noise std)`` of a fitted scalar linear mechanism in data units:
    ``x = loc + scale * (w . (c - c_loc) / c_scale + b + sigma u)``."""
    w = (mech.weight[0] * mech.scale / mech.context_scale).detach().numpy()
    b = (mech.loc + mech.scale * (mech.bias - (mech.weight[0] * mech.context_loc
                                               / mech.context_scale).sum())).item()
    return w, b, (mech.log_scale.exp() * mech.scale).item()


def _least_squares(df, child, parents):
    design = np.column_stack([*(df[p] for p in parents), np.ones(len(df))])
    coef, *_ = np.linalg.lstsq(design, df[child].to_numpy(), rcond=None)
    resid = df[child].to_numpy() - design @ coef
    return coef[:-1], coef[-1], resid.std(ddof=1)


def test_a_linear_scm_is_the_least_squares_fit_on_every_row():
    """Every node of ``SCM(graph, "linear")`` equals numpy's least squares on all 2,000 rows
    (float32 rounding), with no training epochs: the history is one entry, whose held-out
    figure is the training-rows fit's log-likelihood of the held-out rows."""
    truth = zoo.collider()
    df = truth.sample(2000, seed=3)
    m = SCM(truth.graph, mechanisms="linear").fit(df, seed=0, progress=False)
    for node, parents in truth.graph.items():
        w, b, noise = _data_units(m.mechanisms[node])
        w_ls, b_ls, noise_ls = _least_squares(df, node, parents)
        np.testing.assert_allclose(w, w_ls, rtol=1e-4)
        np.testing.assert_allclose(b, b_ls, atol=1e-4)
        np.testing.assert_allclose(noise, noise_ls, rtol=1e-4)
    assert len(m.history) == 1 and math.isfinite(m.held_out_nll)
    # the held-out figure is not in-sample: on the held-out rows, the all-rows fit scores better
    parts = split_rows(to_tensors(df, m.dims), m, torch.Generator().manual_seed(0), 0.1)
    in_sample = sum(node_nll(m, parts["val"]).values())
    assert in_sample < m.held_out_nll


def test_linear_nodes_beside_flows_are_least_squares_and_count_in_the_losses():
    """A linear root and a flow child: the root is the least-squares (mean, std) fit on every
    row while the flow trains; the history's losses are the whole model's, so they include the
    root's constant term (one std normal root alone costs ~1.42 nats per row)."""
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=1500)
    df = pd.DataFrame({"x1": x1, "x2": np.sin(2 * x1) + 0.3 * rng.normal(size=1500)})
    m = SCM({"x1": [], "x2": ["x1"]}, mechanisms={"x1": "linear", "x2": "flow"})
    m.fit(df, steps=300, seed=0, progress=False)
    root = m.mechanisms["x1"]
    mean = (root.loc + root.scale * root.bias).item()
    std = (root.scale * root.log_scale.exp()).item()
    np.testing.assert_allclose(mean, df["x1"].mean(), atol=1e-5)
    np.testing.assert_allclose(std, df["x1"].std(ddof=1), rtol=1e-4)
    x = to_tensors(df, m.dims)
    whole = sum(node_nll(m, x).values())
    flow_only = node_nll(m, x)["x2"]
    assert whole - flow_only > 1.3
    assert abs(m.history[-1]["train_nll"] - whole) < 0.2, (m.history[-1], whole)


def test_fitting_neural_mechanisms_on_few_rows_warns_and_names_them():
    """Below ``FEW_ROWS`` rows a declared flow or additive mechanism draws a warning naming
    its nodes; linear and ``"auto"`` nodes, which fit few rows sensibly, do not, nor do
    flows on ``FEW_ROWS`` rows."""
    truth = zoo.chain()
    few = truth.sample(scm.rows.FEW_ROWS - 40, seed=0)
    with pytest.warns(UserWarning, match=r"neural mechanisms \(x2\) on 60 rows"):
        SCM(truth.graph, {"x1": "linear", "x2": "flow", "x3": "linear"}).fit(
            few, steps=20, progress=False)
    quiet = [(SCM(truth.graph, "linear"), few), (SCM(truth.graph, "auto"), few),
             (SCM(truth.graph, "flow"), truth.sample(scm.rows.FEW_ROWS, seed=0))]
    for model, df in quiet:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(df, steps=20, progress=False)
        assert not [w for w in caught if "neural mechanisms" in str(w.message)]
