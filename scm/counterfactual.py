"""Counterfactual abduction and prediction on tensors, calling only the mechanisms needed.

The reference computation is Pyro's: trace ``poutine.condition(scm.model, data=factual)`` to
read each node's noise off its conditional (abduction), then run
``poutine.do(poutine.condition(scm.model, data=unchanged), data=hard)`` under
:class:`~scm.handlers.replay_noise` and :class:`~scm.handlers.act` (action, prediction;
Pearl, *Causality*, 2009, Thm. 7.1.7). :func:`counterfactual_program` is that composition,
kept as the specification. The functions here compute the same numbers without running the
whole program twice: a counterfactual only needs the mechanisms of the nodes it changes, while
the program builds a conditional distribution (and passes a Pyro message) for every node in
both runs. On the 10-node zoo DAG that overhead, not arithmetic, was most of a 500-row query
(``bench/scm_queries.py``). ``tests/test_counterfactual_paths.py`` checks both paths agree.

A scalar flow's noise passes through an unconditional spline that prediction would undo, so
the tensor path abducts the noise before it (:meth:`~scm.mechanisms.Mechanism.
counterfactual_noise`): the same answer up to the spline's float round trip (5.6e-7 std at
most on the query below). A 500-row counterfactual on ``zoo.random_dag(30, seed=5)``'s ``"auto"``
fit (13 flow nodes changed, one thread) took 12.5 ms through both splines and takes 5.0 ms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from pyro import poutine
from torch import Tensor

from scm.handlers import act, apply_action, pull_through, push_through, replay_noise, split_hard
from scm.interventions import Action
from scm.mechanisms import Mechanism

if TYPE_CHECKING:
    from scm.scm import SCM


def check_invertible(scm: SCM, nodes: list[str]) -> None:
    """``ValueError`` naming the first node in ``nodes`` whose mechanism has no inverse."""
    for node in nodes:
        if not scm.mechanisms[node].invertible:
            raise ValueError(
                f"counterfactual needs the noise of node {node!r}, but its mechanism "
                f"({type(scm.mechanisms[node]).__name__}) is not invertible"
            )


def _context(scm: SCM, node: str, values: Mapping[str, Tensor]) -> Tensor | None:
    parents = scm.parents[node]
    return torch.cat([values[p] for p in parents], -1) if parents else None


def _noise(
    mechanism: Mechanism, value: Tensor, context: Tensor | None, for_prediction: bool
) -> Tensor:
    """The mechanism's noise for ``value`` at ``context`` (:meth:`Mechanism.abduct`; with
    ``for_prediction``, :meth:`Mechanism.counterfactual_noise`), without building its
    distribution; a Bayesian mechanism is called so that its parameter sites are sampled (or
    conditioned on a posterior draw) as in the program."""
    if getattr(mechanism, "bayesian", False):
        return pull_through(list(mechanism(context).transforms), value)
    if for_prediction:
        return mechanism.counterfactual_noise(value, context)
    return mechanism.abduct(value, context)


def _value(mechanism: Mechanism, noise: Tensor, context: Tensor | None) -> Tensor:
    """The value at ``context`` of ``_noise(..., for_prediction=True)``'s ``noise``
    (:meth:`Mechanism.counterfactual_value`; a Bayesian mechanism's as in :func:`_noise`)."""
    if getattr(mechanism, "bayesian", False):
        return push_through(list(mechanism(context).transforms), noise)
    return mechanism.counterfactual_value(noise, context)


def recomputed(scm: SCM, actions: Mapping[str, Action], changed: set[str]) -> list[str]:
    """The ``changed`` nodes, in topological order, whose counterfactual value comes from their
    mechanism (all but those hard-set on every row, and those hard-set on some rows whose
    parents do not change): the nodes whose noise is abducted."""
    return [k for k in scm.nodes if k in changed and not _all_rows_hard(actions.get(k))
            and not _kept_where_not_set(scm, k, actions.get(k), changed)]


def abduct_noise(
    scm: SCM, x: Mapping[str, Tensor], nodes: list[str], *, for_prediction: bool = False
) -> dict[str, Tensor]:
    """Return ``{node: u (n, dim)}``: each node's noise, its conditional inverted at ``x``.

    ``x`` holds every node's factual value ``(n, dim)``. Same values as reading the noise off
    a trace of the model conditioned on ``x``; with ``for_prediction``, the noise as
    :func:`predict` reads it (:meth:`~scm.mechanisms.Mechanism.counterfactual_noise`: a flow's
    before its unconditional noise spline, which prediction would undo).
    """
    check_invertible(scm, nodes)
    with torch.no_grad():
        return {
            node: _noise(scm.mechanisms[node], x[node], _context(scm, node, x), for_prediction)
            for node in nodes
        }


def predict(
    scm: SCM,
    x: Mapping[str, Tensor],
    noise: Mapping[str, Tensor],
    changed: set[str],
    actions: Mapping[str, Action],
) -> dict[str, Tensor]:
    """Return ``{node: counterfactual value (n, dim)}`` for every node (``x``'s own tensors
    for the nodes outside ``changed``).

    In topological order: a node hard-set on every row takes its value; any other changed node
    is its mechanism applied to its abducted ``noise`` (``abduct_noise(...,
    for_prediction=True)``'s) at the counterfactual parents, then any soft or per-row action.
    """
    values = dict(x)
    with torch.no_grad():
        for node in scm.nodes:
            if node not in changed:
                continue
            action = actions.get(node)
            if _all_rows_hard(action):
                values[node] = torch.as_tensor(action.value, dtype=x[node].dtype)
                continue
            if _kept_where_not_set(scm, node, action, changed):
                values[node] = apply_action(action, x[node])
                continue
            value = _value(scm.mechanisms[node], noise[node], _context(scm, node, values))
            values[node] = value if action is None else apply_action(action, value)
    return values


def counterfactual_program(
    scm: SCM, x: Mapping[str, Tensor], actions: Mapping[str, Action], changed: set[str]
) -> dict[str, Tensor]:
    """The same counterfactual as :func:`abduct_noise` + :func:`predict`, by Pyro's handlers.

    Returns ``{node: value (n, dim)}`` for every node (unchanged ones equal ``x``).
    """
    recompute = recomputed(scm, actions, changed)
    check_invertible(scm, recompute)
    n = next(iter(x.values())).shape[0]
    with torch.no_grad():
        trace = poutine.trace(poutine.condition(scm.model, data=dict(x))).get_trace(n)
        noise = {k: pull_through(trace.nodes[k]["fn"].transforms, x[k]) for k in recompute}
        hard, rest = split_hard(actions, x[scm.nodes[0]].dtype)
        fixed = {k: v for k, v in x.items()
                 if k not in changed or _kept_where_not_set(scm, k, actions.get(k), changed)}
        model = poutine.do(poutine.condition(scm.model, data=fixed), data=hard)
        with replay_noise(noise), act(rest):
            return model(n)


def _all_rows_hard(action: Action | None) -> bool:
    return action is not None and action.is_hard and action.all_rows


def _kept_where_not_set(scm: SCM, node: str, action: Action | None, changed: set[str]) -> bool:
    """Whether ``action`` sets ``node`` on some rows and none of its parents changes: its other
    rows keep their factual values, so its noise is not needed (a categorical treatment set on
    some rows only, which has none)."""
    return (action is not None and action.is_hard and not action.all_rows
            and not any(p in changed for p in scm.parents[node]))
