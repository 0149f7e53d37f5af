"""Log scales: a positive variable modelled as ``exp`` of a mechanism's output, and parents
read as their logs by a child's conditioner.

Real measurements of amounts (concentrations, incomes, sizes) are often log-normal with
multiplicative effects, ``y = x^a e^{s u}``: linear-Gaussian in the logs, while on the raw
scale the mechanism is curved and heteroscedastic. On such data (``x = e^u``, ``y = x^0.8
e^{0.3u'}``, 3,000 rows) a raw-scale ``"auto"`` fit answered counterfactuals of ``y`` with RMSE
.07-.12 std and ``"flow"`` .058, where the logs make ``y``'s mechanism exactly linear.

Two settings per mechanism (:meth:`~scm.mechanisms.base.Mechanism.set_log_scale`), both a
reparametrisation rather than another model: ``log_value``, the node's value is ``exp`` of the
modelled one (an ``ExpTransform`` after the flow, so its density and abducted noise carry the
Jacobian), and ``log_context``, which parents' columns its conditioner reads as logs. They are
chosen per node: how a child reads a parent does not depend on the parent's own scale. One
scale per variable, for its own model and every child's, failed both ways: ``z = y/2 +
e^{0.5u}`` below a log-normal ``y`` read ``log y`` and extrapolated ``exp`` with a ReLU
conditioner (counterfactual RMSE of ``z`` .08 -> .6 std), and in a fully multiplicative DAG no
single switch paid (the parent needs its child logged and the child its parent).

``SCM(..., log_nodes=[...])`` declares nodes on the log scale (value and every child's reading).
For ``"auto"`` nodes, :func:`choose_log_scales` decides both settings from the rows, by the
node's linear-Gaussian conditional likelihood (Jacobian included), as the Box-Cox family
compares transformations by likelihood (Box & Cox, JRSS B 1964).

Training reads the same raw rows: every mechanism applies its own settings (its density
carries the Jacobian), and the stacked network of scalar flows reads logged columns appended
to its data matrix (:func:`scm.matrix.training_matrix`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from scm.interventions import Action
from scm.linearity import check_linearity
from scm.rows import one_row_per_copy

if TYPE_CHECKING:
    from scm.scm import SCM

LOG_GAIN = 0.01
"""Nats per row that a node's linear-Gaussian conditional log-likelihood must gain for a
switch to a log scale (:func:`choose_log_scales`), besides :data:`LOG_Z`."""

LOG_Z = 3.0
"""The gain's mean over its standard error (over rows) needed as well: a chance gain would
give away a linear dependence."""

OWN_SCALE_KINDS = ("categorical", "hurdle")
"""Mechanisms whose node is never put on the log scale by ``"auto"``: codes have no log, and a
hurdle models the part above its point mass as a log already."""

MIN_DISTINCT = 11
"""Fewer distinct values than this keeps a column on its own scale (codes, counts)."""

MAX_EXHAUSTIVE = 6
"""Up to this many possible switches (the node and its positive parents), every subset is
scored (:func:`_best_switches`); beyond, they are added one at a time."""

MAX_TRIES = 8
"""Candidate sets of switches checked at most per node (:func:`_best_switches`)."""


def log_parents(scm: SCM, node: str) -> list[str]:
    """The parents of ``node`` that its mechanism reads as their logs."""
    mask = scm.mechanisms[node].log_context
    if mask is None:
        return []
    out, start = [], 0
    for p in scm.parents[node]:
        if bool(mask[start:start + scm.dims[p]].any()):
            out.append(p)
        start += scm.dims[p]
    return out


def log_scales(scm: SCM) -> dict[str, dict[str, Any]]:
    """``{node: {"value": bool, "parents": [names]}}`` for every node with a log setting
    (JSON for :func:`scm.io.spec`)."""
    out = {}
    for node, mech in scm.mechanisms.items():
        parents = log_parents(scm, node)
        if mech.log_value or parents:
            out[node] = {"value": bool(mech.log_value), "parents": parents}
    return out


def set_log_scales(scm: SCM, scales: Mapping[str, Mapping[str, Any]]) -> None:
    """Give every mechanism the settings of ``scales`` (as :func:`log_scales` returns them;
    nodes left out: none); ``ValueError`` for an unknown node or parent."""
    unknown = sorted(set(scales) - set(scm.parents))
    if unknown:
        raise ValueError(f"log scales name unknown nodes {unknown}")
    for node, mech in scm.mechanisms.items():
        setting = scales.get(node, {})
        logged = set(setting.get("parents", []))
        if logged - set(scm.parents[node]):
            raise ValueError(f"log scales: {sorted(logged - set(scm.parents[node]))} are not "
                             f"parents of {node!r}")
        mask = [p in logged for p in scm.parents[node] for _ in range(scm.dims[p])]
        mech.set_log_scale(bool(setting.get("value", False)), mask)


def declared_scales(scm: SCM, nodes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The settings of declared log-scale ``nodes``: each on the log scale, read as its log by
    every child."""
    out: dict[str, dict[str, Any]] = {}
    for node in scm.nodes:
        logged = [p for p in scm.parents[node] if p in nodes]
        if node in nodes or logged:
            out[node] = {"value": node in nodes, "parents": logged}
    return out


