"""Columns with point masses: many rows at the smallest or largest value (zero earnings, a
detection limit, a top code, a score's ceiling).

``"auto"`` gives a scalar node with such an atom at either end, or both, a
:class:`~scm.mechanisms.hurdle.HurdleMechanism` (the atoms plus a flow between); a node declared
``"hurdle"`` by name takes the ends its rows show; a declared continuous mechanism on such a
column is warned about; values beyond a hurdle node's atoms (which the model gives probability
zero) are refused where they are read; and samples and counterfactuals give the atoms back
exactly as the data wrote them (the model computes in float32: 0.05 would be 0.0500000007).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from scm.mechanisms.hurdle import HurdleMechanism, exact

if TYPE_CHECKING:
    from scm.scm import SCM

POINT_MASS_SHARE = 0.05
"""The share of the rows an end value must hold to be a point mass..."""

POINT_MASS_RATIO = 5.0
"""...and how many times the share of the most frequent value between the ends. A continuous
column holds each value once; a count or a rounded column repeats many (Poisson(3) has 5%
zeros and 22% threes: a count, not a point mass, and left to a flow). Zero-inflated, censored
or clipped columns hold an end value many times and the others about once. The two ends are
judged separately, against the values between them (a column clipped to [0, 1] holds ~20% at
each end)."""

MIN_LEVELS = 11
"""Columns of fewer distinct values are codes or small counts (categorical or warned about
under ``"auto"``), not point masses beside a continuous spread, unless every value between the
ends occurs once (a near-total atom beside a few measurements: 99.75% zeros and 5 values)."""

DECLARED_MIN_BETWEEN = 10
"""Rows a declared hurdle needs between its atoms (so that the training split keeps some)."""


def point_masses(v: Tensor) -> dict[str, tuple[float, float]]:
    """``{"min" and/or "max": (value, share)}``: the ends of the column ``v (n, 1)`` that hold
    a point mass by :data:`POINT_MASS_SHARE`, :data:`POINT_MASS_RATIO` and
    :data:`MIN_LEVELS` (empty if neither does)."""
    v = v.flatten()
    if max(int((v == v.min()).sum()), int((v == v.max()).sum())) < POINT_MASS_SHARE * len(v):
        return {}  # neither end can be one (a continuous column: skips the sort below)
    values, counts = torch.unique(v, return_counts=True)
    between = counts[1:-1]
    if len(between) == 0:
        return {}
    if len(values) < MIN_LEVELS and not (len(between) >= 3 and bool((between == 1).all())):
        return {}
    shares = counts.double() / counts.sum()
    most = float(shares[1:-1].max())
    return {end: (exact(float(values[i])), float(shares[i]))
            for end, i in (("min", 0), ("max", -1))
            if shares[i] >= POINT_MASS_SHARE and shares[i] >= POINT_MASS_RATIO * most}


def hurdle_for_point_masses(scm: SCM, rows: Mapping[str, Tensor]) -> list[str]:
    """Give every scalar ``"auto"`` node whose ``rows`` (``{node: (n, 1)}``) hold a point mass
    at an end (:func:`point_masses`) a :class:`HurdleMechanism` with atoms at those ends; the
    node leaves :attr:`SCM.auto_nodes` (nothing is left to choose). Nodes declared on the log
    scale keep their flow. Returns those nodes."""
    nodes = []
    logged = {k for k, s in scm.fixed_log_scales.items() if s.get("value")}
    for k in sorted(scm.auto_nodes - logged):
        if scm.dims[k] != 1:
            continue
        ends = point_masses(rows[k])
        if ends:
            scm.mechanisms[k] = seeded_hurdle(scm, k, lower="min" in ends, upper="max" in ends)
            scm.auto_nodes.discard(k)
            nodes.append(k)
    return nodes


def shape_declared_hurdles(scm: SCM, rows: Mapping[str, Tensor]) -> list[str]:
    """Give every node declared by the name ``"hurdle"`` atoms at the ends its ``rows`` show
    (an end holding two or more rows, more than any value between), and refuse (``ValueError``
    naming the node) a declared hurdle without any, one whose declared atoms hold fewer than
    two rows, or one with fewer than :data:`DECLARED_MIN_BETWEEN` rows between its atoms.
    Returns the nodes reshaped."""
    reshaped = []
    for k in scm.nodes:
        mech = scm.mechanisms[k]
        if not isinstance(mech, HurdleMechanism):
            continue
        v = rows[k].flatten()
        values, counts = torch.unique(v, return_counts=True)
        most = int(counts[1:-1].max()) if len(counts) > 2 else 0
        held = {end: int(counts[i]) for end, i in (("min", 0), ("max", -1))}
        if scm.declared_kind(k) == "hurdle":
            ends = {end for end, c in held.items() if c >= 2 and c > most}
            if not ends:
                raise ValueError(
                    f"node {k!r} is declared 'hurdle' (point masses at its smallest and/or "
                    f"largest value, a flow between), but its smallest value {values[0]:g} "
                    f"holds {held['min']} row(s) and its largest {values[-1]:g} {held['max']}, "
                    f"no more than a value between: give it a continuous mechanism ('flow', "
                    "'linear' or 'auto')")
            if ends != {e for e, on in (("min", mech.lower), ("max", mech.upper)) if on}:
                scm.mechanisms[k] = seeded_hurdle(scm, k, lower="min" in ends,
                                                  upper="max" in ends)
                reshaped.append(k)
            mech = scm.mechanisms[k]
        on = [held[e] for e, used in (("min", mech.lower), ("max", mech.upper)) if used]
        between = len(v) - sum(on)
        if min(on) < 2 or between < DECLARED_MIN_BETWEEN:
            raise ValueError(
                f"node {k!r} is a hurdle with atoms at {_ends(mech)}: they hold {on} row(s) and "
                f"{between} lie between; it needs two or more on each atom and "
                f"{DECLARED_MIN_BETWEEN} or more between; give it a continuous mechanism "
                "('flow', 'linear' or 'auto')")
    return reshaped


def _ends(mech: HurdleMechanism) -> str:
    return " and ".join(e for e, on in (("its smallest value", mech.lower),
                                        ("its largest value", mech.upper)) if on)


def warn_if_point_mass(scm: SCM, node: str, v: Tensor, stacklevel: int) -> None:
    """Warn when declared continuous ``node`` (flow, additive, linear; not ``"auto"``'s) has
    rows ``v (n, 1)`` with point masses (:func:`point_masses`), and say what to declare."""
    kind = scm.mechanisms[node].kind
    if node in scm.auto_nodes or kind not in ("flow", "additive", "linear") or v.shape[-1] != 1:
        return
    ends = point_masses(v)
    if not ends:
        return
    where = " and ".join(f"{share:.0%} of its rows at its "
                         f"{'smallest' if end == 'min' else 'largest'} value {value:g}"
                         for end, (value, share) in ends.items())
    masses = "a point mass" if len(ends) == 1 else "point masses"
    warnings.warn(
        f"node {node!r} has {where} ({masses}), but its mechanism is a continuous {kind}, "
        f"which spreads them (it samples values beyond them, and interventions on its parents "
        f"move them wrongly): declare it 'hurdle' (cauflow fit --mechanism {node}=hurdle) or "
        "use mechanisms='auto'",
        UserWarning, stacklevel=stacklevel)


def check_within_atoms(scm: SCM, values: Mapping[str, Any], what: str) -> None:
    """``ValueError`` naming the first hurdle node in ``values`` (tensors, arrays, numbers or
    frames; callables and NaN are skipped) with a value beyond its atoms, which the fitted
    model gives probability zero (``what``: ``"rows to score"``, ``"factual data"``...)."""
    for node in scm.nodes:
        mech = scm.mechanisms[node]
        if not isinstance(mech, HurdleMechanism) or node not in values or callable(values[node]):
            continue
        value = values[node]
        if hasattr(value, "detach"):
            value = value.detach().cpu()
        v = np.asarray(value, dtype=np.float64)
        v = v[~np.isnan(v)]
        low, high = (None if a is None else float(a) for a in (mech.low, mech.high))  # exact
        bad = v[(v < low if low is not None else False) | (v > high if high is not None else False)]
        if bad.size:
            bounds = " and ".join(f"{name} {a:g}" for name, a in (("the smallest", low),
                                                                   ("the largest", high))
                                  if a is not None)
            raise ValueError(
                f"{what}: node {node!r} is a hurdle with point masses at {bounds} value of its "
                f"training rows, and nothing beyond; got {sorted(set(bad.tolist()))[:5]}")


def exact_atoms(scm: SCM, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (samples or counterfactual rows) with every hurdle node's values that are its
    atoms as computed in float32 written as the data wrote them (:func:`exact`), in place;
    returns it."""
    for node in scm.nodes:
        mech = scm.mechanisms[node]
        if isinstance(mech, HurdleMechanism) and node in frame.columns:
            column = frame[node].to_numpy(copy=True)
            for atom in mech.atoms():
                column[column == float(np.float32(atom))] = exact(atom)
            frame[node] = column
    return frame


def seeded_hurdle(scm: SCM, node: str, *, lower: bool, upper: bool) -> HurdleMechanism:
    """A :class:`HurdleMechanism` for ``node`` with atoms at the given ends, its initial
    weights from the SCM's seed (not the global stream), with the conditioner of the flow it
    replaces."""
    old = scm.mechanisms[node]
    context_dim = sum(scm.dims[p] for p in scm.parents[node])
    options = {k: getattr(old, k) for k in ("bins", "hidden", "activation") if hasattr(old, k)}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(scm.seed + 1 + scm.nodes.index(node))
        return HurdleMechanism(1, context_dim, lower=lower, upper=upper, **options)
