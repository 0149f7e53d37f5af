"""Node names, graph forms, vector-node column labels and saves over an earlier save: inputs
that crashed deep inside torch or Pyro, or were read by position, or left stale files."""

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from scm import SCM, zoo


@pytest.mark.parametrize("name", ["type", "values", "training", "rows", "_RETURN"])
def test_reserved_node_names_are_named(name):
    """``type`` or ``values`` (attributes of the module dict of mechanisms) raised torch's
    ``KeyError: "attribute 'values' already exists"``; ``rows`` clashed with the plate."""
    with pytest.raises(ValueError, match=f"node name '{name}' is reserved.*'{name}_'"):
        SCM({name: [], "y": [name]}, "linear")


def test_unicode_identifiers_are_node_names(tmp_path):
    """Any Python identifier names a node (the check was ASCII only), through fit, save and
    load, and counterfactuals."""
    rng = np.random.default_rng(0)
    t = rng.normal(size=200)
    df = pd.DataFrame({"température": t, "débit": 2 * t + 0.1 * rng.normal(size=200)})
    m = SCM({"température": [], "débit": ["température"]}, "linear").fit(df, progress=False)
    m.save(tmp_path / "m")
    cf = SCM.load(tmp_path / "m").counterfactual(df.head(3), {"température": 0.0})
    w = m.ate("température", "débit", a=0.0, b=1.0, n=100)  # linear: the exact slope
    expected = df["débit"].head(3) - w * df["température"].head(3)
    np.testing.assert_allclose(cf["débit"], expected, atol=1e-4)
    assert w == pytest.approx(2.0, abs=0.05)


def test_graph_forms_give_clear_errors_or_work():
    """An undirected networkx graph said "edges must be (parent, child) pairs, got 'a'", a
    DiGraph of int nodes "expected string or bytes-like object"; JSON's null for a root's
    parents was "'NoneType' object is not iterable" and now means no parents."""
    with pytest.raises(ValueError, match="undirected networkx.Graph"):
        SCM(nx.Graph([("a", "b")]))
    g = nx.DiGraph([(1, 2)])
    with pytest.raises(ValueError, match="node name '1' is not an identifier"):
        SCM(g)
    assert SCM({"a": None, "b": ["a"]}, "linear").parents == {"a": [], "b": ["a"]}


def test_vector_node_values_are_matched_by_column_label():
    """A DataFrame of a vector node's values with its columns in another order was read by
    position (the factual z given back as ``z[2], z[1], z[0]`` moved y by .27); now it is
    matched by label, a labelled Series too, and unmatchable columns are refused."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 3))
    df = pd.DataFrame(z, columns=["z[0]", "z[1]", "z[2]"]).assign(
        y=z @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=300))
    m = SCM({"z": [], "y": ["z"]}, "linear", dims={"z": 3}).fit(df, progress=False)
    fact = df.head(4)
    cf = m.counterfactual(fact, {"z": fact[["z[2]", "z[1]", "z[0]"]]})
    np.testing.assert_allclose(cf.to_numpy(), fact.to_numpy(), atol=1e-5)
    one = pd.Series({"z[2]": 1.0, "z[0]": 2.0, "z[1]": 3.0})
    assert m.do({"z": one}).sample(2, seed=0)[["z[0]", "z[1]", "z[2]"]].iloc[0].tolist() == [
        2.0, 3.0, 1.0]
    with pytest.raises(ValueError, match="name them \\['z\\[0\\]', 'z\\[1\\]', 'z\\[2\\]'\\]"):
        m.counterfactual(fact, {"z": fact[["z[0]", "z[1]", "z[2]"]].set_axis(
            ["w0", "w1", "w2"], axis=1)})


def test_a_save_replaces_an_earlier_saves_posterior(tmp_path):
    """Saving a point-estimate SCM over a Bayesian save left the old draws there: the folder
    then failed to load ("posterior.safetensors holds sites ... but the SCM has []")."""
    truth = zoo.chain()
    df = truth.sample(200, seed=0)
    bayes = SCM(truth.graph, "bayes-linear").fit(df, inference="svi", steps=50,
                                                 num_samples=10, progress=False)
    bayes.save(tmp_path)
    assert SCM.load(tmp_path).posterior is not None
    SCM(truth.graph, "linear").fit(df, progress=False).save(tmp_path)
    loaded = SCM.load(tmp_path)
    assert loaded.posterior is None and {m.kind for m in loaded.mechanisms.values()} == {"linear"}


def test_an_edge_list_declares_a_node_without_edges():
    """An edge list had no way to add an isolated node; a bare name now does."""
    assert SCM([("a", "b"), "c"], "linear").parents == {"a": [], "b": ["a"], "c": []}
    with pytest.raises(TypeError, match="or a node name"):
        SCM([("a", "b", "c")])


def test_auto_warns_about_a_vector_node_of_codes():
    """A vector node is never made categorical; its 0/1 columns drew no warning while a scalar
    0/1 column becomes categorical."""
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, size=(300, 2)).astype(float)
    df = pd.DataFrame({"z[0]": z[:, 0], "z[1]": z[:, 1], "y": z.sum(1) + rng.normal(size=300)})
    with pytest.warns(UserWarning, match="vector node 'z' has columns of only 2 distinct"):
        SCM({"z": [], "y": ["z"]}, "auto", dims={"z": 2}).fit(df, steps=20, progress=False)
