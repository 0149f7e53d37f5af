"""Checking and encoding a table before it reaches causal-learn."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from scm.frame import non_numbers, non_numeric_message

DataKind = Literal["continuous", "discrete"]


def min_rows(d: int) -> int:
    """Fewest rows any method accepts for ``d`` columns: ``max(10, d + 2)``.

    Fisher's z uses ``sqrt(n - |S| - 3)`` with conditioning sets up to ``|S| = d - 2``
    (``causallearn.utils.cit.FisherZ``), and the BIC scores need a full-rank covariance, so
    ``n >= d + 2``; the floor of 10 keeps the tests' asymptotics from being meaningless.
    """
    return max(10, d + 2)


def _columns(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def prepare(df: pd.DataFrame, *, kind: DataKind, need: str) -> tuple[np.ndarray, list[str]]:
    """Validate ``df`` and return ``(x, names)`` ready for causal-learn.

    Args:
        df: one column per variable, one row per sample; numeric (True/False as 0/1) or
            categorical columns.
        kind: ``"continuous"`` (numeric columns as floats) or ``"discrete"`` (each column
            encoded as integer codes ``0..k-1``: categories, booleans or integer values).
        need: what asks for this kind, for error messages (e.g. ``"test='fisherz'"``).

    Returns:
        ``x`` of shape ``(n, d)``, float64, and the column names as strings.

    Raises:
        TypeError: when ``df`` is not a DataFrame.
        ValueError: (one line each) fewer than two columns, duplicate names, too few rows,
            NaN or inf, numbers with a few cells that are not (such as ``'?'``; named
            by :func:`scm.frame.non_numeric_message`), a column of the wrong kind, a
            constant column, or (for continuous data) columns that are exact linear
            functions of each other (:data:`COLLINEAR_TOL`).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(df).__name__}")
    names = [str(c) for c in df.columns]
    n, d = df.shape
    if d < 2:
        sep = next((c for c in (";", "\t") if d == 1 and c in names[0]), None)
        hint = (f": its one column {names[0]!r} looks separated by {sep!r}; read it with "
                f"pd.read_csv(path, sep={sep!r}) or save it with commas") if sep else ""
        raise ValueError(f"data needs at least 2 columns to learn a graph, got {d}{hint}")
    if len(set(names)) != d:
        dupes = sorted({c for c in names if names.count(c) > 1})
        raise ValueError(f"column names must be unique, got duplicates {_columns(dupes)}")
    unnamed = [c for c in names if c.startswith("Unnamed") or c == ""]
    if unnamed:  # as SCM.fit refuses them: a saved index would enter the graph as a variable
        raise ValueError(
            f"data has unnamed columns {_columns(unnamed)} (often a saved index: read the CSV "
            "with index_col=0 or drop them)"
        )
    if n < min_rows(d):
        raise ValueError(
            f"data has {n} rows but {need} on {d} columns needs at least {min_rows(d)} "
            "(max(10, columns + 2)); collect more rows or drop columns"
        )
    missing = [c for c, m in zip(names, df.isna().any(), strict=True) if m]
    if missing:
        raise ValueError(
            f"column(s) {_columns(missing)} contain NaN/missing values; drop or impute them first"
        )
    numeric = [is_numeric_dtype(df[c]) for c in df.columns]  # True/False included, as 0/1
    for c, col, num in zip(names, df.columns, numeric, strict=True):
        # a few cells such as '?' among numbers are missing values, not categories
        if not num and (bad := non_numbers(df[col])) is not None:
            if len(bad) or kind == "continuous":  # codes stored as text are categories
                raise ValueError(non_numeric_message(df[col], c, "data"))
    infinite = [
        c
        for c, col, num in zip(names, df.columns, numeric, strict=True)
        if num and not np.isfinite(df[col].to_numpy(dtype=np.float64)).all()
    ]
    if infinite:
        raise ValueError(f"column(s) {_columns(infinite)} contain inf values; remove those rows")
    constant = [c for c, k in zip(names, df.nunique(), strict=True) if k < 2]
    if constant:
        raise ValueError(
            f"column(s) {_columns(constant)} are constant; a constant has no causes or effects "
            "to learn, drop it"
        )
    if kind == "continuous":
        return _continuous(df, names, numeric, need), names
    return _discrete(df, names, numeric, need), names


def _continuous(df: pd.DataFrame, names: list[str], numeric: list[bool], need: str) -> np.ndarray:
    categorical = [c for c, num in zip(names, numeric, strict=True) if not num]
    if categorical:
        hint = (
            "use test='chisq' or test='gsq' (method 'pc' or 'fci') or score='bdeu'"
            " for categorical data, or encode the columns as numbers"
        )
        raise ValueError(
            f"column(s) {_columns(categorical)} are categorical but {need} needs numeric "
            f"columns; {hint}"
        )
    # Exactly what a user calling causal-learn would pass (same memory layout too: FastICA's
    # result can depend on it when it does not converge).
    x = df.to_numpy(dtype=np.float64)
    _check_collinear(x, names)
    return x


COLLINEAR_TOL = 1e-9
"""Columns whose correlation matrix has an eigenvalue below this are refused as collinear.

For two columns the smallest eigenvalue is ``1 - |r|``. An exact copy or ``2 * x1 + 1`` made
causal-learn's Fisher z fail with "Data correlation matrix is singular"; ``1000 * x1`` and
``x1 / 3`` passed its inversion and PC silently dropped the true edge ``x1 --- x2``."""


def _check_collinear(x: np.ndarray, names: list[str]) -> None:
    """``ValueError`` naming columns that are (numerically) exact linear functions of others."""
    corr = np.corrcoef(x, rowvar=False)
    eigenvalues, vectors = np.linalg.eigh(corr)
    if eigenvalues[0] >= COLLINEAR_TOL:
        return
    i, j = np.nonzero(np.triu(np.abs(corr) > 1.0 - COLLINEAR_TOL, k=1))
    if len(i):
        pairs = [f"{names[a]!r} and {names[b]!r}" for a, b in zip(i, j, strict=True)]
        more = f" (and {len(pairs) - 3} more pairs)" if len(pairs) > 3 else ""
        raise ValueError(
            f"columns {', '.join(pairs[:3])}{more} are exact linear functions of each other "
            "(|correlation| = 1), which makes the tests and scores degenerate; drop one of each"
        )
    involved = [names[k] for k in np.nonzero(np.abs(vectors[:, 0]) > 1e-6)[0]]
    raise ValueError(
        f"column(s) {_columns(involved)} are an exact linear combination of each other (their "
        "correlation matrix is singular); drop one of them"
    )


def _discrete(df: pd.DataFrame, names: list[str], numeric: list[bool], need: str) -> np.ndarray:
    fractional = [
        c
        for c, col, num in zip(names, df.columns, numeric, strict=True)
        if num and not np.all(np.mod(df[col].to_numpy(dtype=np.float64), 1.0) == 0.0)
    ]
    if fractional:
        raise ValueError(
            f"column(s) {_columns(fractional)} have non-integer values but {need} needs discrete "
            "columns; discretise them (pandas.cut) or use test='fisherz'/'kci' or score='bic'"
        )
    # Integer codes 0..k-1 per column, in sorted order of the column's values.
    codes = [pd.factorize(df[col], sort=True)[0] for col in df.columns]
    return np.column_stack(codes).astype(np.float64)
