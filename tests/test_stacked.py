"""Scalar flow mechanisms fitted as one stacked network (scm/stacked.py) compute exactly the
per-node model: same log-densities, same parameters after write-back, same fit."""

import itertools

import numpy as np
import pandas as pd
import pytest
import torch
from zuko.transforms import MonotonicRQSTransform

from scm import SCM, FlowMechanism, zoo
from scm.fit import fit_mle, standardize_mechanisms
from scm.frame import to_tensors
from scm.stacked import StackedFlows, column_slices, rqs_call_and_ladj, stackable

# float32 log-densities reach |lp| ~ 1e3 with perturbed weights; the stacked network sums in
# another order (batched matrix products vs Linear), so agreement is to float32 rounding: 1e-5
# relative.
RTOL, ATOL = 1e-5, 1e-4


GRAPH = {"z": [], "w": ["z"], "a": ["z"], "b": ["a", "w"], "c": ["a", "b", "z"]}
KINDS = {"z": "flow", "w": "linear", "a": "flow", "b": "flow", "c": "flow"}


def _mixed_data(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, 2))
    w = z.sum(1) + 0.3 * rng.normal(size=n)
    a = np.tanh(z[:, 0]) + 0.5 * rng.normal(size=n)
    b = a * w + 0.2 * rng.standard_t(4, size=n)
    c = np.sin(a) - b + z[:, 1] + 0.1 * rng.normal(size=n)
    return pd.DataFrame({"z[0]": z[:, 0], "z[1]": z[:, 1], "w": w, "a": a, "b": b, "c": c})


def _mixed_scm(activation: str = "relu") -> tuple[SCM, dict[str, torch.Tensor]]:
    """A vector root z (not stackable), a linear node w (not stackable), three scalar flows
    with vector, linear and flow parents; the flows' conditioners use ``activation``
    (``"mixed"``: alternating, so the stack of a, b, c runs three chains: ELU, ReLU, ELU)."""
    scm = SCM(GRAPH, KINDS, dims={"z": 2}, seed=0)
    mixed = itertools.cycle(["relu", "elu"])
    for k, mech in scm.mechanisms.items():
        if mech.kind == "flow":
            act = next(mixed) if activation == "mixed" else activation
            scm.mechanisms[k] = FlowMechanism(mech.dim, mech.context_dim, activation=act)
    x = to_tensors(_mixed_data(), scm.dims)
    standardize_mechanisms(scm, x)
    torch.manual_seed(1)
    with torch.no_grad():  # leave the zero init behind, so every weight matters
        for p in scm.mechanisms.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return scm, x


def _reference(scm: SCM, x: dict[str, torch.Tensor], nodes: list[str]) -> torch.Tensor:
    out = []
    for k in nodes:
        parents = scm.parents[k]
        context = torch.cat([x[p] for p in parents], -1) if parents else None
        out.append(scm.mechanisms[k](context).log_prob(x[k]))
    return torch.stack(out, -1)


def _stack(scm: SCM) -> StackedFlows:
    nodes = [k for k in scm.nodes if stackable(scm.mechanisms[k])]
    return StackedFlows(nodes, scm.mechanisms, scm.parents, column_slices(scm.nodes, scm.dims))


@pytest.mark.parametrize("activation", ["relu", "elu", "mixed"])
def test_stacked_log_density_equals_each_mechanism(activation: str) -> None:
    scm, x = _mixed_scm(activation)
    stack = _stack(scm)
    assert stack.nodes == ["a", "b", "c"]  # z is a vector node, w is linear
    matrix = torch.cat([x[k] for k in scm.nodes], -1)
    torch.testing.assert_close(stack.log_prob(matrix), _reference(scm, x, stack.nodes),
                               rtol=RTOL, atol=ATOL)


def test_write_back_gives_the_mechanisms_the_stacked_function() -> None:
    scm, x = _mixed_scm()
    stack = _stack(scm)
    with torch.no_grad():
        for p in stack.parameters():
            p.add_(0.2 * torch.randn_like(p))
    matrix = torch.cat([x[k] for k in scm.nodes], -1)
    before = _reference(scm, x, stack.nodes)
    stack.write_back()
    after = _reference(scm, x, stack.nodes)
    assert not torch.allclose(before, after)  # the write-back changed the mechanisms ...
    torch.testing.assert_close(after, stack.log_prob(matrix), rtol=RTOL, atol=ATOL)  # ... to it


