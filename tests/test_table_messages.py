"""Real CSV tables' common bad cells and names get one line saying what to do."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from scm import SCM
from scm.discovery import discover
from scm.mechanisms import CategoricalMechanism

GRAPH = {"x1": [], "x2": ["x1"], "x3": ["x2"]}


def _table(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """A linear chain x1 -> x2 -> x3 with a little noise."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = 2.0 * x1 + rng.normal(size=n)
    return pd.DataFrame({"x1": x1, "x2": x2, "x3": x2 - 1.0 + rng.normal(size=n)})


def _as_read(df: pd.DataFrame, **read: object) -> pd.DataFrame:
    """``df`` as ``pd.read_csv`` gives it back from a CSV file."""
    return pd.read_csv(io.StringIO(df.to_csv(index=False)), **read)


def _with_marker(df: pd.DataFrame, column: str, rows: list[int], marker: str) -> pd.DataFrame:
    """``df`` read back from a CSV in which ``column``'s cells at ``rows`` hold ``marker``."""
    out = df.astype({column: object})
    out.loc[rows, column] = marker
    return _as_read(out)


# ----------------------------------------------------------------- a few cells not numbers
def test_fit_names_the_cells_that_are_not_numbers():
    """A '?' in a column of numbers made the column text: the message named only the dtype."""
    df = _with_marker(_table(), "x2", [17, 40], "?")
    with pytest.raises(ValueError) as err:
        SCM(GRAPH, "linear").fit(df, progress=False)
    message = str(err.value)
    assert message.startswith("column 'x2' of data is not numeric (dtype ")
    assert "2 of 60 cells are not numbers, the first at row 17 holding '?'" in message
    assert "pd.read_csv(..., na_values=['?'])" in message
    assert "pd.to_numeric(df['x2'], errors='coerce')" in message
    assert "\n" not in message
    # The advice works: the cells become NaN, whose message says to drop them.
    read = _as_read(df, na_values=["?"])
    with pytest.raises(ValueError, match=r"'x2' of data has 2 NaN value\(s\), first at row 17; "
                       r"drop those rows \(df.dropna\(\)\) or fill them"):
        SCM(GRAPH, "linear").fit(read, progress=False)
    SCM(GRAPH, "linear").fit(read.dropna(), epochs=2, progress=False)


def test_the_row_is_named_by_its_label():
    df = _with_marker(_table(), "x1", [5], "n/a ").set_axis([f"p{i}" for i in range(60)])
    model = SCM(GRAPH, "linear")
    with pytest.raises(ValueError, match=r"of factual data .*1 of 60 cells are not numbers, the "
                       r"first at row 'p5' holding 'n/a '; .*na_values=\['n/a '\]"):
        model.counterfactual(df, {"x1": 0.0})
    with pytest.raises(ValueError, match=r"first at row 'p5'"):
        model.log_prob(df)


def test_a_column_of_text_keeps_its_message():
    df = _table().assign(x2=lambda d: np.where(d.x1 > 0, "hi", "lo"))
    with pytest.raises(ValueError) as err:
        SCM(GRAPH, "linear").fit(df, progress=False)
    assert str(err.value) == f"column 'x2' of data is not numeric (dtype {df.x2.dtype})"


def test_discover_names_the_cells_instead_of_calling_the_column_categorical():
    """discover called a column of numbers with one '?' categorical and suggested chi-square
    tests; it says what fit says (for a discrete test too: '?' is no category)."""
    df = _with_marker(_table(200), "x3", [3], "?")
    for options in ({}, {"test": "chisq"}):
        with pytest.raises(ValueError) as err:
            discover(df, "pc", **options)
        message = str(err.value)
        assert "1 of 200 cells are not numbers, the first at row 3 holding '?'" in message
        assert "categorical" not in message and "chisq" not in message
    with pytest.raises(ValueError, match="'x3' are categorical but"):
        discover(df.assign(x3=np.where(df.x1 > 0, "hi", "lo")), "pc")


