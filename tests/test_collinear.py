"""Collinear parents draw a warning at fit time (``scm.collinear``)."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from scm import SCM
from scm.collinear import collinear_columns


def test_a_total_beside_its_parts_is_flagged_and_a_noisy_relative_is_not():
    """x3 = x1 + x2 exactly: each of the three is explained by the other two (R² 1); a
    column correlated .95 with another (R² .90) is not flagged."""
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=(2, 1000))
    parts = {"x1": x1, "x2": x2, "x3": x1 + x2}
    found = collinear_columns({k: torch.tensor(v) for k, v in parts.items()})
    assert set(found) == {"x1", "x2", "x3"} and min(found.values()) > 0.9999
    noisy = {"a": x1, "b": 0.95 * x1 + np.sqrt(1 - 0.95**2) * x2}
    assert collinear_columns({k: torch.tensor(v) for k, v in noisy.items()}) == {}


def test_fit_warns_naming_duplicated_parents():
    """x2 = 2 x1 and y = x1 + noise: y's parents x1 and x2 cannot be told apart (linear
    answered E[y | do(x2=1)] - E[y | do(x2=0)] = .27 against a true 0)."""
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=500)
    df = pd.DataFrame({"x1": x1, "x2": 2 * x1, "y": x1 + rng.normal(size=500)})
    with pytest.warns(UserWarning, match=r"node 'y': its parents' columns x1, x2 are collinear"):
        SCM({"x1": [], "x2": ["x1"], "y": ["x1", "x2"]}, "linear").fit(df, progress=False)


def test_separable_parents_and_vector_coordinates():
    """Correlated parents with their own noise fit without a warning; a vector parent whose
    two coordinates are copies is named by coordinate."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=500)
    b = 0.9 * a + 0.5 * rng.normal(size=500)
    df = pd.DataFrame({"a": a, "b": b, "y": a - b + rng.normal(size=500)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SCM({"a": [], "b": ["a"], "y": ["a", "b"]}, "linear").fit(df, progress=False)
    z = rng.normal(size=500)
    vec = pd.DataFrame({"z[0]": z, "z[1]": z, "y": z + rng.normal(size=500)})
    with pytest.warns(UserWarning, match=r"node 'y': its parents' columns z\[0\], z\[1\]"):
        SCM({"z": [], "y": ["z"]}, "linear", dims={"z": 2}).fit(vec, progress=False)
