"""The image-model commands end to end on a tiny run (32 px, a few steps)."""

import json

import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


TRAIN = ["train", "caufvae", "--image-size", "32", "--n-train", "64", "--max-steps", "4"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, cache):
    out = tmp_path_factory.mktemp("images") / "run"
    r = runner.invoke(app, [*TRAIN, "--out", str(out), "--epochs", "1"])
    assert r.exit_code == 0, r.output
    return out


def test_train_refuses_to_overwrite(run):
    r = runner.invoke(app, [*TRAIN, "--out", str(run)])
    assert r.exit_code == 2 and "error:" in r.output


def test_intervene_writes_a_grid(run, tmp_path):
    png = tmp_path / "grid.png"
    r = runner.invoke(
        app, ["intervene", str(run), "--set", "light=1.2", "--n", "3", "--out", str(png)]
    )
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_intervene_unknown_factor(run, tmp_path):
    r = runner.invoke(
        app, ["intervene", str(run), "--set", "colour=1", "--out", str(tmp_path / "g.png")]
    )
    assert r.exit_code == 2 and "colour" in r.output


@pytest.mark.parametrize("n", ["0", "-1", "100000"])
def test_intervene_refuses_a_row_count_outside_the_test_set(run, tmp_path, n):
    """``--n 100000`` rendered and decoded that many images until the process was killed
    (24 GB); 0 wrote an empty grid, -1 failed in numpy."""
    r = runner.invoke(app, ["intervene", str(run), "--set", "light=1.2", "--n", n,
                            "--out", str(tmp_path / "g.png")])
    assert r.exit_code == 2 and "n must be an int between 1 and the" in r.output


def test_intervene_warns_about_a_value_outside_the_factors_range(run, tmp_path):
    """A factor value the data never show is decoded by extrapolation: a warning names the
    factor and the range (it was silent)."""
    from models.intervene import intervene_grid

    with pytest.warns(UserWarning, match=r"factor 'light' = 3 lies outside the data's range"):
        intervene_grid(run, {"light": 3.0}, n=2, out=tmp_path / "g.png")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        intervene_grid(run, {"light": 1.0}, n=2, out=tmp_path / "g.png")
        with pytest.raises(ValueError, match="NaN"):  # the error alone, no range warning first
            intervene_grid(run, {"light": float("nan")}, n=2, out=tmp_path / "g.png")


@pytest.mark.parametrize("command", ["intervene", "generate"])
def test_grid_commands_refuse_an_output_that_is_not_png(run, tmp_path, command):
    """The grids are PNG bytes: ``--out g.jpg`` wrote PNG under a JPEG name; now one error
    line before any work."""
    extra = ["--set", "light=1.0"] if command == "intervene" else []
    r = runner.invoke(app, [command, str(run), *extra, "--out", str(tmp_path / "g.jpg")])
    assert r.exit_code == 2 and not (tmp_path / "g.jpg").exists()
    assert r.output.strip().splitlines() == [
        f"error: --out {tmp_path / 'g.jpg'}: the grid is written as PNG; give a file name "
        "ending in .png"]


def test_evaluate_writes_metrics(run):
    r = runner.invoke(app, ["evaluate", str(run), "--n-test", "40", "--reader-steps", "3"])
    assert r.exit_code == 0, r.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["run"]["n_test"] == 40 and "summary" in metrics


def test_discover_from_run_scores_against_the_true_graph(run):
    r = runner.invoke(app, ["discover", "--from-run", str(run), "--method", "pc"])
    assert r.exit_code == 0, r.output
    assert "shd" in r.output.lower()


@pytest.mark.parametrize(("option", "message"), [
    (["--nproc", "0"], "--nproc must be at least 1; got 0"),  # ran one process silently
    (["--image-size", "40"], "image_size must be a positive multiple of 16, got 40"),
])
def test_train_options_are_checked_before_any_work(tmp_path, option, message):
    """Refused in one line before anything is rendered (--image-size 40 rendered and cached a
    set first)."""
    r = runner.invoke(app, ["train", "caufvae", "--out", str(tmp_path / "r"), *option])
    assert r.exit_code == 2 and r.output.strip() == f"error: {message}", r.output
    assert not (tmp_path / "r").exists()