def check_log_nodes(scm: SCM, nodes: Any) -> list[str]:
    """The declared log-scale ``nodes`` in topological order; ``ValueError`` for an unknown
    or categorical node, ``TypeError`` for a bare string."""
    if isinstance(nodes, str):
        raise TypeError(f"log_nodes must be a list of node names, got {nodes!r}")
    nodes = list(nodes)
    if nodes and any(getattr(m, "bayesian", False) for m in scm.mechanisms.values()):
        raise ValueError(f"log_nodes {nodes}: log scales are fitted by inference='mle' only, "
                         "which Bayesian mechanisms do not take")
    unknown = sorted(set(nodes) - set(scm.parents))
    if unknown:
        raise ValueError(f"log_nodes names unknown nodes {unknown}")
    for node in nodes:
        if scm.mechanisms[node].kind == "categorical":
            raise ValueError(f"log_nodes: node {node!r} is categorical; its codes have no log")
        if scm.mechanisms[node].kind == "hurdle":
            raise ValueError(f"log_nodes: node {node!r} is a hurdle, whose part above its "
                             "point mass is modelled on the log scale already")
    return [k for k in scm.nodes if k in set(nodes)]


def positive_nodes(scm: SCM) -> list[str]:
    """The nodes whose values must be positive: those on the log scale and those some child
    reads as their logs."""
    read = {p for node in scm.nodes for p in log_parents(scm, node)}
    return [k for k in scm.nodes if scm.mechanisms[k].log_value or k in read]


def check_positive(scm: SCM, values: Mapping[str, Any], what: str) -> None:
    """``ValueError`` naming the first node of :func:`positive_nodes` in ``values`` (tensors,
    arrays, numbers or frames; callables and NaN are skipped) with a value that is not
    positive."""
    for node in positive_nodes(scm):
        if node not in values or callable(values[node]):
            continue
        value = values[node]
        if hasattr(value, "detach"):  # a tensor, maybe with a gradient or on a GPU
            value = value.detach().cpu()
        v = np.asarray(value, dtype=np.float64)
        bad = v[~np.isnan(v) & ~(v > 0)]
        if bad.size:
            raise ValueError(
                f"{what}: node {node!r} is on a log scale (fitted as positive); got "
                f"{sorted(set(bad.tolist()))[:5]} (a model fitted with log_nodes=None, "
                "`cauflow fit --no-log-scales`, keeps every node on its own scale)"
            )


def check_softly_set_positive(
    scm: SCM, values: Mapping[str, Tensor], interventions: Mapping[str, Any]
) -> None:
    """``ValueError`` naming the first node of :func:`positive_nodes` set by a soft
    intervention (a callable in ``interventions``) whose drawn or predicted ``values``
    (``{node: (n, dim)}``) are not all positive: the children reading its log would be NaN.
    (Hard values are checked before any draw, :func:`check_positive`.)"""
    soft = {k for k, v in interventions.items()
            if callable(v) or isinstance(v, Action) and not v.is_hard}
    for node in positive_nodes(scm):
        if node in soft and node in values and not bool((values[node] > 0).all()):
            rows = int((~(values[node] > 0)).any(-1).sum())
            raise ValueError(
                f"intervention: node {node!r} is on a log scale (fitted as positive), but the "
                f"intervention made it <= 0 on {rows} rows; a soft intervention must keep it "
                "positive"
            )


