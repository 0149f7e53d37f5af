"""``cauflow fit --mechanism node=kind``: one node's mechanism over ``--mechanisms``; a
categorical node gets its number of categories from the CSV."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from scm import SCM

runner = CliRunner()


def one_line_error(r, *fragments: str) -> None:
    """``r`` ended in one ``error: ...`` line holding every fragment, exit code 2."""
    assert r.exit_code == 2, (r.exception, r.output)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    assert all(fragment in lines[0] for fragment in fragments), lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 3-class root ``group`` (codes 0..2, probabilities .2/.3/.5) over a Gaussian child
    ``y = 2 group + noise``, 600 rows, and its graph."""
    root = tmp_path_factory.mktemp("mechanism")
    rng = np.random.default_rng(0)
    group = rng.choice(3, size=600, p=[0.2, 0.3, 0.5])
    y = 2.0 * group + rng.normal(size=600)
    pd.DataFrame({"group": group, "y": y}).to_csv(root / "d.csv", index=False)
    (root / "g.json").write_text(json.dumps({"group": [], "y": ["group"]}))
    return root


def _fit(files, out, *extra: str):
    return runner.invoke(app, ["fit", str(files / "d.csv"), "--graph", str(files / "g.json"),
                               "--out", str(out), "--mechanisms", "linear", *extra])


def test_a_declared_categorical_node_counts_its_codes(files, tmp_path):
    """``--mechanism group=categorical`` on codes 0..2: three categories (the name alone
    builds two, and the fit refused code 2); the other node keeps ``--mechanisms linear``.
    The fitted class probabilities are the data's (.2/.3/.5 drawn: within 3 standard errors
    of a proportion on 600 rows, ~.06) and do(group=2) moves y by 2 per code."""
    r = _fit(files, tmp_path / "run", "--mechanism", "group=categorical")
    assert r.exit_code == 0, r.output
    assert "mechanisms: categorical: group; linear: y" in r.output
    model = SCM.load(str(tmp_path / "run"))
    assert model.mechanisms["group"].categories == 3
    drawn = model.sample(20000, seed=0)["group"].value_counts(normalize=True).sort_index()
    assert np.allclose(drawn.to_numpy(), [0.2, 0.3, 0.5], atol=0.06)
    assert model.ate("group", "y", a=0.0, b=2.0, n=20000) == pytest.approx(4.0, abs=0.2)


def test_bad_mechanism_items_are_one_line_errors(files, tmp_path):
    one_line_error(_fit(files, tmp_path / "a", "--mechanism", "group"), "node=kind")
    one_line_error(_fit(files, tmp_path / "b", "--mechanism", "z=flow"), "'z'", "not a node")
    one_line_error(_fit(files, tmp_path / "c", "--mechanism", "y=spline"), "kind must be")
    assert not any((tmp_path / d).exists() for d in "abc")


def test_a_hurdle_is_declared_by_name(tmp_path):
    """``--mechanism y=hurdle`` on a censored column (y = max(0, x + noise), ~30% zeros): the
    saved node is a hurdle whose atom is 0, and its draws never fall below it."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    pd.DataFrame({"x": x, "y": np.maximum(0.0, 0.5 + x + 0.5 * rng.normal(size=400))}).to_csv(
        tmp_path / "d.csv", index=False)
    (tmp_path / "g.json").write_text(json.dumps({"x": [], "y": ["x"]}))
    r = runner.invoke(app, ["fit", str(tmp_path / "d.csv"), "--graph", str(tmp_path / "g.json"),
                            "--out", str(tmp_path / "m"), "--mechanisms", "linear",
                            "--mechanism", "y=hurdle", "--epochs", "5"])
    assert r.exit_code == 0, r.output
    model = SCM.load(tmp_path / "m")
    assert model.mechanisms["y"].kind == "hurdle" and model.mechanisms["y"].atoms() == [0.0]
    assert model.sample(2000, seed=0)["y"].min() == 0.0
