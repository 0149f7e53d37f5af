"""Columns with a point mass: many rows at one value (zero earnings, a detection limit).

``"auto"`` gives a scalar node whose smallest value holds a point mass a
:class:`~scm.mechanisms.hurdle.HurdleMechanism` (the atom plus a flow above it); a declared
continuous mechanism on such a column is warned about, and values below a hurdle node's atom
(which the model gives probability zero) are refused where they are read.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from scm.mechanisms.hurdle import HurdleMechanism

if TYPE_CHECKING:
    from scm.scm import SCM

POINT_MASS_SHARE = 0.05
"""The share of the rows one value must hold to be a point mass..."""

POINT_MASS_RATIO = 5.0
"""...and how many times the share of the next most frequent value. A continuous column holds
each value once; a count or a rounded column repeats many (Poisson(3) has 5% zeros and 22%
threes: a count, not a point mass, and left to a flow). Zero-inflated or floor-censored
columns hold one value many times and the others about once."""

MIN_LEVELS = 11
"""Columns of fewer distinct values are codes or small counts (:data:`scm.auto.MAX_AUTO_CATEGORIES`
and below are made categorical or warned about), not a point mass in a continuous spread."""


def point_mass(v: Tensor) -> tuple[str, float, float] | None:
    """``(end, value, share)`` when the column ``v (n, 1)`` has a point mass at its smallest
    (``end="min"``) or largest (``"max"``) value, by :data:`POINT_MASS_SHARE`,
    :data:`POINT_MASS_RATIO` and :data:`MIN_LEVELS`; else ``None``."""
    values, counts = torch.unique(v.flatten(), return_counts=True)
    if len(values) < MIN_LEVELS:
        return None
    shares = counts.double() / counts.sum()
    for end, i in (("min", 0), ("max", len(values) - 1)):
        rest = torch.cat([shares[:i], shares[i + 1:]])
        if shares[i] >= POINT_MASS_SHARE and shares[i] >= POINT_MASS_RATIO * rest.max():
            return end, float(values[i]), float(shares[i])
    return None


def hurdle_for_point_masses(
    scm: SCM, rows: Mapping[str, Tensor], stacklevel: int = 4
) -> list[str]:
    """Give every scalar ``"auto"`` node whose ``rows`` (``{node: (n, 1)}``) have a point mass
    at their smallest value (:func:`point_mass`) a :class:`HurdleMechanism`; the node leaves
    :attr:`SCM.auto_nodes` (nothing is left to choose). Returns those nodes. A point mass at
    the largest value is warned about (``stacklevel`` as in :func:`warnings.warn`, counted from
    here): negating the column puts it at the smallest."""
    nodes = []
    for k in sorted(scm.auto_nodes):
        if scm.dims[k] != 1 or scm.mechanisms[k].kind == "categorical":
            continue
        mass = point_mass(rows[k])
        if mass is None:
            continue
        if mass[0] == "min":
            scm.mechanisms[k] = seeded_hurdle(scm, k)
            scm.auto_nodes.discard(k)
            nodes.append(k)
        else:
            warnings.warn(_max_message(k, mass), UserWarning, stacklevel=stacklevel)
    return nodes


def warn_if_point_mass(scm: SCM, node: str, v: Tensor, stacklevel: int) -> None:
    """Warn when declared continuous ``node`` (flow, additive, linear; not ``"auto"``'s) has
    rows ``v (n, 1)`` with a point mass (:func:`point_mass`), and say what to declare."""
    kind = scm.mechanisms[node].kind
    if node in scm.auto_nodes or kind not in ("flow", "additive", "linear") or v.shape[-1] != 1:
        return
    mass = point_mass(v)
    if mass is None:
        return
    end, value, share = mass
    if end == "max":
        warnings.warn(_max_message(node, mass), UserWarning, stacklevel=stacklevel)
        return
    warnings.warn(
        f"node {node!r} has {share:.0%} of its rows at its smallest value {value:g} (a point "
        f"mass), but its mechanism is a continuous {kind}, which spreads that mass (it samples "
        f"values below {value:g}, and interventions on its parents move it wrongly): declare "
        f"it 'hurdle' (cauflow fit --mechanism {node}=hurdle) or use mechanisms='auto'",
        UserWarning, stacklevel=stacklevel)


def _max_message(node: str, mass: tuple[str, float, float]) -> str:
    _, value, share = mass
    return (f"node {node!r} has {share:.0%} of its rows at its largest value {value:g} (a point "
            f"mass, e.g. a cap); cauflow models a point mass at a column's smallest value "
            f"('hurdle'): negate the column (-{node}) to put it there")


def check_declared_hurdles(scm: SCM, rows: Mapping[str, Tensor]) -> None:
    """``ValueError`` naming a declared hurdle node whose ``rows`` hold its smallest value
    once (no point mass to model) or fewer than two values above it."""
    for node in scm.nodes:
        if not isinstance(scm.mechanisms[node], HurdleMechanism):
            continue
        v = rows[node].flatten()
        at = v.min()
        on, above = int((v == at).sum()), int((v > at).sum())
        if on < 2 or above < 2:
            raise ValueError(
                f"node {node!r} is a hurdle (a point mass at its smallest value, here "
                f"{at.item():g}, plus a flow above it), but {on} row(s) hold that value and "
                f"{above} lie above it: it needs two or more of each; give the node a "
                "continuous mechanism ('flow', 'linear' or 'auto')")


def check_above_atoms(scm: SCM, values: Mapping[str, Any], what: str) -> None:
    """``ValueError`` naming the first hurdle node in ``values`` (tensors, arrays, numbers or
    frames; callables and NaN are skipped) with a value below its atom, which the fitted
    model gives probability zero (``what``: ``"rows to score"``, ``"factual data"``...)."""
    for node in scm.nodes:
        mech = scm.mechanisms[node]
        if not isinstance(mech, HurdleMechanism) or node not in values or callable(values[node]):
            continue
        value = values[node]
        if hasattr(value, "detach"):
            value = value.detach().cpu()
        v = np.asarray(value, dtype=np.float64)
        at = float(mech.at)
        bad = v[~np.isnan(v) & (v < at)]
        if bad.size:
            raise ValueError(
                f"{what}: node {node!r} is a hurdle with its point mass at {at:g}, the "
                f"smallest value of its training rows, and nothing below; got "
                f"{sorted(set(bad.tolist()))[:5]}")


def seeded_hurdle(scm: SCM, node: str) -> HurdleMechanism:
    """A :class:`HurdleMechanism` for ``node``, its initial weights from the SCM's seed (not
    the global stream), with the conditioner of the flow it replaces."""
    flow = scm.mechanisms[node]
    context_dim = sum(scm.dims[p] for p in scm.parents[node])
    options = {"bins": flow.bins, "hidden": flow.hidden, "activation": flow.activation} \
        if flow.kind == "flow" else {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(scm.seed + 1 + scm.nodes.index(node))
        return HurdleMechanism(1, context_dim, **options)
