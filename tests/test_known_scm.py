"""KnownSCM.restrict: a zoo SCM over an ancestral subset of its nodes."""

import numpy as np
import pytest

from scm import zoo


def test_restrict_keeps_the_equations_of_the_kept_nodes():
    full = zoo.random_dag(10, seed=0)
    sub = full.restrict(["x5", "x4"])
    assert sub.graph == {"x4": [], "x5": ["x4"]}  # topological order, parents unchanged
    assert sub.name == "random10_nonlinear[x4,x5]"
    # Counterfactuals are deterministic given the factual rows: the kept equations give the
    # full SCM's answers bit for bit.
    factual = full.sample(200, seed=1)
    values = np.linspace(-2.0, 2.0, 200)
    want = full.counterfactual(factual, {"x4": values})[["x4", "x5"]]
    got = sub.counterfactual(factual[["x4", "x5"]], {"x4": values})
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())


def test_restrict_keeps_interventions_on_kept_nodes_only():
    full = zoo.random_dag(10, seed=0).do({"x4": 1.0, "x6": 0.0})
    assert set(full.restrict(["x4", "x5"]).interventions) == {"x4"}
    assert (full.restrict(["x4", "x5"]).sample(50, seed=0)["x4"] == 1.0).all()


@pytest.mark.parametrize(
    ("nodes", "message"),
    [(["x5"], r"node 'x5' needs its parents \['x4'\] kept"),
     (["x4", "nope"], r"unknown nodes \['nope'\]")],
)
def test_restrict_names_a_missing_parent_or_an_unknown_node(nodes, message):
    with pytest.raises(ValueError, match=message):
        zoo.random_dag(10, seed=0).restrict(nodes)
