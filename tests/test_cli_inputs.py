"""Bad CLI inputs end in one line ``error: ...`` and exit code 2, before any work is done:
row counts, output paths (existing files, folders, missing parents), graph files, --set."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def one_line_error(r, *fragments: str) -> str:
    """Assert ``r`` is a :func:`cli._fail`: exit 2 (not an exception's 1), exactly one line of
    output, starting ``error:``, holding every fragment; return that line."""
    assert isinstance(r.exception, SystemExit) and r.exit_code == 2, (r.exception, r.output)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    assert "Traceback" not in r.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A folder with a chain CSV and its graph, an empty file ``afile``, a folder ``adir``,
    a graph that is not JSON ``bad.json``."""
    root = tmp_path_factory.mktemp("inputs")
    r = runner.invoke(app, ["zoo", "chain", "--rows", "200", "--out", str(root / "c.csv"),
                            "--graph-out", str(root / "g.json")])
    assert r.exit_code == 0, r.output
    (root / "afile").touch()
    (root / "adir").mkdir()
    (root / "bad.json").write_text("not json\n")
    return root


@pytest.fixture(scope="module")
def run(files):
    """A linear fit of the chain, saved."""
    out = files / "run"
    r = runner.invoke(app, ["fit", str(files / "c.csv"), "--graph", str(files / "g.json"),
                            "--out", str(out), "--mechanisms", "linear", "--epochs", "20"])
    assert r.exit_code == 0, r.output
    return out


# ------------------------------------------------------------------ zoo


@pytest.mark.parametrize("rows", ["-5", "0"])
def test_zoo_refuses_fewer_than_one_row(tmp_path, rows):
    out = tmp_path / "x.csv"
    r = runner.invoke(app, ["zoo", "chain", "--rows", rows, "--out", str(out)])
    one_line_error(r, "--rows", rows)
    assert not out.exists()


def test_zoo_creates_missing_folders(tmp_path):
    out, graph = tmp_path / "newdir" / "x.csv", tmp_path / "newdir2" / "sub" / "g.json"
    r = runner.invoke(
        app, ["zoo", "chain", "--rows", "10", "--out", str(out), "--graph-out", str(graph)]
    )
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(out)) == 10 and json.loads(graph.read_text())["x2"] == ["x1"]


def test_zoo_out_is_a_folder(files):
    one_line_error(
        runner.invoke(app, ["zoo", "chain", "--rows", "10", "--out", str(files / "adir")]),
        "--out", "is a folder",
    )


def test_zoo_writes_nothing_when_the_graph_cannot_be_written(files, tmp_path):
    out = tmp_path / "ok.csv"
    r = runner.invoke(app, ["zoo", "chain", "--rows", "10", "--out", str(out),
                            "--graph-out", str(files / "afile" / "g.json")])
    one_line_error(r, "--graph-out", "is a file, not a folder")
    assert not out.exists()


def test_zoo_unknown_name():
    one_line_error(runner.invoke(app, ["zoo", "nosuch"]), "unknown zoo SCM 'nosuch'")


# ------------------------------------------------------------------ fit


@pytest.mark.parametrize("out", ["afile", "afile/sub"])
def test_fit_out_under_or_at_a_file_fails_before_fitting(files, out, monkeypatch):
    from scm import SCM

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted although --out cannot be written")

    monkeypatch.setattr(SCM, "fit", no_fit)
    r = runner.invoke(app, ["fit", str(files / "c.csv"), "--graph", str(files / "g.json"),
                            "--out", str(files / out), "--mechanisms", "linear"])
    one_line_error(r, "--out", str(files / "afile"), "is a file")


def test_fit_save_error_is_one_line(files, tmp_path, monkeypatch):
    from scm import SCM

    def disk_full(self, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(SCM, "fit", lambda self, *args, **kwargs: self)
    monkeypatch.setattr(SCM, "save", disk_full)
    r = runner.invoke(app, ["fit", str(files / "c.csv"), "--graph", str(files / "g.json"),
                            "--out", str(tmp_path / "run"), "--mechanisms", "linear"])
    one_line_error(r, "No space left on device")


@pytest.mark.parametrize("resume", [False, True])
@pytest.mark.parametrize(
    ("graph", "reason"),
    [("bad.json", "Expecting value: line 1 column 1 (char 0)"),
     ("missing.json", "No such file or directory"),
     ("adir", "Is a directory")],
)
def test_fit_names_the_graph_it_cannot_read(files, tmp_path, graph, reason, resume):
    args = ["fit", str(files / "c.csv"), "--graph", str(files / graph),
            "--out", str(tmp_path / "run"), "--mechanisms", "linear"]
    r = runner.invoke(app, args + (["--resume"] if resume else []))
    one_line_error(r, f"error: cannot read graph {files / graph}: {reason}")
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ do


@pytest.mark.parametrize("item", ["x1:3", "x1=abc", "x1"])
def test_do_bad_set_syntax(tmp_path, item):
    one_line_error(runner.invoke(app, ["do", str(tmp_path), "--set", item]),
                   f"--set expects node=number, got {item!r}")


def test_do_unknown_target(run):
    r = runner.invoke(app, ["do", str(run), "--set", "x1=1", "--target", "nosuch", "--n", "10"])
    one_line_error(r, "unknown target 'nosuch'")


# ------------------------------------------------------------------ the other --out options


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["discover", "{files}/c.csv", "--out", "{files}/adir"], "--out {files}/adir is a folder"),
        (["discover", "{files}/c.csv", "--out", "{files}/afile/g.json"], "is a file, not a"),
        (["discover", "{files}/c.csv", "--plot", "{files}/adir"], "--plot"),
        (["discover"], "give a CSV or --from-run RUN"),
        (["counterfactual", "{files}/run", "{files}/c.csv", "--set", "x1=1",
          "--out", "{files}/adir"], "--out {files}/adir is a folder"),
        (["train", "caufvae", "--out", "{files}/afile"], "--out {files}/afile is a file"),
        (["train", "ctvae", "--out", "{files}/afile"], "--out {files}/afile is a file"),
        (["train", "context", "--out", "{files}/afile"], "--out {files}/afile is a file"),
        (["train", "context", "--out", "{files}/afile/run"], "is a file, not a folder"),
        (["intervene", "{files}/run", "--set", "light=1", "--out", "{files}/adir"],
         "--out {files}/adir is a folder"),
        (["generate", "{files}/run", "--out", "{files}/adir"], "--out {files}/adir is a folder"),
        (["demo", "--out", "{files}/afile"], "--out {files}/afile is a file"),
    ],
    ids=lambda v: "-".join(v[:2]) if isinstance(v, list) else None,
)
def test_unusable_out_fails_up_front(files, cache, args, fragment):
    args = [a.format(files=files) for a in args]
    one_line_error(runner.invoke(app, args), fragment.format(files=files))


