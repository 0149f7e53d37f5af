"""The tensor path of ``SCM.counterfactual`` against the same query run by Pyro's handlers.

``scm.counterfactual`` abducts and predicts by calling only the mechanisms it needs
(``scm.counterfactual.abduct_noise`` / ``predict``); ``counterfactual_program`` answers the
same query with ``poutine.trace``/``condition``/``do`` over the whole program. Both apply the
same float32 transforms in the same order, so they agree to float rounding: 1e-5 absolute on
values of order 1-10 leaves ~10x headroom over float32 eps times the flows' depth.
"""

import numpy as np
import pytest
import torch

from scm import SCM
from scm.counterfactual import counterfactual_program
from scm.frame import to_tensors
from scm.graph import descendants
from scm.interventions import resolve

GRAPH = {"a": [], "b": ["a"], "c": ["a", "b"], "d": ["c"], "e": ["b"]}


# the paths are compared on random weights on purpose (scm.untrained)
pytestmark = pytest.mark.filterwarnings("ignore:.*never fitted:UserWarning")

def _randomised(scm: SCM, seed: int) -> SCM:
    """Perturb every parameter so no flow is the identity (as after training)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in scm.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return scm


@pytest.fixture(params=["flow", "additive", "linear", "mixed"])
def scm(request):
    kinds = request.param
    if kinds == "mixed":
        kinds = {"a": "linear", "b": "flow", "c": "additive", "d": "flow", "e": "linear"}
    return _randomised(SCM(GRAPH, mechanisms=kinds), seed=1)


def _both(scm: SCM, factual, interventions):
    x = to_tensors(factual, scm.dims)
    actions = resolve(interventions, scm.dims, len(factual))
    changed = set(actions) | descendants(scm.parents, actions)
    reference = counterfactual_program(scm, x, actions, changed)
    fast = scm.counterfactual(factual, interventions)
    return reference, fast, changed


CASES = {
    "hard root": {"a": 1.5},
    "hard middle": {"b": -0.5},
    "two nodes": {"a": 0.3, "c": 2.0},
    "per row, NaN rows untouched": {
        "b": np.where(np.arange(64) % 3 == 0, np.nan, np.linspace(-2, 2, 64))
    },
    "soft shift": {"b": lambda v: v + 0.7},
    "soft and hard": {"a": lambda v: 2 * v, "d": 1.0},
}


@pytest.mark.parametrize("case", list(CASES))
def test_tensor_path_equals_pyro_program(scm, case):
    factual = scm.sample(64, seed=2)
    reference, fast, changed = _both(scm, factual, CASES[case])
    for node in scm.nodes:
        got = fast[node].to_numpy()
        want = reference[node][:, 0].numpy()
        if node in changed:
            np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
        else:  # untouched nodes are the factual values, bit for bit, on both paths
            assert np.array_equal(got, factual[node].to_numpy())
            assert np.array_equal(want, factual[node].to_numpy(np.float32))


def test_vector_nodes_agree():
    graph = {"z1": [], "z2": ["z1"], "z3": ["z1", "z2"]}
    scm = _randomised(SCM(graph, mechanisms="flow", dims={"z1": 2, "z2": 3, "z3": 2}), seed=3)
    x = scm.model(32)
    x = {k: v.detach() for k, v in x.items()}
    actions = resolve({"z1": [0.5, -1.0]}, scm.dims, 32)
    changed = {"z1", "z2", "z3"}
    reference = counterfactual_program(scm, x, actions, changed)
    fast, fast_changed = scm._counterfactual(x, actions)
    assert fast_changed == changed
    for node in changed:
        torch.testing.assert_close(fast[node], reference[node], atol=1e-5, rtol=1e-5)


def test_non_invertible_node_named_on_both_paths():
    kinds = {"a": "flow", "k": "categorical", "y": "flow"}
    scm = SCM({"a": [], "k": ["a"], "y": ["k"]}, mechanisms=kinds)
    factual = scm.sample(16, seed=0)
    with pytest.raises(ValueError, match="node 'k'.*not invertible"):
        scm.counterfactual(factual, {"a": 1.0})
    x = to_tensors(factual, scm.dims)
    actions = resolve({"a": 1.0}, scm.dims, 16)
    with pytest.raises(ValueError, match="node 'k'.*not invertible"):
        counterfactual_program(scm, x, actions, {"a", "k", "y"})


def test_reused_noise_spline_follows_parameter_updates():
    """The flow's noise spline is reused between no-grad calls; an in-place update of its
    parameters must show in the next query, also through ``.data`` (as Pyro's ``ClippedAdam``
    steps, which leaves the parameter's version counter alone)."""
    scm = _randomised(SCM({"a": [], "b": ["a"]}, mechanisms="flow"), seed=4)
    factual = scm.sample(32, seed=0)
    before = scm.abduct(factual)["a"].clone()
    assert torch.equal(scm.abduct(factual)["a"], before)  # reused: same numbers
    mech = scm.mechanisms["a"]
    mech.noise_heights.data.add_(torch.linspace(-1.0, 1.0, mech.noise_heights.shape[-1]))
    after = scm.abduct(factual)["a"]
    fresh = _randomised(SCM({"a": [], "b": ["a"]}, mechanisms="flow"), seed=4)
    fresh.load_state_dict(scm.state_dict())
    assert not torch.allclose(after, before, atol=1e-3)
    torch.testing.assert_close(after, fresh.abduct(factual)["a"], atol=0, rtol=0)


def test_a_non_invertible_node_set_on_some_rows_keeps_the_others():
    """A per-row hard intervention on a categorical node whose parents do not change needs no
    noise: the rows it sets take the values, NaN rows keep their factual values bit for bit,
    and its descendants follow on both paths (before, both raised 'not invertible'). When a
    parent changes too, the NaN rows would need the node's noise: still the clear error."""
    from scm.mechanisms import CategoricalMechanism

    kinds = {"a": "flow", "k": CategoricalMechanism(1, 1, categories=3), "y": "flow"}
    scm = _randomised(SCM({"a": [], "k": ["a"], "y": ["a", "k"]}, mechanisms=kinds), seed=2)
    factual = scm.sample(32, seed=0)
    set_rows = np.arange(32) % 2 == 0
    value = np.where(set_rows, 2.0, np.nan)
    reference, fast, changed = _both(scm, factual, {"k": value})
    assert changed == {"k", "y"}
    kept = ~set_rows
    np.testing.assert_array_equal(fast["k"].to_numpy()[kept], factual["k"].to_numpy()[kept])
    assert (fast["k"].to_numpy()[set_rows] == 2.0).all()
    np.testing.assert_array_equal(fast["a"].to_numpy(), factual["a"].to_numpy())
    for node in ["k", "y"]:
        np.testing.assert_allclose(fast[node].to_numpy(), reference[node].numpy()[:, 0],
                                   atol=1e-5, rtol=1e-5)
    # rows left alone keep y too (to float error: y is recomputed through its flow)
    np.testing.assert_allclose(fast["y"].to_numpy()[kept], factual["y"].to_numpy()[kept],
                               atol=1e-4)
    moved = fast["y"].to_numpy()[set_rows] - factual["y"].to_numpy()[set_rows]
    assert np.abs(moved[factual["k"].to_numpy()[set_rows] != 2.0]).max() > 1e-3
    with pytest.raises(ValueError, match="node 'k'.*not invertible"):
        scm.counterfactual(factual, {"a": 1.0, "k": value})
