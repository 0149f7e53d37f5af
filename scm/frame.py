"""DataFrames in and out: one column per scalar node, ``node[i]`` columns for vector nodes."""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from torch import Tensor


def columns_for(node: str, dim: int) -> list[str]:
    """Column names of a node: ``[node]`` if scalar, ``[node[0], ..., node[dim-1]]`` otherwise."""
    return [node] if dim == 1 else [f"{node}[{i}]" for i in range(dim)]


def check_frame(df: object, dims: Mapping[str, int], *, what: str = "data") -> np.ndarray:
    """Raise a one-line ``ValueError`` (or ``TypeError``) naming what is wrong with ``df``;
    returns its values as one float64 matrix ``(n, D)``, the nodes' columns in ``dims`` order."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise ValueError(f"{what} has zero rows")
    cols = [str(c) for c in df.columns]
    if len(set(cols)) != len(cols):
        raise ValueError(f"{what} has duplicate column names")
    unnamed = [c for c in cols if c.startswith("Unnamed") or c == ""]
    if unnamed:
        raise ValueError(
            f"{what} has unnamed columns {unnamed} (often a saved index: read the CSV with "
            "index_col=0 or drop them)"
        )
    expected = [c for n, d in dims.items() for c in columns_for(n, d)]
    if len(cols) != len(expected) or not set(expected) <= set(cols):
        _diagnose_columns(cols, expected, dims, what)
    dtypes = dict(zip(cols, df.dtypes, strict=True))
    for c in expected:
        dtype = dtypes[c]
        if not (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)):
            raise ValueError(f"column {c!r} of {what} is not numeric (dtype {dtype})")
    # One conversion of all columns: per-node DataFrame indexing cost more than the
    # counterfactual arithmetic on 500 rows (7 of 19 ms, 10-node DAG).
    position = {c: i for i, c in enumerate(cols)}
    values = df.to_numpy(dtype=np.float64)[:, [position[c] for c in expected]]
    bad = ~np.isfinite(values)
    if bad.any():
        j = int(np.argmax(bad.any(axis=0)))
        column = values[:, j]
        kind = "NaN" if np.isnan(column).any() else "infinite"
        raise ValueError(
            f"column {expected[j]!r} of {what} has {int(bad[:, j].sum())} {kind} value(s), "
            f"first at row {int(np.argmax(bad[:, j]))}"
        )
    return values


def _diagnose_columns(
    cols: list[str], expected: list[str], dims: Mapping[str, int], what: str
) -> None:
    """``ValueError`` naming the first missing, misshaped or extra column (the columns are
    known not to be exactly the nodes'; the per-node pattern search runs only then)."""
    for node, dim in dims.items():
        present = [c for c in cols if c == node or re.fullmatch(re.escape(node) + r"\[\d+\]", c)]
        if sorted(present) != sorted(columns_for(node, dim)):
            if not present:
                raise ValueError(f"{what} is missing the column for node {node!r}")
            raise ValueError(
                f"node {node!r} has dimension {dim}, so {what} needs columns "
                f"{columns_for(node, dim)}; got {present}"
            )
    known = set(expected)
    extra = [c for c in cols if c not in known]
    if extra:
        raise ValueError(f"{what} has columns that are not nodes: {extra}; drop them")


def to_tensors(
    df: pd.DataFrame, dims: Mapping[str, int], *, what: str = "data"
) -> dict[str, Tensor]:
    """Validate ``df`` and return ``{node: float tensor (n, dim)}`` (each its own memory)."""
    return split_columns(check_frame(df, dims, what=what), dims)


def split_columns(matrix: np.ndarray, dims: Mapping[str, int]) -> dict[str, Tensor]:
    """``{node: float tensor (n, dim)}`` from a matrix ``(n, D)`` of the nodes' columns in
    ``dims`` order (as :func:`check_frame` returns it)."""
    values = torch.as_tensor(matrix, dtype=torch.get_default_dtype())
    out, start = {}, 0
    for n, d in dims.items():
        out[n] = values[:, start : start + d].clone()
        start += d
    return out


def replace_columns(
    df: pd.DataFrame, matrix: np.ndarray, dims: Mapping[str, int], values: Mapping[str, Tensor]
) -> pd.DataFrame:
    """A float64 copy of ``df`` (same index and column order) with the columns of the nodes in
    ``values`` (``{node: (n, dim)}``) replaced; ``matrix`` is ``df``'s :func:`check_frame`
    matrix, so the other columns keep their values exactly. One DataFrame construction from
    one array: with per-column assignment, DataFrame handling took ~40% of a 500-row
    counterfactual on the triangle (profiled)."""
    out, start = matrix.copy(), 0
    for n, d in dims.items():
        if n in values:
            out[:, start : start + d] = values[n].detach().cpu().to(torch.float64).numpy()
        start += d
    expected = [c for n, d in dims.items() for c in columns_for(n, d)]
    position = {c: i for i, c in enumerate(expected)}
    order = [position[str(c)] for c in df.columns]
    return pd.DataFrame(out[:, order], index=df.index, columns=df.columns)


def to_frame(
    values: Mapping[str, Tensor], dims: Mapping[str, int], index: pd.Index | None = None
) -> pd.DataFrame:
    """Return a DataFrame with a column per scalar node and ``node[i]`` columns per vector node."""
    data: dict[str, np.ndarray] = {}
    for n, d in dims.items():
        arr = values[n].detach().cpu().to(torch.float64).numpy().reshape(-1, d)
        for c, col in zip(columns_for(n, d), arr.T, strict=True):
            data[c] = col
    return pd.DataFrame(data, index=index)
