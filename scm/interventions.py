"""Interventions as data: parse what a user writes into per-row actions on nodes.

One parser serves the fitted :class:`~scm.SCM` (torch) and the ground-truth zoo (numpy),
so both read ``{"x1": 1.0}``, ``{"x1": per_row_values}`` and ``{"x2": lambda v: v + 0.5}``
the same way.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scm.frame import columns_for

Interventions = Mapping[str, Any]


@dataclass(frozen=True)
class Action:
    """One node's intervention, resolved for ``n`` rows.

    Exactly one of ``value`` and ``shift`` is set.

    Attributes:
        value: hard values, shape ``(n, dim)``; rows where ``mask`` is False are unused.
        mask: bool ``(n,)``: the rows this action applies to (NaN rows are not intervened).
        shift: soft intervention ``v -> shift(v)`` applied to the mechanism's output
            (shape ``(n, dim)`` in, a shape that broadcasts to ``(n, dim)`` out).
    """

    value: np.ndarray | None
    mask: np.ndarray
    shift: Callable[[Any], Any] | None = None

    @property
    def is_hard(self) -> bool:
        return self.shift is None

    @property
    def all_rows(self) -> bool:
        return bool(self.mask.all())


def check_targets(interventions: Interventions, dims: Mapping[str, int]) -> None:
    """Raise ``ValueError`` if an intervention names a node that is not in ``dims``."""
    if not isinstance(interventions, Mapping):
        raise TypeError(
            f"interventions must be a dict {{node: value}}, got {type(interventions).__name__}"
        )
    for name in interventions:
        if name not in dims:
            raise ValueError(f"intervention on unknown node {name!r}; the nodes are {list(dims)}")


def check_interventions(interventions: Interventions, dims: Mapping[str, int]) -> int | None:
    """Raise what :func:`resolve` would raise for ``interventions``, before any rows are drawn;
    returns the row count of their per-row values (None if every value broadcasts)."""
    rows = rows_of(interventions, dims)
    resolve(interventions, dims, rows or 1)
    return rows


def check_n(n: object) -> int:
    """Return the row count ``n`` of a query as an int; ``ValueError`` unless a positive int."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return int(n)


def align_rows(
    interventions: Interventions, dims: Mapping[str, int], index: pd.Index
) -> dict[str, Any]:
    """Return ``interventions`` with per-row values given with row labels put in the order of
    ``index``, the factual rows' labels.

    A Series (for a scalar node) or a DataFrame whose index holds the labels of ``index``,
    each once, is reindexed to it; one with other labels raises ``ValueError``. Arrays,
    lists and tensors carry no labels: their rows are read by position.
    """
    check_targets(interventions, dims)
    return {name: _aligned(name, spec, dims[name], index) for name, spec in interventions.items()}


def _aligned(name: str, spec: Any, dim: int, index: pd.Index) -> Any:
    labelled = isinstance(spec, pd.DataFrame) or (isinstance(spec, pd.Series) and dim == 1)
    if not labelled or spec.index.equals(index):
        return spec
    same_labels = (
        len(spec.index) == len(index) and spec.index.is_unique and index.is_unique
        and bool(index.isin(spec.index).all())
    )
    if not same_labels:
        raise ValueError(
            f"intervention values for {name!r} are a {type(spec).__name__} whose index does "
            "not match the factual rows' index"
        )
    return spec.reindex(index)


def resolve(interventions: Interventions, dims: Mapping[str, int], n: int) -> dict[str, Action]:
    """Return one :class:`Action` per intervened node, values broadcast to ``(n, dim)``.

    A value may be a number, a vector of the node's width, one value per row
    (``(n,)`` for scalar nodes, ``(n, dim)`` for vector nodes; NaN rows are left
    alone), or a callable (a soft intervention on the mechanism's output, which may return
    anything that broadcasts to ``(n, dim)``, or ``(n,)`` for a scalar node).
    """
    check_targets(interventions, dims)
    actions: dict[str, Action] = {}
    for name, spec in interventions.items():
        if callable(spec):
            shift = _checked_shift(name, spec)
            actions[name] = Action(value=None, mask=np.ones(n, dtype=bool), shift=shift)
            continue
        value = _as_rows(name, spec, dims[name], n)
        nan = np.isnan(value)
        partly = nan.any(axis=1) & ~nan.all(axis=1)
        if partly.any():
            raise ValueError(
                f"intervention on {name!r}: row {int(np.argmax(partly))} is partly NaN; "
                "a row of a vector node is intervened whole or not at all"
            )
        if np.isinf(value).any():
            raise ValueError(f"intervention on {name!r} has infinite values")
        actions[name] = Action(value=value, mask=~nan.any(axis=1))
    return actions


