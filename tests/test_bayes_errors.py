"""Bad input to Bayesian fitting: one clear error that names the problem and the fix."""

import numpy as np
import pytest

from scm import SCM, zoo
from scm.bayes import NutsTooLargeError
from scm.mechanisms import BayesianAdditive, BayesianLinear

DF = zoo.chain().sample(50, seed=0)
GRAPH = zoo.chain().graph


def test_nuts_on_a_large_model_suggests_svi():
    scm = SCM(GRAPH, mechanisms="bayes-additive", hidden=(64, 64))
    with pytest.raises(NutsTooLargeError, match=r"inference='svi'") as err:
        scm.fit(DF, inference="nuts")
    assert "latent parameters" in str(err.value) and "max_latent=300" in str(err.value)
    assert scm.posterior is None


def test_nuts_needs_bayesian_mechanisms():
    with pytest.raises(ValueError, match=r"nodes \{'x1': 'flow'.*bayes-linear"):
        SCM(GRAPH).fit(DF, inference="nuts")
    mixed = SCM(GRAPH, mechanisms={"x1": "bayes-linear", "x2": "linear", "x3": "bayes-linear"})
    with pytest.raises(ValueError, match=r"\{'x2': 'linear'\}"):
        mixed.fit(DF, inference="svi")


def test_mle_on_bayesian_mechanisms_is_refused():
    with pytest.raises(ValueError, match="need inference='nuts' or 'svi'"):
        SCM(GRAPH, mechanisms="bayes-linear").fit(DF)


def test_unknown_inference_and_options():
    scm = SCM(GRAPH, mechanisms="bayes-linear")
    with pytest.raises(ValueError, match=r"inference must be one of \['mle', 'nuts', 'svi'\]"):
        scm.fit(DF, inference="hmc")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['chains'\].*num_chains"):
        scm.fit(DF, inference="nuts", chains=2)
    with pytest.raises(TypeError, match="only apply to inference='nuts' or 'svi'"):
        SCM(GRAPH, mechanisms="linear").fit(DF, num_samples=10)
    with pytest.raises(ValueError, match="num_chains must be a positive int"):
        scm.fit(DF, inference="nuts", num_chains=0)
    with pytest.raises(ValueError, match=r"guide must be one of \['mvn', 'normal'\]"):
        scm.fit(DF, inference="svi", guide="flow", steps=1)


def test_queries_before_fit_use_point_paths():
    scm = SCM(GRAPH, mechanisms="bayes-linear")
    assert scm.posterior is None
    assert scm.sample(5, seed=0).shape == (5, 3)  # one prior draw: a plain DataFrame


def test_parameter_sites_are_named_by_node():
    from pyro import poutine

    scm = SCM(GRAPH, mechanisms="bayes-linear")
    tr = poutine.trace(scm.model).get_trace(4)
    sites = [k for k, s in tr.nodes.items() if s["type"] == "sample"]
    params = [k for k in sites if k not in GRAPH and k != "rows"]  # "rows": the plate
    assert params == [
        "x1.bias",
        "x1.noise",
        "x2.weight",
        "x2.bias",
        "x2.noise",
        "x3.weight",
        "x3.bias",
        "x3.noise",
    ]
    # Parameters are global (outside the rows plate); node values are per row.
    assert tr.nodes["x2.weight"]["value"].shape == (1, 1)
    assert tr.nodes["x2"]["value"].shape == (4, 1)


@pytest.mark.parametrize("cls", [BayesianLinear, BayesianAdditive])
def test_latent_size_counts_prior_dimensions(cls):
    mech = cls(2, 3)
    expected = {BayesianLinear: 2 * 3 + 2 + 2, BayesianAdditive: 3 * 16 + 16 + 16 * 2 + 2 + 2}
    assert mech.latent_size == expected[cls]
    with pytest.raises(ValueError, match="must be positive"):
        cls(1, 1, noise_scale=0.0)


def test_non_positive_prior_scales_rejected():
    with pytest.raises(ValueError, match="weight_scale must be positive, got -1"):
        BayesianLinear(1, 1, weight_scale=-1)
    assert np.isfinite(BayesianLinear(1, 0).latent_size)