# ----------------------------------------------------------------- True/False columns
def _with_flag(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    flag = rng.random(n) < 0.4
    return pd.DataFrame({"flag": flag, "y": 1.0 + 2.0 * flag + rng.normal(size=n)})


def test_true_false_columns_are_read_as_0_1():
    """A bool column was refused as "not numeric (dtype bool)"; it is 0/1, as in numpy."""
    graph = {"flag": [], "y": ["flag"]}
    df = _as_read(_with_flag())
    assert df["flag"].dtype == bool
    codes = df.astype({"flag": float})
    m = SCM(graph, "linear").fit(df, epochs=3, progress=False)
    same = SCM(graph, "linear").fit(codes, epochs=3, progress=False)
    np.testing.assert_array_equal(m.log_prob(df), same.log_prob(codes))
    np.testing.assert_array_equal(m.log_prob(df), m.log_prob(codes))
    pd.testing.assert_frame_equal(m.counterfactual(df, {"flag": 1.0}),
                                  m.counterfactual(codes, {"flag": 1.0}))
    assert SCM(graph, "auto").fit(df, epochs=3, progress=False).mechanisms["flag"].kind == (
        "categorical"
    )


def test_discover_reads_true_false_as_0_1():
    df = _with_flag().assign(z=lambda d: d.y + np.random.default_rng(2).normal(size=len(d)))
    found = discover(df, "pc")
    assert found.edges == discover(df.astype({"flag": float}), "pc").edges
    assert found.edges  # flag -> y -> z: a test that could not fail would find nothing


def test_cli_per_row_column_may_be_true_false(tmp_path):
    model = SCM({"flag": [], "y": ["flag"]}, "linear")
    model.save(str(tmp_path / "run"))
    _with_flag(5).assign(dose=[True, False, True, False, True]).to_csv(tmp_path / "f.csv",
                                                                       index=False)
    out = tmp_path / "cf.csv"
    r = CliRunner().invoke(app, ["counterfactual", str(tmp_path / "run"), str(tmp_path / "f.csv"),
                                 "--set", "flag=@dose", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert pd.read_csv(out)["flag"].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]


# ----------------------------------------------------------------- categorical declarations
def _classes(codes: list[int], n: int = 90) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "t": np.array(codes * (n // len(codes)), dtype=float)})


def test_categorical_by_name_counts_its_codes():
    """The name "categorical" builds 2 categories; at fit time a column of codes 0..2 gives
    it 3 (a 3-class column said "codes 0..1; got 2" and could not be declared by name). The
    class frequencies (1/3 each: the fit starts from the counts) are learned; a refit on
    0/1 codes goes back to 2 categories; a mechanism object keeps its own count, with a
    message that says how to declare 3."""
    graph = {"x": [], "t": ["x"]}
    df = _classes([0, 1, 2])
    model = SCM(graph, {"x": "linear", "t": "categorical"}).fit(df, epochs=2, progress=False)
    assert model.mechanisms["t"].categories == 3
    drawn = model.sample(6000, seed=0)["t"].value_counts(normalize=True).sort_index()
    assert np.allclose(drawn.to_numpy(), 1 / 3, atol=0.05)  # 3 s.e. of a 1/3 on 6,000: .018
    model.fit(_classes([0, 1]), epochs=2, progress=False)
    assert model.mechanisms["t"].categories == 2
    declared = {"x": "linear", "t": CategoricalMechanism(1, 1)}
    with pytest.raises(ValueError) as err:
        SCM(graph, declared).fit(df, progress=False)
    assert str(err.value) == (
        "data: node 't' is categorical with codes 0..1; got 2; declare its 3 categories in "
        "mechanisms: {'t': 'categorical'} (by name, the categories are counted from the data) "
        "or {'t': CategoricalMechanism(1, 1, categories=3)} (from scm.mechanisms import "
        "CategoricalMechanism)"
    )
    declared = {"x": "linear", "t": CategoricalMechanism(1, 1, categories=3)}
    assert SCM(graph, declared).fit(df, epochs=2, progress=False).mechanisms["t"].categories == 3
    # An intervention is no table to redeclare: its message stays as it was.
    with pytest.raises(ValueError) as err:
        SCM(graph, declared).do({"t": 3.0})
    assert str(err.value) == "intervention: node 't' is categorical with codes 0..2; got 3"


@pytest.mark.parametrize(
    ("codes", "advice"),
    [
        ([1, 2, 3], "recode its 3 values as 0..2 (pd.factorize(df['t'], sort=True)[0]) and "
                    "declare CategoricalMechanism(1, 1, categories=3)"),
        ([0, 1, 5], "recode its 3 values as 0..2"),
        (list(range(30)), "declare its 30 categories in mechanisms: {'t': 'categorical'} (by "
                          "name, the categories are counted from the data) or {'t': "
                          "CategoricalMechanism(1, 1, categories=30)} (from scm.mechanisms import"
                          " CategoricalMechanism); if it is not categorical give it another "
                          "mechanism ('flow', "),
        ([0.0, 0.5, 1.0], "it takes 3 distinct value(s), so if it is not categorical give it "
                          "another mechanism"),
    ],
)
def test_categorical_advice_for_other_codes(codes, advice):
    df = _classes(codes).assign(t=np.resize(codes, 90))
    with pytest.raises(ValueError, match=re.escape(advice)):  # a 2-category object
        SCM({"x": [], "t": ["x"]}, {"x": "linear", "t": CategoricalMechanism(1, 1)}).fit(
            df, progress=False)


# ----------------------------------------------------------------- node names
def test_a_name_that_is_no_identifier_gets_one_suggested():
    header = "od280/od315_of_diluted_wines"
    with pytest.raises(ValueError) as err:
        SCM({"mean radius": [], header: ["mean radius"]}, "linear")
    assert str(err.value) == (
        "node name 'mean radius' is not an identifier (letters, digits, underscore: it names a "
        "torch module and a Pyro site); rename it, e.g. to 'mean_radius', in the graph and in "
        "the data alike (df = df.rename(columns={'mean radius': 'mean_radius'}) or the CSV "
        "header)"
    )
    with pytest.raises(ValueError, match="e.g. to 'od280_od315_of_diluted_wines'"):
        SCM({"mean_radius": [], header: ["mean_radius"]}, "linear")


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("mean radius", "mean_radius"),
        ("od280/od315_of_diluted_wines", "od280_od315_of_diluted_wines"),
        ("size (mm)", "size_mm"),
        ("1st", "x1st"),
        ("?", "x"),
        ("rows?", "rows_"),  # "rows" is the Pyro program's plate
        ("type ", "type_"),  # an attribute of the module dict
        ("höhe m", "höhe_m"),
    ],
)
def test_suggested_names_are_free_node_names(name, suggested):
    with pytest.raises(ValueError, match=f"e.g. to {suggested!r}"):
        SCM({name: []}, "linear")
    SCM({suggested: []}, "linear")
    from scm.frame import identifier_for

    assert identifier_for(name).isidentifier()


# ----------------------------------------------------------------- missing columns
@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_file_read_as_one_column_names_its_separator(sep):
    df = pd.read_csv(io.StringIO(_table().to_csv(index=False, sep=sep)))
    with pytest.raises(ValueError) as err:
        SCM(GRAPH, "linear").fit(df, progress=False)
    header = sep.join(["x1", "x2", "x3"])
    assert str(err.value) == (
        f"data is missing the column for node 'x1'; its columns are {header!r}: the file looks "
        f"separated by {sep!r}; read it with pd.read_csv(path, sep={sep!r}) or save it with "
        "commas"
    )


def test_columns_that_name_the_nodes_loosely_get_the_rename():
    df = _table().rename(columns={"x1": " X1", "x3": "x 3"})
    with pytest.raises(ValueError) as err:
        SCM(GRAPH, "linear").log_prob(df)
    rename = {" X1": "x1", "x 3": "x3"}
    assert str(err.value) == (
        "data is missing the column for node 'x1'; its columns are ' X1', 'x2', 'x 3': columns "
        "name the nodes up to spaces, case or punctuation; rename them, "
        f"df = df.rename(columns={rename!r}) (or edit the CSV header)"
    )
    with pytest.warns(UserWarning, match="never fitted"):  # the columns are read
        SCM(GRAPH, "linear").log_prob(df.rename(columns=rename))


def test_the_graph_renamed_but_not_the_data():
    graph = {"mean_radius": [], "mean_texture": ["mean_radius"]}
    df = pd.DataFrame({"mean radius": [1.0, 2.0, 3.0], "mean texture": [0.5, 0.1, 0.9]})
    with pytest.raises(ValueError, match=re.escape(
            "rename them, df = df.rename(columns={'mean radius': 'mean_radius', "
            "'mean texture': 'mean_texture'})")):
        SCM(graph, "linear").log_prob(df)


def test_a_missing_column_lists_the_columns_read():
    df = _table().drop(columns="x3").assign(**{f"c{i}": 0.0 for i in range(10)})
    with pytest.raises(ValueError) as err:
        SCM(GRAPH, "linear").log_prob(df)
    assert str(err.value) == (
        "data is missing the column for node 'x3'; its columns are 'x1', 'x2', 'c0', 'c1', "
        "'c2', 'c3', 'c4', 'c5' and 4 more"
    )


def test_graph_json_read_by_the_cli_names_the_separator(tmp_path):
    _table().to_csv(tmp_path / "d.csv", sep=";", index=False)
    (tmp_path / "g.json").write_text(json.dumps(GRAPH))
    r = CliRunner().invoke(app, ["fit", str(tmp_path / "d.csv"), "--graph",
                                 str(tmp_path / "g.json"), "--out", str(tmp_path / "run"),
                                 "--mechanisms", "linear"])
    assert r.exit_code == 2
    assert "the file looks separated by ';'" in r.output.strip().splitlines()[-1]
