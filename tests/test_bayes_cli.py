"""``cauflow fit --inference nuts`` and ``cauflow do`` on the run it writes."""

import json

import pytest
from typer.testing import CliRunner

from cli import app
from scm import SCM, zoo
from scm.bayes._arviz import az
from scm.bayes.run import effect_table


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bayes_cli")
    truth = zoo.chain()
    truth.sample(200, seed=0).to_csv(root / "data.csv", index=False)  # tiny run: plumbing
    (root / "graph.json").write_text(json.dumps(truth.graph))
    result = CliRunner().invoke(
        app,
        [
            "fit", str(root / "data.csv"), "--graph", str(root / "graph.json"),
            "--inference", "nuts", "--chains", "2", "--draws", "30", "--warmup", "30",
            "--out", str(root / "run"),
        ],
    )  # fmt: skip
    return root, result


def test_fit_prints_summary_and_writes_posterior_nc(run):
    root, result = run
    assert result.exit_code == 0, result.output
    assert "r_hat" in result.output and "ess_bulk" in result.output
    assert "x2.coef[x2, x1]" in result.output
    idata = az.from_netcdf(root / "run" / "posterior.nc")
    assert idata.posterior.sizes["chain"] == 2 and idata.posterior.sizes["draw"] == 30
    assert (root / "run" / "ppc.png").exists()


def test_do_prints_effect_with_hdi(run):
    root, _ = run
    result = CliRunner().invoke(
        app, ["do", str(root / "run"), "--set", "x1=1", "--target", "x3", "--n", "1000"]
    )
    assert result.exit_code == 0, result.output
    line = result.output.strip()
    assert line.startswith("E[x3 | do(x1=1)] = ") and "94% HDI [" in line
    mean = float(line.split("=")[2].split()[0])
    lo, hi = (float(v) for v in line.split("[")[-1].rstrip("]").split(","))
    # Same answer as the library on the saved run (same seed, same draws).
    table = effect_table(SCM.load(root / "run"), {"x1": 1.0}, n=1000, seed=0)
    assert mean == pytest.approx(table.loc["x3", "mean"], abs=1e-4)
    assert (lo, hi) == pytest.approx(
        (table.loc["x3", "hdi_lower"], table.loc["x3", "hdi_upper"]), abs=1e-4
    )
    # Truth -1.8 = 1.5 * -1.2. From 200 rows the two coefficients' sampling error gives the
    # answer an sd of about 0.15 (this data set's OLS plug-in is -1.54); 3 sd = 0.45.
    assert mean == pytest.approx(-1.8, abs=0.45)
    assert lo < mean < hi


def test_bad_inference_is_one_line_error(tmp_path):
    truth = zoo.chain()
    truth.sample(20, seed=0).to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "g.json").write_text(json.dumps(truth.graph))
    args = ["fit", str(tmp_path / "d.csv"), "--graph", str(tmp_path / "g.json")]
    result = CliRunner().invoke(app, [*args, "--inference", "hmc", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "inference must be one of" in result.output
    result = CliRunner().invoke(
        app, [*args, "--inference", "nuts", "--mechanisms", "flow", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and "needs Bayesian mechanisms" in result.output
