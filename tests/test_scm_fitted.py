"""Flow SCMs fitted with default settings on 5,000 rows answer causal queries correctly.

Errors are in units of each node's observational std. The baseline ignores the
intervention: the observational mean for do-queries, the factual row for counterfactuals.
Bounds were set from measured errors (see the closing note of issue 2) with about 2x headroom;
the baselines' errors are ~0.5-1 std, so the model must be several times better.
"""

import numpy as np
import pandas as pd
import pytest
import torch

import scm.auto
import scm.fit
from scm import SCM, zoo
from scm.auto import select_auto_mechanism
from scm.fit import node_nll, standardize_mechanisms
from scm.frame import to_tensors
from scm.mechanisms import LinearGaussian
from scm.rows import split_rows

CASES = {
    # name: (truth factory, intervened node)
    "chain": (zoo.chain, "x1"),
    "triangle": (zoo.triangle, "x1"),
    "pendulum": (zoo.pendulum, "light"),
}
# Ten nodes take about half a minute to fit on one core; CI runs these with -m slow.
SLOW_CASES = {"random10": (lambda: zoo.random_dag(10, seed=0), None)}

DO_BOUND = 0.10  # max over nodes of |model mean - true mean| / std; MC error ~0.01
CF_BOUND = 0.20  # RMSE / std over the nodes a counterfactual changes


def _fit(make):
    truth = make()
    model = SCM(truth.graph, mechanisms="flow").fit(truth.sample(5000, seed=0), progress=False)
    return truth, model


def _pick(truth, node):
    """Default query node: the one with the most descendants."""
    if node is not None:
        return node
    g = truth.to_networkx()
    import networkx as nx

    return max(truth.nodes, key=lambda n: len(nx.descendants(g, n)))


def _check(truth, model, node):
    obs = truth.sample(20000, seed=11)
    std = obs.std()
    # Queries stay inside the data's support, where the data identify the answer: a do-value
    # at the 0.8 quantile, and counterfactual values taken from other factual rows.
    value = float(obs[node].quantile(0.8))
    true_mean = truth.interventional_mean({node: value})
    model_mean = model.do({node: value}).sample(20000, seed=1).mean()
    err = ((model_mean - true_mean).abs() / std).max()
    baseline = ((obs.mean() - true_mean).abs() / std).max()
    assert err < DO_BOUND, f"do({node}) mean error {err:.3f} std"
    assert err < 0.25 * baseline, f"error {err:.3f} not far below baseline {baseline:.3f}"

    factual = truth.sample(500, seed=12)
    shift = {node: np.random.default_rng(0).permutation(factual[node].to_numpy())}
    exact = truth.counterfactual(factual, shift)
    ours = model.counterfactual(factual, shift)
    changed = [c for c in truth.nodes if not np.array_equal(exact[c], factual[c])]
    rmse = float(np.sqrt((((ours - exact)[changed] / std[changed]) ** 2).mean().mean()))
    base = float(np.sqrt((((factual - exact)[changed] / std[changed]) ** 2).mean().mean()))
    assert rmse < CF_BOUND, f"counterfactual RMSE {rmse:.3f} std"
    assert rmse < 0.25 * base, f"RMSE {rmse:.3f} not far below baseline {base:.3f}"


@pytest.mark.parametrize("name", list(CASES))
def test_fitted_flow_scm_answers_queries(name):
    make, node = CASES[name]
    truth, model = _fit(make)
    _check(truth, model, node)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SLOW_CASES))
def test_fitted_flow_scm_slow_cases(name):
    make, node = SLOW_CASES[name]
    truth, model = _fit(make)
    _check(truth, model, _pick(truth, node))


def test_auto_keeps_linear_on_linear_data_and_flows_on_nonlinear():
    linear = zoo.chain()
    m = SCM(linear.graph, mechanisms="auto").fit(linear.sample(3000, seed=0), progress=False)
    assert {k: v.kind for k, v in m.mechanisms.items()} == dict.fromkeys(linear.nodes, "linear")
    bent = zoo.triangle()  # x2 = 2 tanh(x1) + noise and x3 heteroscedastic: not linear
    m = SCM(bent.graph, mechanisms="auto").fit(bent.sample(3000, seed=0), progress=False)
    assert m.mechanisms["x2"].kind == "flow" and m.mechanisms["x3"].kind == "flow"