def _checked_shift(name: str, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``fn`` with its result checked against the node's value ``v (n, dim)`` (numpy or torch):
    ``(n,)`` for a scalar node is returned as ``(n, 1)``; a result that does not broadcast
    to ``(n, dim)`` raises ``ValueError`` naming the node and both shapes."""

    def shift(v: Any) -> Any:
        out = fn(v)
        n, dim = tuple(v.shape)
        shape = tuple(np.shape(out))
        if dim == 1 and shape == (n,):
            return (out if hasattr(out, "shape") else np.asarray(out))[:, None]
        try:
            fits = np.broadcast_shapes(shape, (n, dim)) == (n, dim)
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"soft intervention on {name!r} returned shape {shape}; "
                f"expected (n, {dim}) = ({n}, {dim})"
            )
        return out

    return shift


def _as_rows(name: str, spec: Any, dim: int, n: int) -> np.ndarray:
    if spec is None:
        raise TypeError(f"intervention on {name!r} is None; give a number, an array or a callable")
    spec = _columns_by_label(name, spec, dim)
    try:
        raw = np.asarray(_to_numpy(spec))
        arr = raw.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"intervention on {name!r} must be a number, an array or a callable, got {spec!r}"
        ) from err
    text = [v for v in raw.flat if isinstance(v, str | bytes)] if raw.dtype.kind in "USO" else []
    if text:  # numpy reads "1.0" as 1.0: text (a CSV cell, an argument) passed silently
        raise ValueError(
            f"intervention on {name!r} must be a number, an array or a callable, got the text "
            f"{str(text[0])!r}; convert it first (float(...), pd.to_numeric(...))"
        )
    whole = arr.ndim == 0 or (arr.ndim == 1 and dim > 1) or arr.shape[0] == 1
    if whole and np.isnan(arr).any():
        raise ValueError(
            f"intervention on {name!r} is NaN; NaN is only for leaving some rows of per-row "
            "values alone"
        )
    if arr.ndim == 0:
        return np.full((n, dim), float(arr))
    if arr.ndim == 1 and dim > 1 and arr.shape[0] == dim:
        return np.broadcast_to(arr, (n, dim)).copy()
    if arr.ndim == 1 and dim == 1:
        arr = arr[:, None]
    if arr.ndim == 2 and arr.shape[1] == dim and arr.shape[0] in (1, n):
        return np.broadcast_to(arr, (n, dim)).copy()
    raise ValueError(
        f"intervention on {name!r} has shape {tuple(np.shape(arr))}; node {name!r} has "
        f"dimension {dim}, so give a number, a vector of length {dim} or one value per row "
        f"(shape ({n}, {dim}))"
    )


def _columns_by_label(name: str, spec: Any, dim: int) -> Any:
    """A vector node's values in its column order ``name[0], ..., name[dim-1]``: a DataFrame
    (rows of values) with those columns in any order, or a Series (one value) with that
    index, is reordered; a DataFrame with other columns raises ``ValueError`` (its columns
    cannot be matched to the node's); anything else is returned as it is (read by position)."""
    if dim == 1 or not isinstance(spec, pd.Series | pd.DataFrame):
        return spec
    labels = columns_for(name, dim)
    given = spec.columns if isinstance(spec, pd.DataFrame) else spec.index
    if set(given) == set(labels) and len(given) == dim:
        return spec[labels]
    if isinstance(spec, pd.DataFrame):
        raise ValueError(
            f"intervention values for vector node {name!r} are a DataFrame with columns "
            f"{[str(c) for c in given]}; name them {labels} (any order) or pass an array"
        )
    return spec


def _to_numpy(spec: Any) -> Any:
    if hasattr(spec, "detach"):  # a torch tensor, without importing torch here
        return spec.detach().cpu().numpy()
    if hasattr(spec, "to_numpy"):  # a pandas Series / DataFrame
        return spec.to_numpy()
    return spec


def rows_of(interventions: Interventions, dims: Mapping[str, int]) -> int | None:
    """Return the row count implied by per-row intervention values (None if all broadcast)."""
    check_targets(interventions, dims)
    counts = set()
    for name, spec in interventions.items():
        if callable(spec):
            continue
        shape = np.shape(_to_numpy(spec))
        is_one_vector = len(shape) == 1 and dims[name] > 1
        if len(shape) >= 1 and shape[0] > 1 and not is_one_vector:
            counts.add(shape[0])
    if len(counts) > 1:
        raise ValueError(f"per-row interventions disagree on the number of rows: {sorted(counts)}")
    return counts.pop() if counts else None
