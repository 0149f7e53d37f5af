"""Weak overlap: an intervention that gives a mechanism parent values the data never show
together, so that the answer extrapolates the mechanism.

A mechanism is fitted where its parents' rows are. ``do(t = v)`` hands every child of ``t``
the tuple ``(v, its other parents)``; where ``t``'s value is tied to those other parents in
the data (a common cause ``h -> t``, ``h -> y`` whose clusters pin ``t``), such tuples lie
off the data's support and the child's conditioner extrapolates. On ``h`` bimodal (+-1.5),
``t = tanh(2 h) + 0.3 u``, ``y = 2 h - 0.7 t + 0.3 u``, 5,000 rows, flows answered the ATE
of ``t`` from -0.5 to 0.5 as -0.40 (truth -0.70), with no sign of it. The check is the
positivity diagnostic of causal inference, by nearest neighbours: each intervened row's
parent tuple against the fitted model's own observational draws (a stand-in for the data
that the SCM does not keep).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from scm.scm import SCM

REFERENCE_ROWS = 2000
"""Observational draws of the fitted model that stand for the data's support."""

QUERY_ROWS = 1000
"""Intervened rows checked (the first ones of the draws)."""

FAR = 2.0
"""A parent tuple is off the support when its nearest reference row is farther than this
times the 99th percentile of the reference rows' own nearest-neighbour distances (in units of
each parent's observational std)."""


OFF_SUPPORT_WARN = 0.2
"""The fraction of intervened rows off the support (:func:`off_support`) from which
:func:`warn_off_support` warns (rows drawn like the reference: ~0.5%)."""


def off_support(
    scm: SCM, interventions: Mapping[str, Any], seed: int = 0
) -> dict[str, float]:
    """For each node with an intervened parent (itself not intervened): the fraction of
    rows of ``scm.do(interventions)`` whose parent values lie off the support of the fitted
    model's observational draws (:data:`FAR`). Returns ``{node: fraction}``; a node whose
    parents' tuples the data cover scores near 0, one whose answer extrapolates near 1
    (the example above: ``do(t = 0.5)`` 0.48 for ``y``, ``do(t = 3)`` 1.0; on a chain
    ``x1 -> x2 -> x3``, ``do(x2 = v)`` 0.0 for ``x3`` up to the data's extremes)."""
    return _off_support(scm, [interventions], seed)[0]


def _off_support(
    scm: SCM, arms: Sequence[Mapping[str, Any]], seed: int
) -> list[dict[str, float]]:
    """:func:`off_support` of each of ``arms`` against one set of observational draws (and
    one nearest-neighbour scale per child)."""
    reference: dict[str, Tensor] | None = None
    typical: dict[str, Tensor] = {}
    out = []
    for interventions in arms:
        intervened = set(interventions)
        children = [k for k in scm.nodes
                    if k not in intervened and intervened & set(scm.parents[k])]
        fractions = {}
        with torch.no_grad():
            if children and reference is None:
                reference = scm.do({}).sample_tensors(REFERENCE_ROWS, seed)
            if children:
                query = scm.do(dict(interventions)).sample_tensors(QUERY_ROWS, seed + 1)
            for k in children:
                ref = _parents(reference, scm.parents[k])
                if k not in typical:
                    typical[k] = _typical_distance(ref)
                fractions[k] = _fraction_far(ref, _parents(query, scm.parents[k]), typical[k])
        out.append(fractions)
    return out


def warn_off_support(
    scm: SCM, arms: Mapping[str, Mapping[str, Any]], stacklevel: int = 3
) -> list[dict[str, float]]:
    """``UserWarning`` (``stacklevel`` frames up) per arm (``{what: interventions}``, ``what``
    naming the query) naming the nodes with a neural mechanism (flow, additive) whose parents
    ``do(interventions)`` sends off the data's support in over :data:`OFF_SUPPORT_WARN` of
    the rows; returns :func:`off_support`'s fractions per arm, every child's."""
    every = _off_support(scm, list(arms.values()), seed=0)
    for what, fractions in zip(arms, every, strict=True):
        # a linear mechanism's answer off the support is its line's, the model's own
        # assumption; a neural one's is a local fit's extrapolation (the flows' ATEs above)
        far = {k: f for k, f in fractions.items()
               if f > OFF_SUPPORT_WARN and scm.mechanisms[k].kind in ("flow", "additive", "hurdle")}
        if far:
            shown = ", ".join(f"{k} ({f:.0%} of rows)" for k, f in far.items())
            warnings.warn(
                f"{what}: the intervention gives the parents of {shown} values that the "
                "fitted model's observational rows never show together, so the answer "
                "extrapolates their neural mechanisms (weak overlap); intervene within the "
                "data's range given the other parents, or read the answer as an extrapolation",
                UserWarning, stacklevel=stacklevel)
    return every


def _parents(rows: Mapping[str, Tensor], parents: list[str]) -> Tensor:
    return torch.cat([rows[p].double() for p in parents], -1)


def _scaled(rows: Tensor, reference: Tensor) -> Tensor:
    return rows / reference.std(0).clamp_min(1e-12)


def _typical_distance(reference: Tensor) -> Tensor:
    """The 99th percentile of the ``reference`` rows' ``(n, d)`` nearest-neighbour distances
    (each column in units of its std)."""
    ref = _scaled(reference, reference)
    within = torch.cdist(ref, ref)
    within.fill_diagonal_(float("inf"))
    return torch.quantile(within.min(1).values, 0.99)


def _fraction_far(reference: Tensor, query: Tensor, typical: Tensor) -> float:
    """The fraction of ``query`` rows ``(m, d)`` whose nearest ``reference`` row ``(n, d)``
    is :data:`FAR` times farther than ``typical`` (:func:`_typical_distance`), both in units
    of the reference's per-column std."""
    nearest = torch.cdist(_scaled(query, reference), _scaled(reference, reference)).min(1).values
    return float((nearest > FAR * typical.clamp_min(1e-12)).double().mean())