def test_auto_chooses_each_nodes_conditioner_by_held_out_likelihood():
    """``"auto"`` trains a flow per conditioner of ``AUTO_CONDITIONERS`` for every node with
    parents and keeps, per node, one of them or a linear mechanism (the choice itself is
    tested on :func:`select_auto_mechanism` below); the random DAG's tanh mechanisms keep a
    flow somewhere. An SCM built with its own ``activation`` tries that conditioner only."""
    truth = zoo.random_dag(6, seed=4)
    df = truth.sample(2000, seed=1)
    m = SCM(truth.graph, mechanisms="auto", seed=0)
    m.fit(df, steps=600, seed=2, progress=False)
    kinds = {k: (v.kind, getattr(v, "activation", None)) for k, v in m.mechanisms.items()}
    assert {a for _, a in kinds.values()} <= {"relu", "elu", None}
    assert any(kind == "flow" for kind, _ in kinds.values())
    # hidden or activation given: the user's conditioner is the only flow tried
    fixed = SCM(truth.graph, mechanisms="auto", seed=0, activation="relu")
    assert not fixed.auto_conditioners
    fixed.fit(df, steps=300, seed=2, progress=False)
    assert {getattr(v, "activation", "relu") for v in fixed.mechanisms.values()} == {"relu"}


def test_select_auto_mechanism_keeps_the_better_flow_on_held_out_rows():
    """Between a flow fitted to the data and one that was not, the choice goes to the fitted
    one whichever is the node's own (sin(2 x1) is far from linear, so the flow stays); the
    rows that choose between the flows are ``choose_on`` when given."""
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=1200)
    x2 = np.sin(2 * x1) + 0.3 * rng.normal(size=1200)
    df = pd.DataFrame({"x1": x1, "x2": x2})
    graph = {"x1": [], "x2": ["x1"]}
    fitted = SCM(graph, "flow").fit(df, steps=800, seed=0, progress=False).mechanisms["x2"]
    data = to_tensors(df, {"x1": 1, "x2": 1})
    train = {k: v[:1000] for k, v in data.items()}
    val = {k: v[1000:] for k, v in data.items()}
    for own_is_fitted in (True, False):
        m = SCM(graph, "auto", seed=1)
        standardize_mechanisms(m, train)
        blank = m.mechanisms["x2"]
        own, rival = (fitted, blank) if own_is_fitted else (blank, fitted)
        m.mechanisms["x2"] = own
        select_auto_mechanism(m, "x2", train, val, rivals=[rival])
        assert m.mechanisms["x2"] is fitted
    # ``choose_on`` picks among the flows: on rows where x2 ignores x1 the blank flow (the
    # marginal) beats the fitted one (and, the curve being clear, the linear fit there too).
    shuffled = {"x1": val["x1"], "x2": val["x2"][torch.randperm(len(val["x2"]))]}
    for rows, fitted_wins in ((shuffled, False), (val, True)):
        m = SCM(graph, "auto", seed=1)
        standardize_mechanisms(m, train)
        blank = m.mechanisms["x2"]
        m.mechanisms["x2"] = fitted
        select_auto_mechanism(m, "x2", train, val, rivals=[blank], choose_on=rows)
        assert m.mechanisms["x2"] is (fitted if fitted_wins else blank)


def test_select_auto_mechanism_keeps_a_flow_the_linearity_check_calls_for():
    """x2 = tanh(x1 / 2) + noise is nearly linear: scored on held-out rows with |x1| < 1,
    where tanh(x1 / 2) is almost a line, the flow and the linear fit tie (checked: the flow's
    gain is below ``SHAPE_GAIN``, which a flow needs when the check sees a line). The check
    over all 4,000 rows finds the curvature, so the flow stays; on the same node with a
    truly linear mean, fitted and scored the same way, the tie goes to linear. (Measured
    gains 0.54 and 1.74 nats: the old rule, a flow kept above 1 nat, chose the other way
    both times.)"""
    rng = np.random.default_rng(5)
    graph = {"x1": [], "x2": ["x1"]}
    for bend, kind in ((lambda v: np.tanh(v / 2), "flow"), (lambda v: v / 2, "linear")):
        x1 = rng.normal(size=4000)
        df = pd.DataFrame({"x1": x1, "x2": bend(x1) + 0.5 * rng.normal(size=4000)})
        fitted = SCM(graph, "flow").fit(df, steps=600, seed=0, progress=False).mechanisms["x2"]
        data = to_tensors(df, {"x1": 1, "x2": 1})
        central = (data["x1"][:, 0].abs() < 1)[3000:]
        val = {k: v[3000:][central] for k, v in data.items()}
        m = SCM(graph, "auto", seed=1)
        standardize_mechanisms(m, data)
        m.mechanisms["x2"] = fitted
        with torch.no_grad():
            context = val["x1"]
            linear = scm.auto.linear_mle(LinearGaussian(1, 1), "x2", ["x1"], data)
            gain = (fitted(context).log_prob(val["x2"])
                    - linear(context).log_prob(val["x2"])).sum().item()
        assert -scm.auto.TIE_NATS < gain < scm.auto.SHAPE_GAIN, gain  # a tie on held-out rows
        select_auto_mechanism(m, "x2", data, val, refit=data)
        assert m.mechanisms["x2"].kind == kind


