"""Bad input gets one clear ValueError naming the problem."""

import numpy as np
import pandas as pd
import pytest

from scm import SCM

GRAPH = {"x1": [], "x2": ["x1"]}


@pytest.fixture
def scm():
    return SCM(GRAPH, mechanisms="linear")


@pytest.fixture
def df():
    return pd.DataFrame({"x1": [0.0, 1.0, 2.0], "x2": [1.0, 0.5, -1.0]})


def test_intervention_on_unknown_node(scm):
    with pytest.raises(ValueError, match="intervention on unknown node 'x9'"):
        scm.do({"x9": 1.0})


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.drop(columns="x2"), "missing the column for node 'x2'"),
        (lambda d: d.assign(**{"Unnamed: 0": 1.0}), "unnamed columns"),
        (lambda d: d.assign(extra=1.0), "columns that are not nodes: \\['extra'\\]"),
        (lambda d: d.assign(x1=[0.0, np.nan, 1.0]), "column 'x1' of data has 1 NaN"),
        (lambda d: d.assign(x2=[0.0, np.inf, 1.0]), "column 'x2' of data has 1 infinite"),
        (lambda d: d.assign(x1=["a", "b", "c"]), "column 'x1' of data is not numeric"),
        (lambda d: d.iloc[:0], "zero rows"),
    ],
)
def test_bad_frames(scm, df, mutate, message):
    with pytest.raises(ValueError, match=message):
        scm.log_prob(mutate(df))
    with pytest.raises(ValueError, match=message.replace("of data", "of factual data")):
        scm.counterfactual(mutate(df), {"x1": 0.0})


def test_fit_rejects_nan(scm, df):
    with pytest.raises(ValueError, match="NaN"):
        scm.fit(df.assign(x1=[0.0, np.nan, 1.0]), progress=False)


def test_not_a_dataframe(scm):
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        scm.log_prob(np.zeros((3, 2)))


@pytest.mark.filterwarnings("ignore:.*never fitted:UserWarning")  # unfitted on purpose
def test_vector_node_width():
    scm = SCM({"z": [], "y": ["z"]}, mechanisms="linear", dims={"z": 3})
    good = scm.sample(10, seed=0)
    assert list(good.columns) == ["z[0]", "z[1]", "z[2]", "y"]
    with pytest.raises(ValueError, match="node 'z' has dimension 3"):
        scm.log_prob(good.drop(columns="z[2]"))
    with pytest.raises(ValueError, match="node 'z' has dimension 3"):
        scm.log_prob(good.assign(**{"z[3]": 0.0}))


def test_intervention_shape_mismatch():
    scm = SCM({"z": [], "y": ["z"]}, mechanisms="linear", dims={"z": 3})
    with pytest.raises(ValueError, match="intervention on 'z' has shape \\(2,\\)"):
        scm.do({"z": [1.0, 2.0]}).sample(5)


@pytest.mark.filterwarnings("ignore:.*never fitted:UserWarning")  # unfitted on purpose
def test_counterfactual_on_non_invertible_node_names_it():
    scm = SCM({"x": [], "c": ["x"], "y": ["c"]}, {"x": "linear", "c": "categorical", "y": "linear"})
    factual = scm.sample(20, seed=0)
    assert set(np.unique(factual["c"])) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="node 'c'.*not invertible"):
        scm.counterfactual(factual, {"x": 1.0})
    # Intervening on the categorical node itself needs no abduction of its noise.
    cf = scm.counterfactual(factual, {"c": 1.0})
    assert (cf["c"] == 1.0).all()


def test_mechanism_size_mismatch():
    from scm import LinearGaussian

    with pytest.raises(ValueError, match="mechanism for 'x2' has dim=1, context_dim=3"):
        SCM(GRAPH, {"x2": LinearGaussian(1, 3)})


def test_unknown_mechanism_name():
    with pytest.raises(ValueError, match="unknown mechanism 'spline'"):
        SCM(GRAPH, mechanisms="spline")


def test_values_outside_a_categorical_nodes_codes_are_named():
    """A categorical node's codes are 0..k-1: an intervention, data to score, factual rows or
    training data with another value raise one ValueError naming the node and the value
    (before, ``do(t = 5)`` extrapolated the child's conditioner silently and ``log_prob``
    failed on an index deep inside torch). Codes pass, per row too."""
    from scm.mechanisms import CategoricalMechanism

    graph = {"t": [], "y": ["t"]}
    m = SCM(graph, {"t": CategoricalMechanism(1, 0, categories=3), "y": "linear"})
    good = pd.DataFrame({"t": [0.0, 1.0, 2.0, 1.0], "y": [0.1, 1.2, 1.9, 0.8]})
    m.fit(good, epochs=2, progress=False)
    message = "node 't' is categorical with codes 0..2; got "
    with pytest.raises(ValueError, match="intervention: " + message + "5"):
        m.do({"t": 5.0})
    with pytest.raises(ValueError, match="intervention: " + message + "1.5"):
        m.do({"t": 1.5}).sample(10)
    bad = good.assign(t=[0.0, 4.0, 1.0, -1.0])
    with pytest.raises(ValueError, match="rows to score: " + message + "-1, 4$"):
        m.log_prob(bad)  # no advice to redeclare: the fitted model's codes judge them
    with pytest.raises(ValueError, match="factual data: " + message + "-1, 4"):
        m.counterfactual(bad, {"y": 0.0})
    with pytest.raises(ValueError, match="intervention: " + message + "7"):
        m.counterfactual(good, {"t": np.array([np.nan, 7.0, np.nan, 0.0])})
    with pytest.raises(ValueError, match="data: " + message + "4"):
        SCM(graph, {"t": CategoricalMechanism(1, 0, categories=3), "y": "linear"}).fit(
            bad.assign(t=[0.0, 4.0, 1.0, 2.0]), epochs=2, progress=False)
    cf = m.counterfactual(good, {"t": np.array([1.0, 2.0, 0.0, 0.0])})
    assert cf["t"].tolist() == [1.0, 2.0, 0.0, 0.0]
