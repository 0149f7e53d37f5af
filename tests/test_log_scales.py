"""Log scales (scm/log_nodes.py): positive nodes modelled as exp of their mechanism's output,
parents read as logs, declared or chosen by ``"auto"``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyro
import pytest
import torch
from pyro import poutine

from scm import SCM, zoo
from scm.auto import categorical_for_coded_columns
from scm.fit import standardize_mechanisms
from scm.frame import to_tensors
from scm.log_nodes import choose_log_scales, log_scales
from scm.matrix import matrix_columns, read_columns, training_matrix
from scm.matrix import value_columns as member_columns
from scm.mechanisms import LinearGaussian
from scm.stacked import StackedFlows

# A log-linear pair: log x = 0.2 + 0.5 u1, log y = 1 + 0.8 log x + 0.3 u2.
A, B, S = 0.8, 1.0, 0.3


def _log_linear() -> SCM:
    mechanisms = {"x": LinearGaussian(1, 0, bias=[0.2], scale=[0.5]),
                  "y": LinearGaussian(1, 1, weight=[[A]], bias=[B], scale=[S])}
    return SCM({"x": [], "y": ["x"]}, mechanisms, log_nodes=["x", "y"])


def _multiplicative(n: int, seed: int, xs: np.ndarray | None = None) -> pd.DataFrame:
    """x -> y -> v, x -> w, all effects multiplicative (linear-Gaussian in the logs)."""
    u = np.random.default_rng(seed).normal(size=(n, 4))
    x = np.exp(u[:, 0]) if xs is None else xs
    y = 2 * x**0.8 * np.exp(0.3 * u[:, 1])
    w = 3 * x**0.5 * y**-0.7 * np.exp(0.2 * u[:, 2])
    v = np.sqrt(y) * np.exp(0.4 * u[:, 3])
    return pd.DataFrame({"x": x, "y": y, "w": w, "v": v})


MULTIPLICATIVE = {"x": [], "y": ["x"], "w": ["x", "y"], "v": ["y"]}


def _choices(graph: dict, df: pd.DataFrame) -> dict:
    """What ``fit`` would choose (choose_log_scales alone, no training)."""
    scm = SCM(graph, "auto")
    x = to_tensors(df, scm.dims)
    categorical_for_coded_columns(scm, x)
    choose_log_scales(scm, x)
    return log_scales(scm)


def test_a_hand_set_log_linear_scm_has_the_log_normal_density_and_exact_counterfactuals() -> None:
    """Density: log p(x, y) = log N(log x) - log x + log N(log y | log x) - log y, to float
    error. Counterfactual of y under do(x = x'): y' = y (x'/x)^A exactly (the noise cancels),
    to 1e-5 relative (float32); x is set exactly."""
    scm = _log_linear()
    df = scm.sample(500, seed=0)
    assert (df > 0).all().all()
    lx, ly = np.log(df.x.to_numpy()), np.log(df.y.to_numpy())
    expected = (-0.5 * ((lx - 0.2) / 0.5) ** 2 - math.log(0.5) - lx
                - 0.5 * ((ly - B - A * lx) / S) ** 2 - math.log(S) - ly - math.log(2 * math.pi))
    np.testing.assert_allclose(scm.log_prob(df), expected, rtol=1e-5, atol=1e-4)
    new_x = np.exp(np.random.default_rng(1).normal(size=500))
    cf = scm.counterfactual(df, {"x": new_x})
    np.testing.assert_allclose(cf.x, new_x.astype(np.float32), rtol=1e-7)
    np.testing.assert_allclose(cf.y, df.y * (new_x / df.x) ** A, rtol=1e-5)


def test_pyro_do_on_the_model_matches_scm_do_on_the_log_scale() -> None:
    """The Pyro program's site values are the data's (positive) values; poutine.do on
    scm.model gives the samples of scm.do for the same seed."""
    scm = _log_linear()
    pyro.set_rng_seed(3)
    with torch.no_grad():
        out = poutine.do(scm.model, data={"x": torch.tensor(2.0)})(1000)
    ours = scm.do({"x": 2.0}).sample(1000, seed=3)
    np.testing.assert_allclose(out["y"].squeeze(-1).numpy(), ours.y.to_numpy(), rtol=1e-6)
    # E[y | do(x=2)] = exp(B + A log 2 + S^2 / 2); 1000 draws: sd of the mean ~ .3 / sqrt(1000)
    # in logs, so 5% is over 5 standard errors.
    assert abs(ours.y.mean() / math.exp(B + A * math.log(2) + S**2 / 2) - 1) < 0.05


def test_auto_logs_a_multiplicative_dag_and_answers_counterfactuals_far_better() -> None:
    """On a DAG whose effects are all multiplicative, every node goes to the log scale reading
    its parents' logs, every mechanism is then linear, and counterfactual RMSE (in stds) of
    every descendant of x is below .08 (measured y .024, w .059, v .014: w's error is the
    least-squares error of two collinear log parents, corr .94); a raw-scale flow fit of the
    same data is above .1 on each (measured .15 / .22 / .12, fit seeds 0 and 1 alike)."""
    df = _multiplicative(3000, 0)
    fact = _multiplicative(500, 1)
    new_x = np.exp(np.random.default_rng(2).normal(size=500))
    truth = _multiplicative(500, 1, xs=new_x)
    model = SCM(MULTIPLICATIVE, "auto").fit(df, progress=False, seed=0)
    assert log_scales(model) == {"x": {"value": True, "parents": []},
                                 "y": {"value": True, "parents": ["x"]},
                                 "w": {"value": True, "parents": ["x", "y"]},
                                 "v": {"value": True, "parents": ["y"]}}
    assert {m.kind for m in model.mechanisms.values()} == {"linear"}
    cf = model.counterfactual(fact, {"x": new_x})
    rmse = {k: float(np.sqrt(np.mean((cf[k] - truth[k]) ** 2)) / df[k].std()) for k in "ywv"}
    assert max(rmse.values()) < 0.08, rmse
    raw = SCM(MULTIPLICATIVE, "flow").fit(df, progress=False, seed=0)
    assert raw.log_nodes == []
    cf_raw = raw.counterfactual(fact, {"x": new_x})
    raw_rmse = {k: float(np.sqrt(np.mean((cf_raw[k] - truth[k]) ** 2)) / df[k].std())
                for k in "ywv"}
    assert min(raw_rmse.values()) > 0.1, raw_rmse


def test_a_child_reads_a_logged_parent_on_the_scale_it_depends_on() -> None:
    """y = x^0.8 e^{0.3u} is log-linear, z = y/2 + e^{0.5u'} additive in y itself: y goes to
    the log scale reading log x, while z reads y, not log y (one scale per variable made z's
    conditioner extrapolate exp(log y): counterfactual RMSE .6 std instead of .04)."""
    rng = np.random.default_rng(0)
    u = rng.normal(size=(3000, 3))
    x = np.exp(u[:, 0])
    y = x**0.8 * np.exp(0.3 * u[:, 1])
    df = pd.DataFrame({"x": x, "y": y, "z": 0.5 * y + np.exp(0.5 * u[:, 2])})
    scales = _choices({"x": [], "y": ["x"], "z": ["y"]}, df)
    assert scales["y"] == {"value": True, "parents": ["x"]}
    assert scales.get("z", {}).get("parents", []) == []


@pytest.mark.parametrize("case", ["shifted chain", "exponential root", "zoo"])
def test_auto_leaves_additive_positive_data_on_its_own_scale(case: str) -> None:
    """Positive data with additive effects keep the raw scale where it matters: the chain
    shifted by +10 logs nothing; an exponential root's linear child (y = 2x + 3 + N(0, .25))
    does not read log x; the zoo's SCMs log nothing (their columns take negative values)."""
    if case == "shifted chain":
        truth = zoo.chain()
        assert _choices(truth.graph, truth.sample(3000, seed=0) + 10.0) == {}
    elif case == "exponential root":
        rng = np.random.default_rng(0)
        x = rng.exponential(size=3000)
        df = pd.DataFrame({"x": x, "y": 2 * x + 3 + 0.5 * rng.normal(size=3000)})
        assert _choices({"x": [], "y": ["x"]}, df).get("y", {}).get("parents", []) == []
    else:
        for truth in (zoo.chain(), zoo.collider(), zoo.triangle(), zoo.random_dag(10, seed=0)):
            assert _choices(truth.graph, truth.sample(3000, seed=0)) == {}


def test_the_stack_scores_logged_values_and_parents_as_the_mechanisms_do() -> None:
    """The training stack reads a log-scale node's log column and a logged parent's log
    column, adding the Jacobian: its per-node log-densities equal the mechanisms' own (which
    apply exp and log themselves) on the raw rows."""
    scm = SCM(MULTIPLICATIVE, "flow", seed=0)
    scm.fixed_log_scales = {"y": {"value": True, "parents": ["x"]},
                            "w": {"value": False, "parents": ["y"]},
                            "v": {"value": True, "parents": []}}
    scm.restart_auto_nodes()
    x = to_tensors(_multiplicative(400, 0), scm.dims)
    standardize_mechanisms(scm, x)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in scm.parameters():
            p.add_(0.3 * torch.randn_like(p))
    nodes = list(scm.nodes)
    stack = StackedFlows(nodes, scm.mechanisms, read_columns(scm), matrix_columns(scm),
                         value_columns=member_columns(scm))
    reference = []
    for k in nodes:
        parents = scm.parents[k]
        context = torch.cat([x[p] for p in parents], -1) if parents else None
        reference.append(scm.mechanisms[k](context).log_prob(x[k]))
    torch.testing.assert_close(stack.log_prob(training_matrix(scm, x)),
                               torch.stack(reference, -1), rtol=1e-5, atol=1e-4)


def test_log_scales_survive_save_and_load(tmp_path) -> None:
    """The settings are part of the saved spec: the loaded SCM gives the same samples and
    counterfactuals bit for bit, and a refit keeps them."""
    df = _multiplicative(1500, 0)
    model = SCM(MULTIPLICATIVE, "auto").fit(df, progress=False, seed=0, steps=200)
    model.save(str(tmp_path / "m"))
    loaded = SCM.load(str(tmp_path / "m"))
    assert log_scales(loaded) == log_scales(model) != {}
    pd.testing.assert_frame_equal(loaded.sample(200, seed=1), model.sample(200, seed=1))
    fact = df.iloc[:50]
    pd.testing.assert_frame_equal(loaded.counterfactual(fact, {"x": 2.0}),
                                  model.counterfactual(fact, {"x": 2.0}))
    loaded.fit(df, progress=False, seed=0, steps=100)
    assert log_scales(loaded) == log_scales(model)


def test_log_nodes_none_keeps_every_node_on_its_own_scale() -> None:
    """``log_nodes=None``: ``"auto"`` chooses no log scale (the same data log every node by
    default), and an intervention at 0 on the positive root is then answered."""
    df = _multiplicative(1500, 0)
    model = SCM(MULTIPLICATIVE, "auto", log_nodes=None).fit(df, progress=False, steps=100)
    assert log_scales(model) == {}
    assert np.isfinite(model.do({"x": 0.0}).sample(100, seed=0).to_numpy()).all()
    with pytest.raises(ValueError, match="fitted with log_nodes=None, `cauflow fit "
                                         "--no-log-scales`, keeps every node"):
        SCM(MULTIPLICATIVE, "auto").fit(df, progress=False, steps=100).do({"x": 0.0})


def test_a_refit_on_other_data_makes_its_own_log_choices() -> None:
    """An ``"auto"`` SCM fitted on multiplicative data, then on data with negative values:
    the second fit logs nothing (and does not fail on the logs of the first)."""
    model = SCM(MULTIPLICATIVE, "auto").fit(_multiplicative(1500, 0), progress=False,
                                            steps=100)
    assert model.log_nodes
    shifted = np.log(_multiplicative(1500, 1))
    model.fit(shifted, progress=False, steps=100)
    assert model.log_nodes == [] and log_scales(model) == {}


def test_bad_values_for_log_scales_are_named() -> None:
    """A value that is not positive for a node on a log scale is refused by name: in an
    intervention, factual rows, rows to score and declared training data; and the declaration
    itself is checked."""
    scm = _log_linear()
    df = scm.sample(20, seed=0)
    with pytest.raises(ValueError, match="intervention: node 'x' is on a log scale"):
        scm.do({"x": -1.0})
    with pytest.raises(ValueError, match="intervention: node 'x' is on a log scale"):
        scm.counterfactual(df, {"x": np.r_[np.ones(19), 0.0]})
    bad = df.assign(y=-df.y)
    with pytest.raises(ValueError, match="factual data: node 'y' is on a log scale"):
        scm.counterfactual(bad, {"x": 1.0})
    with pytest.raises(ValueError, match="data: node 'y' is on a log scale"):
        scm.log_prob(bad)
    with pytest.raises(ValueError, match="node 'y' is on a log scale"):
        SCM({"x": [], "y": ["x"]}, "flow", log_nodes=["y"]).fit(bad, progress=False, steps=10)
    with pytest.raises(ValueError, match="unknown nodes"):
        SCM({"x": []}, "flow", log_nodes=["q"])
    with pytest.raises(TypeError, match="list of node names"):
        SCM({"x": []}, "flow", log_nodes="x")
    with pytest.raises(ValueError, match="categorical"):
        SCM({"x": []}, "categorical", log_nodes=["x"])
    with pytest.raises(ValueError, match="inference='mle' only"):
        SCM({"x": []}, "bayes-linear", log_nodes=["x"]).fit(df[["x"]], inference="svi",
                                                            steps=5)


def test_the_loop_fit_chooses_and_saves_the_same_log_scales(tmp_path) -> None:
    """``models.scm_fit.fit_scm`` (the resumable loop fit) makes the same choices as
    ``SCM.fit``, trains in them (counterfactual RMSE of y below .08 std, as the fit above) and
    its saved run loads with them."""
    from models.scm_fit import fit_scm

    df = _multiplicative(3000, 0)
    model = SCM(MULTIPLICATIVE, "auto")
    fit_scm(model, df, out=tmp_path / "run", steps=300, progress=False)
    expected = _choices(MULTIPLICATIVE, df)
    assert log_scales(model) == expected != {}
    loaded = SCM.load(str(tmp_path / "run"))
    assert log_scales(loaded) == expected
    fact = _multiplicative(500, 1)
    new_x = np.exp(np.random.default_rng(2).normal(size=500))
    truth = _multiplicative(500, 1, xs=new_x)
    cf = loaded.counterfactual(fact, {"x": new_x})
    assert float(np.sqrt(np.mean((cf.y - truth.y) ** 2)) / df.y.std()) < 0.08


def test_the_cli_fits_declared_log_nodes_and_names_bad_values(tmp_path) -> None:
    """``cauflow fit --log y`` saves an SCM with y on the log scale (its children reading log
    y), prints the scales, and ``cauflow do --set y=-1`` is one error line."""
    import json

    from typer.testing import CliRunner

    from cli import app

    runner = CliRunner()
    data, graph, run = tmp_path / "d.csv", tmp_path / "g.json", tmp_path / "run"
    _multiplicative(400, 0).to_csv(data, index=False)
    graph.write_text(json.dumps(MULTIPLICATIVE))
    r = runner.invoke(app, ["fit", str(data), "--graph", str(graph), "--out", str(run),
                            "--mechanisms", "linear", "--log", "y"])
    assert r.exit_code == 0, r.output
    assert "log scale: y: value" in r.output and "log scale: v: parent y" in r.output
    loaded = SCM.load(str(run))
    assert loaded.log_nodes == ["y"]
    assert log_scales(loaded)["w"] == {"value": False, "parents": ["y"]}
    r = runner.invoke(app, ["do", str(run), "--set", "y=-1"])
    assert r.exit_code != 0
    (line,) = r.output.strip().splitlines()
    assert line.startswith("error: intervention: node 'y' is on a log scale (fitted as "
                           "positive); got [-1.0]")
    r = runner.invoke(app, ["fit", str(data), "--graph", str(graph), "--out",
                            str(tmp_path / "raw"), "--mechanisms", "auto", "--no-log-scales"])
    assert r.exit_code == 0 and "log scale" not in r.output, r.output
    assert SCM.load(str(tmp_path / "raw")).log_nodes == []


def test_a_parent_read_as_its_log_goes_to_the_log_scale_itself() -> None:
    """x uniform on (.02, 2), y = log x + N(0, .01), w an independent parent of y: y reads
    log x, so x is on the log scale too (raw, its flow drew 245 of 20,000 values <= 0 and y
    was NaN there); every draw is finite."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.02, 2.0, 3000)
    df = pd.DataFrame({"x": x, "w": rng.normal(size=3000),
                       "y": np.log(x) + 0.1 * rng.normal(size=3000)})
    graph = {"x": [], "w": [], "y": ["x", "w"]}
    scales = _choices(graph, df)
    assert scales["y"]["parents"] == ["x"] and scales["x"]["value"]
    model = SCM(graph, "auto").fit(df, progress=False, steps=300)
    draws = model.sample(20000, seed=0)
    assert (draws.x > 0).all() and np.isfinite(draws.to_numpy()).all()


def test_a_node_with_many_multiplicative_parents_reads_them_all_as_logs() -> None:
    """Seven log-normal parents multiply into y (more switches than the exhaustive search
    takes): y and every parent read are logged, as declaring them all would."""
    rng = np.random.default_rng(0)
    parents = np.exp(0.5 * rng.normal(size=(2000, 7)))
    y = np.exp(np.log(parents) @ np.linspace(0.2, 0.8, 7) + 0.2 * rng.normal(size=2000))
    df = pd.DataFrame({**{f"p{i}": parents[:, i] for i in range(7)}, "y": y})
    graph = {**{f"p{i}": [] for i in range(7)}, "y": [f"p{i}" for i in range(7)]}
    assert _choices(graph, df)["y"] == {"value": True, "parents": [f"p{i}" for i in range(7)]}


def test_copies_of_rows_do_not_change_the_choice() -> None:
    """100 log-linear rows, and the same rows twenty times: the same log scales (the linearity
    check's statistic grew with the copies against a penalty growing with log n, and the
    copies sent y back to the raw scale)."""
    rng = np.random.default_rng(0)
    u = rng.normal(size=(100, 2))
    x = np.exp(u[:, 0])
    df = pd.DataFrame({"x": x, "y": x**0.8 * np.exp(0.3 * u[:, 1])})
    graph = {"x": [], "y": ["x"]}
    copies = pd.concat([df] * 20, ignore_index=True)
    once = SCM(graph, "auto").fit(df, progress=False, steps=100)
    twenty = SCM(graph, "auto").fit(copies, progress=False, steps=100)
    assert log_scales(twenty) == log_scales(once) == {"x": {"value": True, "parents": []},
                                                      "y": {"value": True, "parents": ["x"]}}


def test_a_soft_intervention_that_leaves_the_positive_range_is_named() -> None:
    """A callable that makes a log-scale node <= 0 is refused once its output is known (in
    sampling and in counterfactuals), instead of NaN in its children; a tensor with a gradient
    is a valid hard value."""
    scm = _log_linear()
    df = scm.sample(50, seed=0)
    with pytest.raises(ValueError, match="node 'x' is on a log scale .* made it <= 0 on"):
        scm.do({"x": lambda v: v - 10.0}).sample(100, seed=0)
    with pytest.raises(ValueError, match="node 'x' is on a log scale .* made it <= 0 on"):
        scm.counterfactual(df, {"x": lambda v: -v})
    assert np.isfinite(scm.do({"x": lambda v: 2 * v}).sample(100, seed=0).to_numpy()).all()
    value = torch.tensor(2.0, requires_grad=True)
    assert (scm.do({"x": value}).sample(10, seed=0).x == 2.0).all()


def test_a_run_resumed_with_other_log_scales_is_refused(tmp_path) -> None:
    """A loop-fit run started with x and y on the log scale, resumed by an SCM without them:
    one ValueError (the weights of log-scale mechanisms mean nothing on the raw scale; an
    additive SCM resumed silently and sampled the positive x below 0)."""
    from models.scm_fit import fit_scm

    df = _multiplicative(1000, 0)[["x", "y"]]
    graph = {"x": [], "y": ["x"]}
    fit_scm(SCM(graph, "additive", log_nodes=["x", "y"]), df, out=tmp_path / "run",
            max_steps=5, progress=False)
    with pytest.raises(ValueError, match="holds a run of another SCM"):
        fit_scm(SCM(graph, "additive"), df, out=tmp_path / "run", resume=True, progress=False)

