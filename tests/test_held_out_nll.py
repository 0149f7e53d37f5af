"""``SCM.held_out_nll`` scores the mechanisms that ``fit`` returned, not the candidates it
trained (``"auto"`` replaces flows by linear mechanisms after training)."""

import math

import pytest
import torch

from scm import SCM, zoo
from scm.fit import node_nll
from scm.frame import to_tensors
from scm.rows import split_rows


def test_held_out_nll_scores_the_chosen_mechanisms() -> None:
    """``"auto"`` on the linear-Gaussian chain trains flows beside least squares and keeps the
    linear mechanisms; the history's last ``val_nll`` scored the flows, ``held_out_nll`` the
    linear mechanisms on the same held-out rows (same seeded split as ``fit_mle``; the closing
    pass leaves closed-form mechanisms alone, so the returned model is the one scored).
    ``cauflow fit`` printed the flows' figure: 57.8 where the model scored ~20 on wine."""
    truth = zoo.chain()
    df = truth.sample(2000, seed=0)
    model = SCM(truth.graph, mechanisms="auto", seed=0).fit(df, seed=3, progress=False)
    assert {m.kind for m in model.mechanisms.values()} == {"linear"}
    x = to_tensors(df, model.dims)
    parts = split_rows(x, model, torch.Generator().manual_seed(3), 0.1)
    chosen = sum(node_nll(model, parts["val"]).values())
    assert model.held_out_nll == pytest.approx(chosen, abs=1e-5)
    trained = [h["val_nll"] for h in model.history if math.isfinite(h["val_nll"])][-1]
    assert abs(trained - chosen) > 1e-4  # the flows' score differs
