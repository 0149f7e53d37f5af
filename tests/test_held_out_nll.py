"""``SCM.held_out_nll`` scores the mechanisms that ``fit`` returned, not the candidates it
trained (``"auto"`` replaces flows by linear mechanisms after training)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from scm import SCM, zoo
from scm.fit import node_nll
from scm.frame import to_tensors
from scm.rows import split_rows

CHAIN = {"x1": [], "x2": ["x1"], "x3": ["x2"]}


def test_held_out_nll_scores_the_chosen_mechanisms() -> None:
    """``"auto"`` on a linear chain whose x2 has Student-t (8 dof) noise trains a flow for x2
    (its noise is not Gaussian enough to take the line before training,
    :mod:`scm.gaussian_noise`) and then keeps the linear mechanism (the flow gains less than
    ``SHAPE_GAIN`` on this seed); the history's last ``val_nll`` scored the flow,
    ``held_out_nll`` the linear mechanisms on the same held-out rows (same seeded split as
    ``fit_mle``; the closing pass leaves closed-form mechanisms alone, so the returned model is
    the one scored). ``cauflow fit`` printed the flows' figure: 57.8 where the model scored ~20
    on wine."""
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal(2000)
    x2 = 1.5 * x1 + rng.standard_t(8, 2000)
    df = pd.DataFrame({"x1": x1, "x2": x2, "x3": -1.2 * x2 + rng.standard_normal(2000)})
    model = SCM(CHAIN, mechanisms="auto", seed=0).fit(df, seed=3, progress=False)
    assert len(model.history) > 1  # x2's flow trained
    assert {m.kind for m in model.mechanisms.values()} == {"linear"}
    x = to_tensors(df, model.dims)
    parts = split_rows(x, model, torch.Generator().manual_seed(3), 0.1)
    chosen = sum(node_nll(model, parts["val"]).values())
    assert model.held_out_nll == pytest.approx(chosen, abs=1e-5)
    trained = [h["val_nll"] for h in model.history if math.isfinite(h["val_nll"])][-1]
    assert abs(trained - chosen) > 1e-4  # the flows' score differs




def test_auto_on_a_linear_gaussian_table_is_the_linear_fit() -> None:
    """The linear-Gaussian chain: every ``"auto"`` node takes its line before training
    (:mod:`scm.gaussian_noise`): one closed-form step, the mechanisms least squares on every
    row as ``"linear"``'s are, and a held-out figure that is the training rows' fit scored on
    the early-stopping rows, as ``tests/test_scm_linear_fit.py`` asks of ``"linear"``."""
    truth = zoo.chain()
    df = truth.sample(2000, seed=0)
    auto = SCM(truth.graph, mechanisms="auto", seed=0).fit(df, seed=3, progress=False)
    linear = SCM(truth.graph, mechanisms="linear", seed=0).fit(df, seed=3, progress=False)
    assert len(auto.history) == 1
    assert auto.held_out_nll == auto.history[0]["val_nll"]
    for k in truth.graph:
        for name, value in linear.mechanisms[k].state_dict().items():
            torch.testing.assert_close(auto.mechanisms[k].state_dict()[name], value)