def _curved_node(rng, n, bend, noise):
    """``x2 = bend(x1) + noise * u`` on ``n`` rows: the graph, the rows as tensors, the last
    1,000 of them (held out), the flow fitted on all rows, and its per-row log-likelihood
    minus the least-squares line's on the held-out rows."""
    graph = {"x1": [], "x2": ["x1"]}
    x1 = rng.normal(size=n)
    df = pd.DataFrame({"x1": x1, "x2": bend(x1) + noise * rng.normal(size=n)})
    fitted = SCM(graph, "flow").fit(df, steps=600, seed=0, progress=False).mechanisms["x2"]
    data = to_tensors(df, {"x1": 1, "x2": 1})
    held_out = {k: v[n - 1000:] for k, v in data.items()}
    with torch.no_grad():
        linear = scm.auto.linear_mle(LinearGaussian(1, 1), "x2", ["x1"], data)
        diff = (fitted(held_out["x1"]).log_prob(held_out["x2"])
                - linear(held_out["x1"]).log_prob(held_out["x2"]))
    return graph, data, held_out, fitted, diff


def test_a_curved_node_keeps_its_flow_on_the_choosing_rows():
    """Where the linearity check finds the mean curved, flow-or-linear is decided on the rows
    that chose the flow (``choose_on``), not on the selection rows alone: 500 rows are noisy
    enough for a good flow to lose there by several nats (random20's x11, tuning seed 26: -4.3
    nats on the selection rows, +5.5 on both sets, and a linear fit whose interventional mean
    was off by 0.22 std). Here the selection rows are built adversarially, the 60 held-out
    rows where linear does best, so the flow loses on them by more than ``TIE_NATS``; on all
    held-out rows it wins, and it stays. Scored on the selection rows only, linear is kept."""
    graph, data, held_out, fitted, diff = _curved_node(
        np.random.default_rng(7), 3000, lambda v: np.tanh(1.5 * v), 0.4)
    worst = diff.argsort()[:60]
    sel = {k: v[worst] for k, v in held_out.items()}
    assert diff[worst].sum() < -scm.auto.TIE_NATS < diff.sum(), (diff[worst].sum(), diff.sum())
    for choose_on, kind in ((held_out, "flow"), (None, "linear")):
        m = SCM(graph, "auto", seed=1)
        standardize_mechanisms(m, data)
        m.mechanisms["x2"] = fitted
        select_auto_mechanism(m, "x2", data, sel, refit=data, choose_on=choose_on)
        assert m.mechanisms["x2"].kind == kind


