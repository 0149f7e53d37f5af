"""Bayesian fit options and data are checked up front."""

import numpy as np
import pytest

from scm import SCM, zoo

DF = zoo.chain().sample(50, seed=0)
GRAPH = zoo.chain().graph
NUTS = {"inference": "nuts", "num_chains": 1, "warmup_steps": 2, "progress": False}


@pytest.mark.parametrize("num_samples", [1, 3, np.int64(1)])
def test_nuts_needs_four_draws(num_samples: int):
    # Before: a bare AssertionError from Pyro's diagnostics (pyro/ops/stats.py).
    with pytest.raises(ValueError, match=r"num_samples must be >= 4 for inference='nuts'"):
        SCM(GRAPH, "bayes-linear").fit(DF, num_samples=num_samples, **NUTS)


@pytest.mark.parametrize("value", [True, np.bool_(True), 2.0, 0])
def test_counts_are_positive_ints_not_bools(value: object):
    with pytest.raises(ValueError, match=r"num_samples must be a positive int, got"):
        SCM(GRAPH, "bayes-linear").fit(DF, num_samples=value, **NUTS)


def test_numpy_integers_are_accepted():
    # Before: "num_samples must be a positive int, got np.int64(20)".
    scm = SCM(GRAPH, "bayes-linear")
    opts = {**NUTS, "warmup_steps": np.int64(2), "num_chains": np.int32(1)}
    scm.fit(DF, num_samples=np.int64(4), jit_compile=False, **opts)
    settings = scm.posterior.settings
    assert settings["num_samples"] == 4 and type(settings["num_samples"]) is int
    assert type(settings["warmup_steps"]) is int and scm.posterior.num_draws == 4


@pytest.mark.parametrize("p", [1.5, -1.0, 0.0, 1.0, True])
def test_target_accept_prob_is_a_probability(p: float):
    # Before: 1.5 and -1 were accepted.
    with pytest.raises(ValueError, match=r"target_accept_prob must be in \(0, 1\), got"):
        SCM(GRAPH, "bayes-linear").fit(DF, num_samples=4, target_accept_prob=p, **NUTS)


@pytest.mark.parametrize(
    "options", [NUTS | {"num_samples": 4}, {"inference": "svi", "steps": 1, "progress": False}]
)
def test_one_row_is_refused(options: dict):
    # Before: svi and nuts fitted a one-row table (the MLE path refuses it).
    with pytest.raises(ValueError, match="fit needs at least 2 rows of data, got 1"):
        SCM(GRAPH, "bayes-linear").fit(DF.head(1), **options)


def test_mle_only_options_are_refused_for_bayesian_inference():
    """``epochs`` was silently ignored with ``inference="svi"`` (the CLI's ``--epochs`` too)."""
    with pytest.raises(ValueError, match="epochs and patience apply to inference='mle'"):
        SCM(GRAPH, "bayes-linear").fit(DF, inference="svi", epochs=5)
