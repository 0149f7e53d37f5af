"""Interventions as data: parse what a user writes into per-row actions on nodes.

One parser serves the fitted :class:`~scm.SCM` (torch) and the ground-truth zoo (numpy),
so both read ``{"x1": 1.0}``, ``{"x1": per_row_values}`` and ``{"x2": lambda v: v + 0.5}``
the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Interventions = Mapping[str, Any]


@dataclass(frozen=True)
class Action:
    """One node's intervention, resolved for ``n`` rows.

    Exactly one of ``value`` and ``shift`` is set.

    Attributes:
        value: hard values, shape ``(n, dim)``; rows where ``mask`` is False are unused.
        mask: bool ``(n,)``: the rows this action applies to (NaN rows are not intervened).
        shift: soft intervention ``v -> shift(v)`` applied to the mechanism's output
            (shape ``(n, dim)`` in, same shape out).
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


def resolve(interventions: Interventions, dims: Mapping[str, int], n: int) -> dict[str, Action]:
    """Return one :class:`Action` per intervened node, values broadcast to ``(n, dim)``.

    A value may be a number, a vector of the node's width, one value per row
    (``(n,)`` for scalar nodes, ``(n, dim)`` for vector nodes; NaN rows are left
    alone), or a callable (a soft intervention on the mechanism's output).
    """
    check_targets(interventions, dims)
    actions: dict[str, Action] = {}
    for name, spec in interventions.items():
        if callable(spec):
            actions[name] = Action(value=None, mask=np.ones(n, dtype=bool), shift=spec)
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


def _as_rows(name: str, spec: Any, dim: int, n: int) -> np.ndarray:
    try:
        arr = np.asarray(_to_numpy(spec), dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"intervention on {name!r} must be a number, an array or a callable, got {spec!r}"
        ) from err
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