def test_a_curved_node_keeps_a_flow_that_loses_within_chance(monkeypatch):
    """Where the linearity check finds the mean curved, a flow that loses to the linear fit on
    the choosing rows by more than ``TIE_NATS`` but within ``LOSS_Z`` standard errors of the
    summed per-row difference stays: the held-out rows do not show it worse, only noisy
    (random10 at 1,000 rows, seed 0: x5's flow lost by 4.6 nats at a standard error of 3.9 and
    linear's counterfactual error was 2.5x the flow's). The choosing rows here are the first
    seeded random 100 held-out rows on which the flow loses by more than ``TIE_NATS``; with
    ``LOSS_Z = 0`` (the previous rule) linear is kept on them. An untrained flow, far worse
    on every row, goes to linear. The node is the nearly linear tanh(x1 / 2) of
    ``test_select_auto_mechanism_keeps_a_flow_the_linearity_check_calls_for``, whose curve the
    check finds on 4,000 rows while 100 rows barely tell the flow from a line."""
    graph, data, held_out, fitted, diff = _curved_node(
        np.random.default_rng(5), 4000, lambda v: np.tanh(v / 2), 0.5)
    pick = np.random.default_rng(0)
    for _ in range(100):
        rows = torch.as_tensor(pick.choice(1000, size=100, replace=False))
        if diff[rows].sum() < -scm.auto.TIE_NATS:
            break
    loss, se = -diff[rows].sum().item(), 10.0 * diff[rows].std().item()
    assert scm.auto.TIE_NATS < loss < scm.auto.LOSS_Z * se, (loss, se)
    choose = {k: v[rows] for k, v in held_out.items()}

    def chosen(flow) -> str:
        m = SCM(graph, "auto", seed=1)
        standardize_mechanisms(m, data)
        m.mechanisms["x2"] = flow
        select_auto_mechanism(m, "x2", data, choose, refit=data, choose_on=choose)
        return m.mechanisms["x2"].kind

    assert chosen(fitted) == "flow"
    untrained = SCM(graph, "flow", seed=3)
    standardize_mechanisms(untrained, data)
    assert chosen(untrained.mechanisms["x2"]) == "linear"
    monkeypatch.setattr(scm.auto, "LOSS_Z", 0.0)
    assert chosen(fitted) == "linear"


def test_auto_linear_mechanism_is_the_least_squares_fit_on_all_rows():
    """Held-out rows serve the choice only: the linear mechanism that ``"auto"`` keeps is the
    least-squares fit on all rows (checked against numpy's, in data units, to float32 rounding)."""
    truth = zoo.collider()
    df = truth.sample(2000, seed=3)
    m = SCM(truth.graph, mechanisms="auto").fit(df, progress=False)
    mech = m.mechanisms["x3"]
    assert mech.kind == "linear"
    design = np.column_stack([df["x1"], df["x2"], np.ones(len(df))])
    coef, *_ = np.linalg.lstsq(design, df["x3"].to_numpy(), rcond=None)
    # data units: x3 = loc + scale * (w . (c - c_loc) / c_scale + b) + noise
    w = (mech.weight[0] * mech.scale / mech.context_scale).detach().numpy()
    b = (mech.loc + mech.scale * (mech.bias - (mech.weight[0] * mech.context_loc
                                               / mech.context_scale).sum())).item()
    np.testing.assert_allclose(w, coef[:2], rtol=1e-4)
    np.testing.assert_allclose(b, coef[2], atol=1e-4)
    resid = df["x3"].to_numpy() - design @ coef
    noise = (mech.log_scale.exp() * mech.scale).item()
    np.testing.assert_allclose(noise, resid.std(ddof=1), rtol=1e-4)


def test_fit_returns_the_final_epochs_weights_not_the_best_epochs(monkeypatch):
    """The fitted model is the last epoch's (averaged) weights: its held-out NLL, recomputed on
    the same seeded split, is the last history entry's, although an earlier epoch scored better
    (at lr 0.05 the held-out NLL wanders, so the two rules give different models). The
    closing pass over every row is off here: it trains on the held-out rows. The first of six
    seeds whose run has such an earlier epoch is checked (float rounding decides which: with
    the stacked conditioner's layout of December 2026, seeds 1 and 4)."""
    monkeypatch.setattr(scm.fit, "REFINE_FRACTION", 0.0)
    truth = zoo.triangle()
    df = truth.sample(1000, seed=0)
    for seed in range(6):
        m = SCM(truth.graph, mechanisms="flow")
        m.fit(df, epochs=40, patience=1000, lr=0.05, seed=seed, progress=False)
        val_nll = [h["val_nll"] for h in m.history]
        if min(val_nll) < val_nll[-1] - 1e-3:  # an earlier epoch was better on held-out rows
            break
    else:
        pytest.fail("no seed had an earlier epoch better on held-out rows: nothing to check")
    split = split_rows(to_tensors(df, m.dims), m, torch.Generator().manual_seed(seed), 0.1)
    refit = sum(node_nll(m, split["val"]).values())
    assert refit == pytest.approx(val_nll[-1], abs=1e-4)
