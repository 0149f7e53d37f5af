"""Ground-truth counterfactual factors of a scene: abduction, action, prediction.

Every downstream factor ``x`` of our image sets is ``x = f(parents) + u`` with an additive
exogenous term ``u`` (the water noise of the flow set; zero up to float rounding elsewhere).
:func:`counterfactual_factors` abducts ``u = x - f(parents)`` from the factual factors, sets the
intervened factors, and recomputes every descendant with its ``u`` held fixed, in topological
order. A factor none of whose ancestors changed keeps its factual value exactly, so the identity
intervention returns the factual factors bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from graphlib import TopologicalSorter

import numpy as np
from numpy.typing import ArrayLike

#: A structural equation: parent values (each of shape ``(n,)``) -> child value ``(n,)``.
Equation = Callable[[Mapping[str, np.ndarray]], np.ndarray]


def as_factor_matrix(factors: ArrayLike, names: tuple[str, ...]) -> np.ndarray:
    """``factors`` as a float64 array of shape ``(n, len(names))``; a single scene ``(k,)`` is
    read as ``(1, k)``. Raises ``ValueError`` naming the expected columns otherwise."""
    array = np.asarray(factors, dtype=np.float64)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != len(names):
        raise ValueError(
            f"factors must have shape (n, {len(names)}) with columns {names}; "
            f"got shape {np.shape(factors)}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError("factors must be finite; got NaN or infinite values")
    return array


def counterfactual_factors(
    factors: ArrayLike,
    interventions: Mapping[str, ArrayLike],
    *,
    names: tuple[str, ...],
    graph: Mapping[str, tuple[str, ...]],
    equations: Mapping[str, Equation],
) -> np.ndarray:
    """Factors of the same scenes after ``do(name := value, ...)``, by the true equations.

    Args:
        factors: factual factors, shape ``(n, k)`` (or ``(k,)``), columns in ``names`` order.
        interventions: factor name -> value, a scalar or shape ``(n,)``. An intervention on a
            downstream factor sets it as given and leaves its parents alone.
        names: the ``k`` factor names.
        graph: child -> parents for every factor (roots map to ``()``).
        equations: child -> its equation ``f(parents)``, for every factor with parents.

    Returns:
        Counterfactual factors, float64, shape ``(n, k)``.

    Example:
        >>> graph = {"a": (), "b": ("a",)}
        >>> eqs = {"b": lambda pa: 2 * pa["a"]}
        >>> counterfactual_factors([[1.0, 2.5]], {"a": 3.0}, names=("a", "b"), graph=graph,
        ...                        equations=eqs)
        array([[3. , 6.5]])
    """
    factual = as_factor_matrix(factors, names)
    unknown = sorted(set(interventions) - set(names))
    if unknown:
        raise ValueError(f"interventions name unknown factors {unknown}; factors are {names}")
    column = {name: i for i, name in enumerate(names)}
    new = factual.copy()
    changed = np.zeros(factual.shape, dtype=bool)
    for name in TopologicalSorter(dict(graph)).static_order():
        i = column[name]
        if name in interventions:
            value = np.asarray(interventions[name], dtype=np.float64)
            try:
                new[:, i] = np.broadcast_to(value, (len(factual),))
            except ValueError:
                raise ValueError(
                    f"intervention value for {name!r} must be a scalar or have shape "
                    f"({len(factual)},); got shape {value.shape}"
                ) from None
            if not np.all(np.isfinite(new[:, i])):
                raise ValueError(f"intervention value for {name!r} must be finite")
        elif graph[name]:
            moved = np.any(changed[:, [column[p] for p in graph[name]]], axis=1)
            if not moved.any():
                continue
            f = equations[name]
            old_parents = {p: factual[:, column[p]] for p in graph[name]}
            new_parents = {p: new[:, column[p]] for p in graph[name]}
            noise = factual[:, i] - f(old_parents)
            new[:, i] = np.where(moved, f(new_parents) + noise, factual[:, i])
        changed[:, i] = new[:, i] != factual[:, i]
    return new