@pytest.mark.parametrize("name", ["mixed", "random8"])
def test_stacked_fit_follows_the_node_by_node_fit(name: str) -> None:
    """Same data, seed and optimiser: the two ways of computing the same loss give the same
    trajectory (6 epochs, 1e-3 on parameters of order 1: float32 rounding compounded over the
    Adam steps), and the same NLLs to 1e-4 nats."""
    if name == "mixed":
        df = _mixed_data(1000)
        make = lambda: SCM(GRAPH, KINDS, dims={"z": 2}, seed=0)  # noqa: E731
    else:
        truth = zoo.random_dag(8, seed=3)
        df = truth.sample(1000, seed=0)
        make = lambda: SCM(truth.graph, "flow", seed=0)  # noqa: E731
    fits = {}
    for stacked in (False, True):
        scm = make()
        history = fit_mle(scm, df, epochs=6, batch_size=256, lr=1e-2, seed=0, val_fraction=0.1,
                          patience=None, progress=False, stacked=stacked)
        scm.history = history
        fits[stacked] = (scm, history)
    (a, ha), (b, hb) = fits[False], fits[True]
    for (name_a, pa), (name_b, pb) in zip(a.mechanisms.named_parameters(),
                                          b.mechanisms.named_parameters(), strict=True):
        assert name_a == name_b
        torch.testing.assert_close(pa, pb, rtol=1e-3, atol=1e-3)
    assert a.held_out_nll == pytest.approx(b.held_out_nll, abs=1e-4)
    assert ha[-1]["train_nll"] == pytest.approx(hb[-1]["train_nll"], abs=1e-4)
    assert ha[0]["train_nll"] != ha[-1]["train_nll"]  # it trained


def test_mechanisms_of_different_shapes_are_not_stacked_together() -> None:
    scm = SCM({"x": [], "y": ["x"]}, {"x": "flow", "y": "flow"}, seed=0)
    scm.mechanisms["y"] = type(scm.mechanisms["y"])(1, 1, bins=4)
    with pytest.raises(ValueError, match="cannot be stacked"):
        _stack(scm)
    scm.mechanisms["y"] = FlowMechanism(1, 1, hidden=(16, 16))
    with pytest.raises(ValueError, match="cannot be stacked"):
        _stack(scm)


def test_unknown_activation_is_refused() -> None:
    for context_dim in (2, 0):  # a root has no conditioner network; the name is still checked
        with pytest.raises(ValueError, match="unknown activation 'tanh'"):
            FlowMechanism(1, context_dim, activation="tanh")


