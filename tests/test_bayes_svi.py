"""SVI with autoguides: Bayesian MLP mechanisms, and agreement with NUTS on a linear SCM."""

import numpy as np
import pytest

from scm import SCM, zoo
from scm.bayes import Draws, posterior_dataset

W = np.array([[0.0, 0.8], [0.0, 0.0]])
TRUTH = zoo.linear_gaussian(W, np.array([1.0, 0.5]), ["x", "y"])


def test_svi_mvn_linear_posterior_near_truth():
    df = TRUTH.sample(300, seed=0)
    scm = SCM(TRUTH.graph, mechanisms="bayes-linear").fit(
        df, inference="svi", guide="mvn", steps=250, num_samples=200, progress=False
    )
    assert scm.posterior.method == "svi" and scm.posterior.num_chains == 1
    coef = posterior_dataset(scm)["y.coef"].to_numpy()
    # OLS on these rows gives 0.80 with sd 0.03; the guide's mean should sit within 3 sd.
    assert coef.mean() == pytest.approx(0.8, abs=0.1)
    assert 0.01 < coef.std() < 0.1  # a real posterior spread, neither collapsed nor vague
    assert scm.history[-1]["elbo"] > scm.history[0]["elbo"]


def test_svi_bayesian_mlp_effect_matches_the_oracle():
    truth = zoo.triangle()
    df = truth.sample(300, seed=0)
    scm = SCM(truth.graph, mechanisms="bayes-additive", hidden=(8,))
    scm.fit(df, inference="svi", steps=400, num_samples=40, progress=False)
    ate = scm.ate("x1", "x2", a=-1.0, b=1.0, n=200)
    assert isinstance(ate, Draws) and ate["ate"].shape == (1, 40)
    # x2 = 2 tanh(x1) + 0.5 u: the true effect of -1 -> 1 is 4 tanh(1) = 3.05 (the numpy
    # oracle's Monte-Carlo answer). Measured with this seed: mean 2.98, 90% interval
    # [2.39, 3.49]. The bounds: the mean within 0.3 (about one posterior sd), the interval
    # covers the truth and is narrower than 1.5 (not a vague posterior).
    true_ate = (truth.interventional_mean({"x1": 1.0})["x2"]
                - truth.interventional_mean({"x1": -1.0})["x2"])
    assert float(ate) > 1.5 and float(ate) < 4.5  # a sane range before the tight check
    assert float(ate) == pytest.approx(true_ate, abs=0.3)
    lo, hi = ate.interval(0.9).loc["ate"]
    assert lo <= true_ate <= hi and hi - lo < 1.5
