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
        if not pd.api.types.is_numeric_dtype(dtypes[c]):  # True/False columns are, as 0/1
            raise ValueError(non_numeric_message(df[df.columns[cols.index(c)]], c, what))
    # One conversion of all columns: per-node DataFrame indexing cost more than the
    # counterfactual arithmetic on 500 rows (7 of 19 ms, 10-node DAG).
    position = {c: i for i, c in enumerate(cols)}
    values = df.to_numpy(dtype=np.float64)[:, [position[c] for c in expected]]
    bad = ~np.isfinite(values)
    if bad.any():
        j = int(np.argmax(bad.any(axis=0)))
        column = values[:, j]
        kind = "NaN" if np.isnan(column).any() else "infinite"
        remedy = "drop those rows (df.dropna()) or fill them" if kind == "NaN" else (
            "drop those rows or replace the values")
        raise ValueError(
            f"column {expected[j]!r} of {what} has {int(bad[:, j].sum())} {kind} value(s), "
            f"first at row {int(np.argmax(bad[:, j]))}; {remedy}"
        )
    return values


def non_numbers(column: pd.Series) -> pd.Series | None:
    """The cells of ``column`` that are not missing and do not parse as numbers
    (:func:`pandas.to_numeric`), when most of its other cells do (an empty Series when all do);
    None for a column of text, whose cells mostly do not, and for a dtype other than object
    or string (categories, dates)."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype) or not (
        pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)
    ):
        return None
    parsed = pd.to_numeric(column, errors="coerce")
    bad = column[parsed.isna() & column.notna()]
    return bad if int(parsed.notna().sum()) > len(bad) else None


def non_numeric_message(column: pd.Series, name: str, what: str) -> str:
    """A one-line message for a column of ``what`` whose dtype is not numeric: for numbers
    with a few other cells (:func:`non_numbers`), how many, the first one's row label and
    value, and how to read them as missing; else ``column ... is not numeric (dtype ...)``."""
    start = f"column {name!r} of {what} is not numeric (dtype {column.dtype})"
    bad = non_numbers(column)
    if bad is None:
        return start
    if len(bad) == 0:
        return (f"{start} although its cells are numbers; convert it with "
                f"df[{name!r}] = pd.to_numeric(df[{name!r}])")
    markers = list(dict.fromkeys(str(v) for v in bad))[:5]
    label = bad.index[0].item() if isinstance(bad.index[0], np.generic) else bad.index[0]
    return (
        f"{start}: {len(bad)} of {len(column)} cells are not numbers, the first at row "
        f"{label!r} holding {str(bad.iloc[0])!r}; read them as missing with "
        f"pd.read_csv(..., na_values={markers!r}) (or pd.to_numeric(df[{name!r}], "
        "errors='coerce')), then drop or fill those rows"
    )


def _diagnose_columns(
    cols: list[str], expected: list[str], dims: Mapping[str, int], what: str
) -> None:
    """``ValueError`` naming the first missing, misshaped or extra column (the columns are
    known not to be exactly the nodes'; the per-node pattern search runs only then)."""
    for node, dim in dims.items():
        present = [c for c in cols if c == node or re.fullmatch(re.escape(node) + r"\[\d+\]", c)]
        if sorted(present) != sorted(columns_for(node, dim)):
            if not present:
                raise ValueError(_missing_message(node, cols, dims, what))
            raise ValueError(
                f"node {node!r} has dimension {dim}, so {what} needs columns "
                f"{columns_for(node, dim)}; got {present}"
            )
    known = set(expected)
    extra = [c for c in cols if c not in known]
    if extra:
        raise ValueError(f"{what} has columns that are not nodes: {extra}; drop them")


def _missing_message(node: str, cols: list[str], dims: Mapping[str, int], what: str) -> str:
    """The message for a node without a column: the columns read (at most 8) and the likely
    cause: a file separated by ``;`` or tabs read as one column, or columns that name the
    nodes up to spaces, case or punctuation (with the ``df.rename`` that fixes them)."""
    shown = ", ".join(repr(c) for c in cols[:8]) + (
        f" and {len(cols) - 8} more" if len(cols) > 8 else "")
    message = f"{what} is missing the column for node {node!r}; its columns are {shown}"
    if len(cols) == 1 and (sep := next((s for s in (";", "\t") if s in cols[0]), None)):
        return (f"{message}: the file looks separated by {sep!r}; read it with "
                f"pd.read_csv(path, sep={sep!r}) or save it with commas")
    loose = {_loose(c): c for c in cols if c not in dims}
    rename = {loose[_loose(n)]: n for n, d in dims.items()
              if d == 1 and n not in cols and _loose(n) in loose}
    if node in rename.values():
        return (f"{message}: columns name the nodes up to spaces, case or punctuation; rename "
                f"them, df = df.rename(columns={rename!r}) (or edit the CSV header)")
    return message


def _loose(name: str) -> str:
    """``name`` in lower case without spaces, underscores or punctuation: ``' Mean radius'``,
    ``'mean_radius'`` and ``'MeanRadius'`` are alike."""
    return re.sub(r"[\W_]+", "", name).casefold()


def identifier_for(name: str) -> str:
    """A Python identifier close to ``name`` (a CSV header, say): each run of characters an
    identifier cannot hold becomes one ``'_'`` (none at the ends), and a name that would start
    with a digit gets an ``'x'`` in front: ``'mean radius'`` -> ``'mean_radius'``,
    ``'od280/od315'`` -> ``'od280_od315'``, ``'1st'`` -> ``'x1st'``."""
    out = re.sub(r"\W+", "_", name)
    out = out[1:] if re.match(r"\W", name) else out
    out = out[:-1] if re.search(r"\W$", name) else out
    out = "".join(c if ("_" + c).isidentifier() else "_" for c in out)  # \w admits a few more
    return out if out.isidentifier() else "x" + out


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
