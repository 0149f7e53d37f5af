"""`cauflow counterfactual` and `cauflow fit --mechanisms`, through typer's CliRunner."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import MECHANISMS, app
from scm import SCM
from scm.mechanisms import REGISTRY, make_mechanism
from scm.zoo import chain

runner = CliRunner()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A linear SCM fitted by `cauflow fit` on 300 rows of the zoo chain; (run, factual CSV)."""
    root = tmp_path_factory.mktemp("cf")
    data, graph, run = root / "d.csv", root / "g.json", root / "run"
    truth = chain()
    truth.sample(300, seed=0).to_csv(data, index=False)
    graph.write_text(json.dumps(truth.graph))
    r = runner.invoke(
        app, ["fit", str(data), "--graph", str(graph), "--out", str(run), "--mechanisms", "linear"]
    )
    assert r.exit_code == 0, r.output
    return run, data


def _one_error_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


def test_cli_counterfactual_equals_python(fitted, tmp_path):
    run, data = fitted
    out = tmp_path / "cf.csv"
    r = runner.invoke(app, ["counterfactual", str(run), str(data), "--set", "x1=0.5",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "wrote 300 counterfactual rows" in r.output
    cli_rows = pd.read_csv(out)
    factual = pd.read_csv(data)
    expected = SCM.load(run).counterfactual(factual, {"x1": 0.5})
    # The CSV holds float64 reprs, which read back exactly; 1e-6 allows for nothing but that.
    pd.testing.assert_frame_equal(cli_rows, expected, check_exact=False, atol=1e-6, rtol=0)
    assert (cli_rows["x1"] == 0.5).all()
    # The intervention moved x2 and x3 (a test that could not fail would compare equal frames).
    assert not np.allclose(cli_rows["x2"], factual["x2"])


def test_cli_counterfactual_per_row_column(fitted, tmp_path):
    run, data = fitted
    factual = pd.read_csv(data)
    dose = factual["x1"] + 1.0
    dose[::2] = np.nan  # an empty cell: that row's x1 is not intervened on
    with_dose = tmp_path / "with_dose.csv"
    factual.assign(dose=dose).to_csv(with_dose, index=False)
    out = tmp_path / "cf.csv"
    r = runner.invoke(app, ["counterfactual", str(run), str(with_dose), "--set", "x1=@dose",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    cli_rows = pd.read_csv(out)
    assert list(cli_rows.columns) == ["x1", "x2", "x3"]  # the column only --set named is dropped
    expected = SCM.load(run).counterfactual(factual, {"x1": dose.to_numpy()})
    pd.testing.assert_frame_equal(cli_rows, expected, check_exact=False, atol=1e-6, rtol=0)
    assert np.allclose(cli_rows["x1"][1::2], dose[1::2], atol=1e-6)
    assert np.allclose(cli_rows["x1"][::2], factual["x1"][::2], atol=1e-6)  # float32 math


def test_cli_counterfactual_prints_rows_and_means(fitted):
    run, data = fitted
    r = runner.invoke(app, ["counterfactual", str(run), str(data), "--set", "x1=0.5",
                            "--head", "3"])
    assert r.exit_code == 0, r.output
    assert "first 3 of 300 counterfactual rows" in r.output
    means = {line.split()[0]: line.split()[1:] for line in r.output.splitlines()[-3:]}
    assert means["x1"][1] == "0.5000"


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["x9=1"], "unknown node 'x9'"),
        (["x1:3"], "node=number or node=@column"),
        (["x1=abc"], "node=number or node=@column"),
        (["=3"], "node=number or node=@column"),
        (["x1=@"], "node=number or node=@column"),
        (["x1=inf"], "finite number"),
        (["x1=@nope"], "no column 'nope'"),
    ],
)
def test_cli_counterfactual_bad_set_is_one_line(fitted, sets, message):
    run, data = fitted
    args = ["counterfactual", str(run), str(data)]
    for item in sets:
        args += ["--set", item]
    r = runner.invoke(app, args)
    assert r.exit_code != 0
    assert message in _one_error_line(r.output)


def test_cli_counterfactual_bad_data_is_one_line(fitted, tmp_path):
    run, data = fitted
    factual = pd.read_csv(data)
    factual.loc[3, "x2"] = np.nan
    nan_csv = tmp_path / "nan.csv"
    factual.to_csv(nan_csv, index=False)
    r = runner.invoke(app, ["counterfactual", str(run), str(nan_csv), "--set", "x1=1"])
    assert r.exit_code != 0
    assert "'x2' of factual data has 1 NaN" in _one_error_line(r.output)
    r = runner.invoke(app, ["counterfactual", str(run), str(tmp_path / "no.csv"), "--set", "x1=1"])
    assert r.exit_code != 0
    assert "cannot read" in _one_error_line(r.output)


def test_cli_counterfactual_categorical_to_recompute_is_one_line(tmp_path):
    # t is categorical (not invertible): setting its parent x needs t's noise.
    model = SCM(
        {"x": [], "t": ["x"]},
        mechanisms={"x": "linear", "t": make_mechanism("categorical", 1, 1, categories=2)},
    )
    model.save(str(tmp_path / "run"))
    pd.DataFrame({"x": [0.1, -0.3, 1.2], "t": [0, 1, 1]}).to_csv(tmp_path / "f.csv", index=False)
    args = ["counterfactual", str(tmp_path / "run"), str(tmp_path / "f.csv")]
    r = runner.invoke(app, [*args, "--set", "x=1"])
    assert r.exit_code != 0
    assert "'t'" in _one_error_line(r.output) and "not invertible" in r.output
    r = runner.invoke(app, [*args, "--set", "t=1"])  # t has no children: nothing to recompute
    assert r.exit_code == 0, r.output


def _plain(output: str) -> str:
    """Help text without box drawing and line wrapping (click breaks lines at hyphens too:
    "bayes-" / "linear")."""
    return " ".join(re.sub(r"-\n\s+", "-", re.sub("[│╭╮╰╯─]", " ", output)).split())


def test_fit_help_and_error_list_every_mechanism(tmp_path):
    assert set(MECHANISMS) == set(REGISTRY) | {"auto"}
    r = runner.invoke(app, ["fit", "--help"])
    assert r.exit_code == 0
    assert " | ".join(MECHANISMS) in _plain(r.output)  # "auto" among them
    r = runner.invoke(app, ["fit", str(tmp_path / "d.csv"), "--graph", str(tmp_path / "g.json"),
                            "--out", str(tmp_path / "run"), "--mechanisms", "bogus"])
    assert r.exit_code == 2
    line = _one_error_line(r.output)
    assert "'bogus'" in line and all(m in line for m in MECHANISMS)
