"""The CLI: exit codes and printed answers, through typer's CliRunner."""

import json

import pandas as pd
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "zoo", "fit", "do"):
        assert command in result.output


def test_zoo_fit_do_round_trip(tmp_path):
    data, graph, run = tmp_path / "d.csv", tmp_path / "g.json", tmp_path / "run"
    r = runner.invoke(
        app, ["zoo", "chain", "--rows", "400", "--out", str(data), "--graph-out", str(graph)]
    )
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(data)) == 400 and json.loads(graph.read_text())["x2"] == ["x1"]
    r = runner.invoke(
        app, ["fit", str(data), "--graph", str(graph), "--out", str(run), "--mechanisms", "linear"]
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["do", str(run), "--set", "x1=1.0", "--target", "x2"])
    assert r.exit_code == 0, r.output
    # Truth: E[x2 | do(x1=1)] = 1.5; a linear fit on 400 rows is within ~0.15.
    value = float(r.output.strip().split("=")[-1])
    assert abs(value - 1.5) < 0.15


def test_fit_reports_bad_data_in_one_line(tmp_path):
    data, graph = tmp_path / "d.csv", tmp_path / "g.json"
    pd.DataFrame({"x1": [1.0, None, 2.0], "x2": [0.0, 1.0, 2.0]}).to_csv(data, index=False)
    graph.write_text(json.dumps({"x1": [], "x2": ["x1"]}))
    r = runner.invoke(app, ["fit", str(data), "--graph", str(graph), "--out", str(tmp_path / "r")])
    assert r.exit_code == 2
    assert "NaN" in r.output and "Traceback" not in r.output


def test_bad_set_syntax(tmp_path):
    r = runner.invoke(app, ["do", str(tmp_path), "--set", "x1:3"])
    assert r.exit_code == 2 and "node=number" in r.output


def test_demo_runs_small(tmp_path):
    r = runner.invoke(
        app,
        ["demo", "--out", str(tmp_path), "--rows", "400", "--steps", "150", "--vae-epochs", "0"],
    )
    assert r.exit_code == 0, r.output
    assert "do(light" in r.output and (tmp_path / "pendulum_marginals.png").stat().st_size > 1000
