"""``cauflow discover``: the CLI prints what the library finds, and fails in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from scm import zoo
from scm.discovery import DiscoveredGraph, discover, run_discover

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("discover")
    truth = zoo.chain()
    truth.sample(2000, seed=0).to_csv(root / "chain.csv", index=False)
    (root / "truth.json").write_text(json.dumps(truth.graph))
    (root / "tiers.json").write_text(json.dumps([["x1"], ["x2"], ["x3"]]))
    return {
        "root": root,
        "csv": root / "chain.csv",
        "truth": root / "truth.json",
        "tiers": root / "tiers.json",
    }


def test_discover_command(files: dict[str, Path]) -> None:
    out, png = files["root"] / "g.json", files["root"] / "g.png"
    result = runner.invoke(
        app,
        [
            "discover",
            str(files["csv"]),
            "--method",
            "pc",
            "--alpha",
            "0.01",
            "--test",
            "fisherz",
            "--out",
            str(out),
            "--plot",
            str(png),
            "--truth",
            str(files["truth"]),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "x1 --- x2\nx2 --- x3" in result.output
    assert "shd_cpdag: 0" in result.output and "shd_dag: 2" in result.output
    saved = DiscoveredGraph.load(out)
    assert saved.undirected == [("x1", "x2"), ("x2", "x3")] and saved.options["alpha"] == 0.01
    assert png.read_bytes()[:4] == b"\x89PNG"
    # The CLI and the library agree.
    import pandas as pd

    assert saved == discover(pd.read_csv(files["csv"]), "pc", alpha=0.01, test="fisherz")


def test_discover_command_with_knowledge_and_bootstrap(files: dict[str, Path]) -> None:
    result = runner.invoke(
        app,
        [
            "discover",
            str(files["csv"]),
            "--tiers",
            str(files["tiers"]),
            "--forbid",
            "x3->x1",
            "--bootstrap",
            "4",
            "--truth",
            str(files["truth"]),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "x1 --> x2  (1.00)" in result.output and "shd_dag: 0" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "magic"], "method must be one of 'pc'"),
        (["--test", "pearson"], "test must be one of 'fisherz'"),
        (["--method", "ges", "--alpha", "0.1"], "alpha do not apply to method 'ges'"),
        (["--forbid", "x1 => x2"], "edge must read like"),
        (["--forbid", "x1 -> nope"], "names 'nope', which is not a column"),
        (["--bootstrap", "-1"], "bootstrap must be >= 0"),
        (["--truth", "missing.json"], "truth file 'missing.json' not found"),
    ],
)
def test_discover_command_bad_input(files: dict[str, Path], args: list[str], message: str) -> None:
    result = runner.invoke(app, ["discover", str(files["csv"]), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_discover_command_bad_data(tmp_path: Path) -> None:
    (tmp_path / "cat.csv").write_text(
        "a,b\n" + "".join(f"{i % 3},{'xy'[i % 2]}\n" for i in range(30))
    )
    result = runner.invoke(app, ["discover", str(tmp_path / "cat.csv")])
    assert result.exit_code == 2 and "use test='chisq' or test='gsq'" in result.output
    result = runner.invoke(app, ["discover", str(tmp_path / "none.csv")])
    assert result.exit_code == 2 and "not found" in result.output


def test_a_saved_index_column_is_refused(files: dict[str, Path], tmp_path: Path) -> None:
    """A CSV written with pandas' index has an ``Unnamed: 0`` column: discovery took it as a
    variable (on wine, sorted by class, PC found ``Unnamed: 0 --> target``); it is refused as
    fit refuses it."""
    import pandas as pd

    indexed = tmp_path / "indexed.csv"
    pd.read_csv(files["csv"]).to_csv(indexed)
    result = runner.invoke(app, ["discover", str(indexed)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: data has unnamed columns 'Unnamed: 0' (often a saved index: read the CSV with "
        "index_col=0 or drop them)"]


def test_run_discover_returns_the_report(files: dict[str, Path]) -> None:
    text = run_discover(files["csv"], method="ges", truth=files["truth"])
    assert text.splitlines()[0].startswith("method: ges (score=bic")
    assert "shd_cpdag: 0" in text


def test_a_discovered_graph_feeds_fit(files: dict[str, Path]) -> None:
    """``cauflow discover --out g.json`` then ``cauflow fit --graph g.json``: the chain's CPDAG
    (x1 --- x2 --- x3) is refused by fit with the undirected edges named and ``--dag`` given
    as the way out (fit read the JSON as a {child: [parents]} dict and complained about a node
    'schema'); ``--dag`` writes one DAG of the class, which fit takes. In Python, ``SCM``
    takes a DiscoveredGraph (a TypeError before) and refuses its networkx form's undirected
    edges by name (was "graph is cyclic")."""
    from scm import SCM

    root = files["root"]
    cpdag, dag = root / "cpdag.json", root / "dag.json"
    r = runner.invoke(app, ["discover", str(files["csv"]), "--out", str(cpdag)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["fit", str(files["csv"]), "--graph", str(cpdag), "--out",
                            str(root / "run0"), "--mechanisms", "linear"])
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        "error: an SCM needs a fully oriented graph, but 2 edge(s) are not directed (x1 --- x2, "
        "x2 --- x3); pick one DAG of the equivalence class with .dags(limit=...) (`cauflow "
        "discover --dag` writes one)"]
    r = runner.invoke(app, ["discover", str(files["csv"]), "--dag", "--out", str(dag)])
    assert r.exit_code == 0 and "--dag: 2 undirected edge(s) oriented" in r.output, r.output
    r = runner.invoke(app, ["fit", str(files["csv"]), "--graph", str(dag), "--out",
                            str(root / "run1"), "--mechanisms", "linear"])
    assert r.exit_code == 0, r.output
    fitted = SCM.load(str(root / "run1"))
    assert sorted(fitted.to_networkx().to_undirected().edges) == [("x1", "x2"), ("x2", "x3")]

    found = DiscoveredGraph.load(dag)
    assert SCM(found, "linear").parents == found.parents()
    with pytest.raises(ValueError, match=r"2 edge\(s\) that are not directed \(x1 - x2, x2 - x3\)"):
        SCM(DiscoveredGraph.load(cpdag).to_networkx(), "linear")


def test_discover_takes_a_parent_cap(tmp_path):
    """``--max-parents`` reaches GES (the warning over 20 columns names it); 0 parents
    leaves no edge."""
    import numpy as np
    import pandas as pd
    from typer.testing import CliRunner

    from cli import app

    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    pd.DataFrame({"a": x, "b": x + 0.5 * rng.normal(size=300)}).to_csv(tmp_path / "d.csv",
                                                                         index=False)
    runner = CliRunner()
    capped = runner.invoke(app, ["discover", str(tmp_path / "d.csv"), "--method", "ges",
                                 "--max-parents", "0"])
    free = runner.invoke(app, ["discover", str(tmp_path / "d.csv"), "--method", "ges"])
    assert capped.exit_code == 0 and free.exit_code == 0, (capped.output, free.output)
    assert "a --- b" in free.output and "a --- b" not in capped.output