def test_discover_creates_the_out_folder(files, tmp_path):
    out = tmp_path / "newdir" / "g.json"
    r = runner.invoke(app, ["discover", str(files / "c.csv"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.is_file()


def test_fit_declares_vector_nodes_with_dims(tmp_path):
    """``--dims z=2`` fits a vector node from columns ``z[0], z[1]`` (the CLI could not declare
    one); the saved model has that width, and a bad item is a one-line error."""
    import numpy as np

    from scm import SCM

    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 2))
    pd.DataFrame({"z[0]": z[:, 0], "z[1]": z[:, 1],
                  "y": z @ [1.0, -1.0] + 0.1 * rng.normal(size=300)}).to_csv(
        tmp_path / "v.csv", index=False)
    (tmp_path / "g.json").write_text(json.dumps({"z": [], "y": ["z"]}))
    args = ["fit", str(tmp_path / "v.csv"), "--graph", str(tmp_path / "g.json"),
            "--mechanisms", "linear"]
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "m"), "--dims", "z=2"])
    assert r.exit_code == 0, r.output
    assert SCM.load(tmp_path / "m").dims == {"z": 2, "y": 1}
    one_line_error(runner.invoke(app, [*args, "--out", str(tmp_path / "m2"), "--dims", "z=0"]),
                   "--dims expects node=width")
    one_line_error(runner.invoke(app, [*args, "--out", str(tmp_path / "m3")]), "z")


def test_a_node_set_twice_is_refused(files):
    """A repeated ``--set`` kept the last value silently."""
    args = ["--set", "x1=1", "--set", "x1=2"]
    one_line_error(runner.invoke(app, ["do", str(files / "nothing"), *args]), "'x1' twice")
    one_line_error(runner.invoke(app, ["counterfactual", str(files / "nothing"),
                                       str(files / "c.csv"), *args]), "'x1' twice")


def test_the_cli_prints_autos_choices_and_plain_warnings(tmp_path) -> None:
    """``cauflow fit --mechanisms auto`` prints which nodes got which mechanism (a later
    counterfactual could fail on a node the user never knew had become categorical); a
    warning is one ``warning:`` line, without Python's file, line and source; ``do --help``
    keeps its brackets (rich markup ate ``E[x | do(...)]``)."""
    import json

    from typer.testing import CliRunner

    from cli import app

    runner = CliRunner()
    data, graph = tmp_path / "d.csv", tmp_path / "g.json"
    from scm import zoo

    df = zoo.chain().sample(60, seed=0)
    df["t"] = (df.x1 > 0).astype(float)
    df.to_csv(data, index=False)
    graph.write_text(json.dumps({**zoo.chain().graph, "t": ["x1"]}))
    r = runner.invoke(app, ["fit", str(data), "--graph", str(graph), "--out",
                            str(tmp_path / "a"), "--mechanisms", "auto"])
    assert r.exit_code == 0, r.output
    assert "mechanisms: linear: x1, x2, x3; categorical: t" in r.output
    import warnings

    import cli

    assert warnings.formatwarning is cli._format_warning
    assert cli._format_warning(UserWarning("few rows"), UserWarning, "cli.py", 293) == (
        "warning: few rows\n")
    assert "E[x | do(node=value)]" in runner.invoke(app, ["do", "--help"]).output


def test_csv_headers_with_spaces_after_commas_name_the_nodes(tmp_path):
    """A header written ``x1, x2, x3`` named the columns " x2" and " x3": fit said the data
    missed node 'x2', and discover kept the spaces in the names. Both read it as x1, x2, x3."""
    from scm import zoo

    data, graph = tmp_path / "d.csv", tmp_path / "g.json"
    df = zoo.chain().sample(200, seed=0)
    data.write_text("x1, x2, x3\n" + "\n".join(", ".join(f"{v:.6f}" for v in row)
                                              for row in df.to_numpy()) + "\n")
    graph.write_text(json.dumps(zoo.chain().graph))
    r = runner.invoke(app, ["fit", str(data), "--graph", str(graph), "--out",
                            str(tmp_path / "run"), "--mechanisms", "linear"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["discover", str(data), "--out", str(tmp_path / "found.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "found.json").read_text())["nodes"] == ["x1", "x2", "x3"]
