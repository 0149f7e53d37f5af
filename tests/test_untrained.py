"""Queries on mechanisms built by name and never fitted warn (``scm.untrained``)."""

import warnings

import numpy as np
import pandas as pd
import pytest

from scm import SCM, LinearGaussian

GRAPH = {"x": [], "y": ["x"]}


def _rows(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "y": 2 * x + rng.normal(size=n)})


def test_every_query_on_an_unfitted_scm_warns_naming_the_nodes():
    scm = SCM(GRAPH, "flow")
    df = _rows(20)
    queries = [
        ("sample", lambda: scm.sample(10)),
        ("sample", lambda: scm.do({"x": 1.0}).sample(10)),
        ("ate", lambda: scm.ate("x", "y", n=100)),
        ("counterfactual", lambda: scm.counterfactual(df, {"x": 0.0})),
        ("log_prob", lambda: scm.log_prob(df)),
        ("abduct", lambda: scm.abduct(df)),
    ]
    for name, query in queries:
        with pytest.warns(UserWarning, match=rf"^{name}: the mechanisms of x, y were built by "
                          "name and never fitted"):
            query()


def test_fitted_loaded_and_hand_set_mechanisms_do_not_warn(tmp_path):
    df = _rows()
    fitted = SCM(GRAPH, "linear").fit(df, progress=False)
    fitted.save(tmp_path / "m")
    hand_set = SCM(GRAPH, {"x": LinearGaussian(1, 0), "y": LinearGaussian(1, 1, weight=[[2.0]])})
    mixed = SCM(GRAPH, "linear")
    mixed.mechanisms["x"] = LinearGaussian(1, 0)  # the user's own now; y is still unfitted
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for scm in (fitted, SCM.load(tmp_path / "m"), hand_set):
            scm.sample(10)
            scm.counterfactual(df.iloc[:5], {"x": 0.0})
    with pytest.warns(UserWarning, match=r"^sample: the mechanisms of y were built"):
        mixed.sample(10)