def choose_log_scales(
    scm: SCM, x: Mapping[str, Tensor], distinct: tuple[int, Tensor | None] | None = None
) -> None:
    """Set every mechanism's log settings for rows ``x`` (``{node: (n, dim)}``, data units):
    ``scm.fixed_log_scales`` (declared or loaded; the caller has checked their columns
    positive, :func:`check_positive`) and, for each ``"auto"`` node that is not categorical,
    its own choice on top of them (unless ``scm.chooses_log_scales`` is off).

    A node's choice: its value can go to the log scale if it is scalar, positive on every row
    and takes at least :data:`MIN_DISTINCT` values; each parent like that can be read as its
    log. The switches kept are those of :func:`_best_switches`: by the node's conditional
    log-likelihood with a linear-Gaussian mechanism (least squares on these rows, the Jacobian
    ``-log x`` counted for a logged value), a gain of :data:`LOG_GAIN` nats per row and
    :data:`LOG_Z` standard errors; a node with parents then keeps them only if the linearity
    check (:func:`~scm.linearity.check_linearity`) passes on the logged units. Log scales are
    thus taken where they make a mechanism linear-Gaussian. Why the check: the pendulum's
    shadow length (a curved function of two angles, with additive noise) gained by the proxy
    in its log, yet its flow there answered counterfactuals with RMSE .024 std against .017 on
    the raw scale (``bench/scm_queries.py``, 20 seeds). Why a linear proxy: with cubic terms
    an exponential root's linear child (``y = 2x + 3 + N(0, .25)``) went to read ``log x``.
    Measured on ``bench/log_scales.py``: see the README.

    A parent is read as its log only if its own value can go to the log scale, and a parent
    so read goes there: a raw-scale parent's draws may fall below 0 (a uniform x on (.02, 2)
    with a child ``log x + noise`` sampled 245 of 20,000 rows of x below 0, their children
    NaN). ``distinct``: :func:`~scm.rows.distinct_rows`'s result; copies of a row count
    once."""
    scales = {k: dict(v) for k, v in scm.fixed_log_scales.items()}
    x = one_row_per_copy(x, distinct)
    rows = {k: v.double() for k, v in x.items()}

    def loggable(k: str) -> bool:
        return (scm.dims[k] == 1 and scm.mechanisms[k].kind not in OWN_SCALE_KINDS
                and bool((rows[k] > 0).all()) and torch.unique(rows[k]).numel() >= MIN_DISTINCT)

    able = {k for k in scm.nodes if loggable(k)}
    logs = {k: rows[k].log() for k in scm.nodes if bool((rows[k] > 0).all())}
    # A parent is read as its log only where its own value can go to the log scale as well
    # (below): a raw-scale parent's draws may fall <= 0 where its child reads log.
    readable = {k for k in able if k in scm.auto_nodes and scm.chooses_log_scales
                or scales.get(k, {}).get("value")}
    for node in scm.nodes:
        if (not scm.chooses_log_scales or node not in scm.auto_nodes
                or scm.mechanisms[node].kind in OWN_SCALE_KINDS):
            continue
        fixed = scales.get(node, {})
        forced = {*fixed.get("parents", []), *([node] if fixed.get("value") else [])}
        switches = [s for s in [node, *(p for p in scm.parents[node] if p in readable)]
                    if s in able and s not in forced]
        chosen = _best_switches(scm, node, x, rows, logs, forced, switches)
        if chosen:
            scales[node] = {"value": node in chosen,
                            "parents": [p for p in scm.parents[node] if p in chosen]}
    for setting in list(scales.values()):
        for p in setting["parents"]:
            scales.setdefault(p, {"value": False, "parents": []})["value"] = True
    set_log_scales(scm, scales)