def test_take_spline_equals_zukos_spline_with_gradients() -> None:
    """``rqs_call_and_ladj`` is zuko's ``call_and_ladj`` with another gather: same values and
    gradients (float32 rounding) inside the bound, on knots, and in the linear tails."""
    torch.manual_seed(0)
    params = [torch.randn(3, 8), torch.randn(3, 8), torch.randn(3, 7)]
    x = torch.cat([6.0 * torch.randn(200, 3), torch.tensor([[-5.0, 0.0, 5.0], [7.0, -9.0, 0.1]])])
    outs = {}
    for name in ("take", "zuko"):
        leaves = [p.clone().requires_grad_() for p in [*params, x]]
        if name == "take":
            y, ladj = rqs_call_and_ladj(leaves[3], *leaves[:3])
        else:
            y, ladj = MonotonicRQSTransform(*leaves[:3]).call_and_ladj(leaves[3])
        (y.sin().sum() + ladj.square().sum()).backward()
        outs[name] = [y, ladj, *(leaf.grad for leaf in leaves)]
    for a, b in zip(outs["take"], outs["zuko"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_roots_have_no_conditioner_in_the_stack() -> None:
    """Roots enter the stack with their noise spline and bias only; their densities still equal
    their mechanisms', and a root's snapshot carries no conditioner weights."""
    truth = zoo.random_dag(6, seed=1)
    scm = SCM(truth.graph, "flow", seed=0)
    x = to_tensors(truth.sample(300, seed=0), scm.dims)
    standardize_mechanisms(scm, x)
    with torch.no_grad():
        for p in scm.mechanisms.parameters():
            p.add_(0.3 * torch.randn_like(p))
    stack = _stack(scm)
    roots = [k for k in stack.nodes if not scm.parents[k]]
    assert roots and len(stack.conditioned) == len(stack.nodes) - len(roots)
    assert stack.weights[0].shape[0] == len(stack.conditioned)
    matrix = torch.cat([x[k] for k in scm.nodes], -1)
    torch.testing.assert_close(stack.log_prob(matrix), _reference(scm, x, stack.nodes),
                               rtol=RTOL, atol=ATOL)
    assert not any(name.startswith("weights") for name in stack.slices(roots[0]))


def _rival_flows(scm: SCM, x: dict[str, torch.Tensor]) -> dict[str, FlowMechanism]:
    """ELU flows for the ReLU-stacked nodes with parents, standardised like them, weights
    perturbed away from the zero init."""
    torch.manual_seed(2)
    rivals = {}
    for k in ("a", "b", "c"):
        flow = FlowMechanism(1, scm.mechanisms[k].context_dim, activation="elu")
        flow.standardize(x[k], torch.cat([x[p] for p in scm.parents[k]], -1))
        with torch.no_grad():
            for p in flow.parameters():
                p.add_(0.3 * torch.randn_like(p))
        rivals[k] = flow
    return rivals


def test_rival_members_compute_their_own_flows_and_get_their_weights_back() -> None:
    """"auto"'s rival conditioners train as extra members of the stack: a member's
    log-density is its rival flow's, with another activation than the stacked nodes', and
    write-back moves trained weights into the rival flows, not into the SCM's mechanisms."""
    scm, x = _mixed_scm("relu")
    rivals = _rival_flows(scm, x)
    stack = StackedFlows(["a", "b", "c"], scm.mechanisms, scm.parents,
                         column_slices(scm.nodes, scm.dims), rivals=[rivals])
    matrix = torch.cat([x[k] for k in scm.nodes], -1)
    ref = torch.cat([_reference(scm, x, ["a", "b", "c"]),
                     torch.stack([rivals[k](torch.cat([x[p] for p in scm.parents[k]], -1))
                                  .log_prob(x[k]) for k in rivals], -1)], -1)
    torch.testing.assert_close(stack.log_prob(matrix), ref, rtol=RTOL, atol=ATOL)

    own = _reference(scm, x, ["a", "b", "c"])
    with torch.no_grad():
        stack.noise[3:].add_(0.2 * torch.randn_like(stack.noise[3:]))  # rival members only
        for w in stack.weights:
            w[3:].add_(0.2 * torch.randn_like(w[3:]))
    stack.write_back()
    torch.testing.assert_close(_reference(scm, x, ["a", "b", "c"]), own)  # untouched
    moved = torch.stack([rivals[k](torch.cat([x[p] for p in scm.parents[k]], -1))
                         .log_prob(x[k]) for k in rivals], -1)
    torch.testing.assert_close(moved, stack.log_prob(matrix)[:, 3:], rtol=RTOL, atol=ATOL)


def test_rivals_must_share_the_stacks_shapes() -> None:
    scm, x = _mixed_scm("relu")
    wide = {"a": FlowMechanism(1, 2, hidden=(16, 16))}
    with pytest.raises(ValueError, match="rival flow of 'a'"):
        StackedFlows(["a", "b", "c"], scm.mechanisms, scm.parents,
                     column_slices(scm.nodes, scm.dims), rivals=[wide])


def test_one_flat_parameter_takes_the_steps_of_separate_tensors() -> None:
    """The stack's parameters are one tensor viewed as weights, biases and noise terms. Pyro's
    ``ClippedAdam`` clips and updates elementwise, so three steps on the flat tensor equal three
    steps on each view as a tensor of its own, bit for bit (lr decay included); if Pyro ever
    clipped by norm or shared state across elements, this fails."""
    from pyro.optim import ClippedAdam

    scm, x = _mixed_scm("mixed")
    stack = _stack(scm)
    assert [name for name, _ in stack.named_parameters()] == ["flat"]
    views = stack.parameter_views()
    assert sum(v.numel() for v in views.values()) == stack.flat.numel()
    separate = {name: torch.nn.Parameter(v.detach().clone()) for name, v in views.items()}
    args = {"lr": 0.05, "clip_norm": 0.5, "lrd": 0.9}  # a small clip, so clipping bites
    flat_optim, separate_optim = ClippedAdam(args), ClippedAdam(args)
    matrix = torch.cat([x[k] for k in scm.nodes], -1)
    for _ in range(3):
        stack.log_prob(matrix).sum().neg().backward()
        grads = stack.flat.grad.split([v.numel() for v in views.values()])
        for p, grad in zip(separate.values(), grads, strict=True):
            p.grad = grad.view(p.shape).clone()
        flat_optim([stack.flat])
        separate_optim(list(separate.values()))
        stack.flat.grad = None
    for name, v in stack.parameter_views().items():
        assert torch.equal(v, separate[name]), name
    # Views write through: a write-back after the steps moves the stepped values.
    stack.write_back()
    torch.testing.assert_close(stack.log_prob(matrix), _reference(scm, x, stack.nodes),
                               rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("gone", [[1], [4], [0, 4], [3, 4, 5], [1, 2, 3]])
def test_retired_members_leave_the_others_densities_and_gradients_unchanged(gone) -> None:
    """After ``retire``, log_prob returns the live members' columns, equal to the full stack's,
    and their gradients are the full stack's; retired members get none. The cases retire a
    ReLU member, an ELU rival, one of each, the whole ELU run, and all but one ReLU member."""
    scm, x = _mixed_scm("relu")
    stack = StackedFlows(["a", "b", "c"], scm.mechanisms, scm.parents,
                         column_slices(scm.nodes, scm.dims), rivals=[_rival_flows(scm, x)])
    matrix = torch.cat([x[k] for k in scm.nodes], -1)
    full = stack.log_prob(matrix)
    live = [i for i in range(6) if i not in gone]
    (grad_full,) = torch.autograd.grad(full[:, live].sum(), stack.flat)
    stack.retire(gone)
    assert stack.live == live
    part = stack.log_prob(matrix)
    torch.testing.assert_close(part, full[:, live], rtol=0, atol=0)
    (grad_part,) = torch.autograd.grad(part.sum(), stack.flat)
    # float32 sums over 400 rows, in batched products of other shapes: rounding of 1e-5
    torch.testing.assert_close(grad_part, grad_full, rtol=1e-4, atol=1e-6)
    noise_grad = grad_part[-stack.noise.numel():].view_as(stack.noise)  # noise is last
    assert noise_grad[gone].abs().sum() == 0
    with pytest.raises(ValueError, match="every member"):
        stack.retire(live)


def test_retire_losing_flows_keeps_candidates_within_the_gap() -> None:
    """Candidates trailing their node's best by more than ``RETIRE_GAP`` nats over the
    held-out rows are retired; a node keeps its best; a stack keeps its last member."""
    from scm.auto import RETIRE_GAP, retire_losing_flows

    scm, x = _mixed_scm("relu")
    stack = StackedFlows(["a", "b", "c"], scm.mechanisms, scm.parents,
                         column_slices(scm.nodes, scm.dims), rivals=[_rival_flows(scm, x)])
    names = ["a", "b", "c", "a@0", "b@0", "c@0"]
    n_val = 100
    per_row = RETIRE_GAP / n_val
    nll = {"a": 1.0, "a@0": 1.0 + 1.5 * per_row,  # a's rival trails by 1.5 gaps: retired
           "b": 1.0 + 0.5 * per_row, "b@0": 1.0,  # b's own trails by half a gap: kept
           "c": 2.0 + 3 * per_row, "c@0": 2.0}  # c's own flow trails by 3 gaps: retired
    candidates = {"a": ["a", "a@0"], "b": ["b", "b@0"], "c": ["c", "c@0"]}
    retire_losing_flows(candidates, nll, n_val, [names], [stack])
    assert candidates == {"a": ["a"], "b": ["b", "b@0"], "c": ["c@0"]}
    assert stack.live == [0, 1, 4, 5]
    # a lone stack member is never retired
    single = StackedFlows(["a", "b"], scm.mechanisms, scm.parents,
                          column_slices(scm.nodes, scm.dims))
    single.retire([0])
    cands = {"b": ["b", "b@x"]}
    retire_losing_flows(cands, {"b": 9.0, "b@x": 0.0}, n_val, [["a", "b"]], [single])
    assert cands == {"b": ["b", "b@x"]} and single.live == [1]


def test_auto_fit_with_every_losing_flow_retired_at_once(monkeypatch) -> None:
    """With retirement from the first epoch and no gap, each auto node keeps only its leading
    flow after one epoch, the own flow included: the fit completes and every fitted flow is
    one that stayed live (its activation is the one that led)."""
    import scm.auto

    monkeypatch.setattr(scm.auto, "RETIRE_AT", 0.0)
    monkeypatch.setattr(scm.auto, "RETIRE_GAP", 0.0)
    truth = zoo.random_dag(6, seed=4)
    m = SCM(truth.graph, "auto", seed=0).fit(truth.sample(1000, seed=1), steps=200, seed=2,
                                             progress=False)
    flows = [v for v in m.mechanisms.values() if v.kind == "flow"]
    assert flows and {v.activation for v in flows} <= {"relu", "elu"}
    # own flows are ReLU: an ELU flow kept means its node's own flow was retired and the
    # rival took its place (3 of the 4 flows on this seed)
    assert any(v.activation == "elu" for v in flows)
    m.counterfactual(truth.sample(5, seed=3), {m.nodes[0]: 0.0})


def test_homoscedastic_members_ignore_the_conditioners_scale_output() -> None:
    """A homoscedastic flow's density does not move with its conditioner's log-scale output,
    and its stacked member computes the same density (the stack masks that output)."""
    scm, x = _mixed_scm("mixed")
    for k in ("a", "c"):
        scm.mechanisms[k].homoscedastic = True
    stack = _stack(scm)
    matrix = torch.cat([x[k] for k in scm.nodes], -1)
    before = _reference(scm, x, stack.nodes)
    torch.testing.assert_close(stack.log_prob(matrix), before, rtol=RTOL, atol=ATOL)
    with torch.no_grad():
        for k in ("a", "b"):  # the log-scale output row of the last layer
            scm.mechanisms[k].loc_scale[-1].weight[1].add_(0.5)
    after = _reference(scm, x, stack.nodes)
    torch.testing.assert_close(after[:, 0], before[:, 0])  # a: homoscedastic, unmoved
    assert not torch.allclose(after[:, 1], before[:, 1])  # b: its scale follows its parents


def test_a_categorical_parent_enters_the_stack_as_its_childrens_conditioners_read_it() -> None:
    """A categorical node's values are not rescaled (its own loc 0, scale 1e-6): the stack must
    standardise its column as the children's context standardisation does, or the stacked
    log-densities differ from the mechanisms' (before the fix, the column entered a million
    times too large and a fitted three-arm treatment effect came out -.72 instead of 1)."""
    from scm.mechanisms import CategoricalMechanism

    scm = SCM({"t": [], "x": [], "y": ["t", "x"]},
              {"t": CategoricalMechanism(1, 0, categories=3), "x": "flow", "y": "flow"}, seed=0)
    rng = np.random.default_rng(0)
    t = rng.integers(0, 3, 400).astype(np.float32)
    xs = rng.normal(size=400).astype(np.float32)
    ys = xs + np.where(t == 2, -2.0, t) + 0.5 * rng.normal(size=400).astype(np.float32)
    x = {"t": torch.tensor(t)[:, None], "x": torch.tensor(xs)[:, None],
         "y": torch.tensor(ys, dtype=torch.float32)[:, None]}
    standardize_mechanisms(scm, x)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in scm.mechanisms["y"].parameters():
            p.add_(0.3 * torch.randn_like(p))
    stack = StackedFlows(["x", "y"], scm.mechanisms, scm.parents,
                         column_slices(scm.nodes, scm.dims))
    matrix = torch.cat([x[k] for k in scm.nodes], -1)
    torch.testing.assert_close(stack.log_prob(matrix), _reference(scm, x, ["x", "y"]),
                               rtol=RTOL, atol=ATOL)
