"""Weak overlap (scm/overlap.py): an intervention that gives a neural mechanism parent values
the data never show together is flagged, and ``ate`` warns; one within the data is not."""

import numpy as np
import pandas as pd
import pytest

from scm import SCM, zoo
from scm.overlap import off_support


@pytest.fixture(scope="module")
def confounded():
    """h bimodal (+-1.5), t = tanh(2 h) + 0.3 u, y = 2 h - 0.7 t + 0.3 u: t's value pins h's
    cluster, so do(t = 0.5) pairs t = 0.5 with h = -1.5, which the data never show (the
    stress round's case: flows answered the ATE -0.40 against -0.70)."""
    rng = np.random.default_rng(0)
    n = 2000
    h = rng.choice([-1.5, 1.5], n) + 0.3 * rng.normal(size=n)
    t = np.tanh(2 * h) + 0.3 * rng.normal(size=n)
    y = 2 * h - 0.7 * t + 0.3 * rng.normal(size=n)
    graph = {"h": [], "t": ["h"], "y": ["h", "t"]}
    return SCM(graph, "flow").fit(pd.DataFrame({"h": h, "t": t, "y": y}), progress=False)


def test_an_intervention_across_the_clusters_is_off_the_support(confounded):
    """About half the rows (those of the other cluster) are off the support: measured .48
    on 5,000 rows; do(t = 3), beyond every row, all of them."""
    assert 0.3 < off_support(confounded, {"t": 0.5})["y"] < 0.7
    assert off_support(confounded, {"t": 3.0})["y"] > 0.95


def test_ate_warns_about_weak_overlap(confounded):
    with pytest.warns(UserWarning, match=r"ate: do\(t=-?0.5\): the intervention gives the "
                                         r"parents of y \(\d+% of rows\).*weak overlap"):
        confounded.ate("t", "y", a=-0.5, b=0.5, n=2000)


def test_an_intervention_within_the_data_is_not_flagged():
    """A chain x1 -> x2 -> x3 of flows: do(x2 = v) leaves x3 one parent, which the data cover
    up to their extremes (0.0 measured at 1 and 2 stds); do(x1) far beyond them is flagged.
    ``ate`` within the data draws no warning (pytest would turn it into an error)."""
    truth = zoo.chain()
    model = SCM(truth.graph, "flow").fit(truth.sample(2000, seed=0), progress=False)
    assert off_support(model, {"x2": 2.0}) == {"x3": 0.0}
    assert off_support(model, {"x1": 0.5})["x2"] < 0.02
    assert off_support(model, {"x1": 8.0})["x2"] > 0.95
    model.ate("x1", "x3", a=0.0, b=1.0, n=2000)