def _best_switches(
    scm: SCM,
    node: str,
    x: Mapping[str, Tensor],
    rows: Mapping[str, Tensor],
    logs: Mapping[str, Tensor],
    forced: set[str],
    switches: list[str],
) -> set[str]:
    """The names to log for ``node``'s conditional on rows ``x`` (``rows``: the same in
    float64, ``logs``: their logs where positive): ``forced`` and the subset of ``switches``
    that :func:`choose_log_scales` admits.

    Switches pay together (``y = x^a e^u`` is linear only with both ``x`` and ``y`` logged,
    and neither alone gains), so the candidates are every subset, best first, when there are
    at most :data:`MAX_EXHAUSTIVE` switches; else the switches added one at a time while one
    gains, then all of them. A candidate loses the switches whose removal costs less than
    :data:`LOG_GAIN` or :data:`LOG_Z` standard errors; the first (of :data:`MAX_TRIES`) that
    still gains both over ``forced`` and passes the linearity check (for a node with
    parents) is taken."""

    def score(names: set[str]) -> Tensor:
        return _conditional_log_likelihood(scm, node, rows, logs, forced | names)

    def significant(gain: Tensor) -> bool:
        mean, se = float(gain.mean()), float(gain.std()) / math.sqrt(len(gain))
        return mean > LOG_GAIN and mean > LOG_Z * se

    def pruned(chosen: set[str]) -> set[str]:
        chosen = set(chosen)
        while chosen:
            now = score(chosen)
            losses = {s: now - score(chosen - {s}) for s in chosen}
            weakest = min(losses, key=lambda s: float(losses[s].mean()))
            if significant(losses[weakest]):
                break
            chosen.discard(weakest)
        return chosen

    if len(switches) <= MAX_EXHAUSTIVE:
        subsets = [set(c) for r in range(1, len(switches) + 1)
                   for c in itertools.combinations(switches, r)]
        candidates = sorted(subsets, key=lambda c: -float(score(c).mean()))
    else:
        added: set[str] = set()
        while gains := [s for s in switches if s not in added
                        and significant(score(added | {s}) - score(added))]:
            added.add(max(gains, key=lambda s: float(score(added | {s}).mean())))
        candidates = [added, set(switches)]
    base, tried = score(set()), []
    for candidate in candidates[:MAX_TRIES]:
        chosen = pruned(candidate)
        if not chosen or chosen in tried:
            continue
        tried.append(chosen)
        if significant(score(chosen) - base) and (
                not scm.parents[node] or _linear_in(scm, node, x, forced | chosen)):
            return forced | chosen
    return forced


def _linear_in(scm: SCM, node: str, x: Mapping[str, Tensor], logged: set[str]) -> bool:
    """Whether ``node``'s conditional passes the linearity check
    (:func:`~scm.linearity.check_linearity`) with the names in ``logged`` logged (False when
    there are too few rows to check)."""
    def value(k: str) -> Tensor:
        return x[k].log() if k in logged else x[k]

    check = check_linearity(value(node), torch.cat([value(p) for p in scm.parents[node]], -1))
    return check is not None and not check.rejects_linear


def _conditional_log_likelihood(
    scm: SCM, node: str, rows: Mapping[str, Tensor], logs: Mapping[str, Tensor], logged: set[str]
) -> Tensor:
    """Per-row ``(n,)`` linear-Gaussian log-density of ``node`` given its parents (least
    squares on these rows), with the names in ``logged`` (``node`` and parents) logged; a
    logged ``node`` carries the Jacobian of ``x = exp(z)``: ``log p(x) = log p(z) - z``."""
    def value(k: str) -> Tensor:
        return logs[k] if k in logged else rows[k]

    y = value(node)
    design = torch.cat([torch.ones_like(y[:, :1]), *(value(p) for p in scm.parents[node])], -1)
    resid = y - design @ torch.linalg.lstsq(design, y).solution
    var = resid.pow(2).mean(0).clamp_min(1e-300)
    out = (-0.5 * (math.log(2 * math.pi) + var.log() + resid.pow(2) / var)).sum(-1)
    return out - y.sum(-1) if node in logged else out
