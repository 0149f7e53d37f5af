"""How ``"auto"`` mechanisms choose, per node, between flows and linear-Gaussian.

:func:`~scm.fit.fit_mle` trains, for every ``"auto"`` node with parents, its flow and a rival
flow per other conditioner of :data:`AUTO_CONDITIONERS` side by side; this module holds what
decides among them: which flows are homoscedastic (:func:`mark_homoscedastic_flows`), which
candidates stop training early (:func:`retire_losing_flows`), and which one the node keeps,
flow or closed-form linear (:func:`select_auto_mechanism`, :func:`linear_mle`); and, before
any of it, which nodes hold integer codes and so are categorical
(:func:`categorical_for_coded_columns`).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from scm.linearity import LinearityCheck, check_linearity
from scm.mechanisms.flow import FlowMechanism
from scm.stacked import StackedFlows, stackable

if TYPE_CHECKING:
    from scm.mechanisms import LinearGaussian, Mechanism
    from scm.scm import SCM

log = logging.getLogger(__name__)

TIE_NATS = 1.0
"""Held-out log-likelihood, in nats summed over the choosing rows, by which a flow the
linearity check calls for may always lose to the linear fit and still be kept (the same nat
as :data:`scm.fit.MIN_GAIN`, early stopping's unit of progress); it may lose by more when that
is within :data:`LOSS_Z` standard errors. See :func:`select_auto_mechanism`."""

LOSS_Z = 2.0
"""Standard errors of the summed per-row difference ``log p_flow - log p_linear`` on the
choosing rows by which a flow the linearity check calls for may lose and still be kept: the
check on every row has ruled out a line, so linear replaces the flow only where the held-out
rows show the flow significantly worse (about 2.5% one-sided at 2), not where their noise
does. That noise grows with fewer rows: on ``bench/scm_queries.py``'s random10 at 1,000 rows
(seed 0), x5's check statistic was 49 against a penalty of 14, its flows beat the linear fit
by .017 nats per row on 50,000 fresh rows (3.4 nats expected on the 200 choosing rows), yet
lost there by 4.6 nats at a standard error of 3.9; linear took it, and its counterfactual RMSE
was .241 std against the flow's .098. See :func:`select_auto_mechanism`."""

AUTO_CONDITIONERS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("relu", (32, 32)),
    ("elu", (32, 32)),
)
"""The conditioners, ``(activation, hidden widths)``, that ``"auto"`` fits side by side for every
node with parents and chooses between per node by held-out log-likelihood (as it chooses
linear-or-flow): ReLU (the flow's default) and ELU (the causal NF's activation, Javaloy et al.
2023), two layers of 32 each. Neither wins everywhere: on ``bench/flow_conditioner.py``'s cases
and seeds (20-22, never the SCM benchmark's), ELU alone lowered counterfactual RMSE on random10
by 17% and random20 by 34%, and raised it on the triangle by 19% and on the pendulum from .0202
to .0526 (three ELU layers: five random DAGs -11 to -33%, pendulum +64%, triangle +17%).
Counterfactual RMSE in stds, mean over those seeds, ReLU alone -> both with the per-node
choice: pendulum .0202 -> .0190, triangle .0573 -> .0570, random10 .0593 -> .0500, random20
.0873 -> .0638, g10_1 .0598 -> .0573, g10_2 .0797 -> .0680, g20_1 .1171 -> .1056, chain .0210
-> .0214, collider equal. Two layers of 32 like ReLU's, so the rivals are extra members of the
same stacked network (:class:`~scm.stacked.StackedFlows`): choosing per node among separately
fitted models, ELU with three layers did no better (random10 .0539, random20 .0618, triangle
.0580 vs .0490, .0613, .0551 with two). Cost: SCM.fit of the 20-node random DAG 6.5 -> 14.9 s,
pendulum 5.2 -> 6.8 s (one thread). Averaging instead the conditioners of 2-3 fits that differ
only in initialisation (an ensemble) lowered it on none of triangle, random10, random20."""


SHAPE_GAIN = 3.0
"""Held-out log-likelihood, in nats summed over the selection rows, by which an ``"auto"``
node's flow must beat the linear-Gaussian fit to be kept when the linearity check
(:func:`~scm.linearity.check_linearity`) finds the dependence on the parents linear and
homoscedastic: the flow then wins on the noise's shape alone, and a gain of 1 nat was
within chance (a flow won linear nodes of the chain and collider). See
:func:`select_auto_mechanism`."""

HOMOSCEDASTIC_AUTO = True
"""Whether ``fit_mle`` makes an ``"auto"`` node's scalar flows homoscedastic
(:attr:`~scm.mechanisms.flow.FlowMechanism.homoscedastic`: the parents move the location only)
where the linearity check on the training rows finds the noise's spread independent of the
parents (:func:`mark_homoscedastic_flows`). A heteroscedastic flow can hide a misfit of its
location behind a wider scale, which helps its held-out likelihood (random20's x7: the
homoscedastic flows trail by 1-6 nats) but not a counterfactual ``loc(c') + scale(c') /
scale(c) * (x - loc(c))``, which inherits both. Measured on ``bench/flow_conditioner.py``'s
cases, seeds 20-25 (never the SCM benchmark's), CF RMSE in stds off -> on: random20 .0530 ->
.0467 (lower on all six seeds), random10 .0509 -> .0469 (lower or equal on all six),
pendulum, triangle, chain and collider the same. On ``bench/scm_queries.py``'s seeds 0-9:
random10 .050 -> .044, random20 .063 -> .059, triangle .053 -> .051, the rest equal. The cost
is training time: the location keeps improving, so early stopping waits longer (random20 seed
20: 238 epochs instead of 167); in that benchmark random20's fit took 18.2 s against DoWhy's
19.6 s, and the chain's and collider's 4.2 and 5.1 s instead of 2.4 and 2.2 (their flows
train before linear is chosen).

The spread check takes a saturating mean out with a cubic spline per parent before it looks
at the spread (:func:`~scm.linearity.check_linearity`); with the cubic alone, tanh nodes of the
random DAGs passed for heteroscedastic (random10's x3 and x8 at 5,000 rows, the triangle's x2).
Same cases and seeds 20-22, cubic -> spline, CF RMSE in stds / fit s (two processes on two
cores): triangle .0572 -> .0547, random10 .0454 -> .0409 / 6.6 -> 8.7 s, random20 .0490 ->
.0500 / 13.0 -> 15.5 s, g10_1 .0537 -> .0510 / 10.7 -> 15.3 s, g10_2 .0576 -> .0570, g20_1
.0807 -> .0799 / 21.0 -> 24.2 s (MMD² lower or within noise on all but g20_1, 2.5e-5 ->
3.2e-5). At 1,000 rows, ``bench/scm_queries.py``'s cases, seeds 0-5: random10 .112 -> .097
(seed 5: .202 -> .121; causalflows .078), triangle .091 -> .087. The time goes to early
stopping waiting on the locations that now carry the whole fit."""


RETIRE_AT = 0.3
RETIRE_GAP = 10.0
"""From :data:`RETIRE_AT` of the epoch budget on, ``fit_mle`` stops training an ``"auto"``
candidate flow (a conditioner of :data:`AUTO_CONDITIONERS`) once its held-out log-likelihood
trails its node's best candidate by more than :data:`RETIRE_GAP` nats over the early-stopping
rows (:func:`retire_losing_flows`): the pendulum's ELU flow for the shadow's length trails
ReLU's by ~150 nats after a third of its budget and still by 65-105 nats at the end, yet
cost as much per step as the winner. Earlier, or by less, retires flows that would have won:
on ``bench/flow_conditioner.py``'s cases, seeds 20-23 (never the SCM benchmark's), held-out
trajectories of every candidate, a tenth of the budget and 10 nats retired 12 eventual
winners of 34 (ELU starts slower than ReLU); a third of the budget and 10 nats retired 9
candidates, none an eventual winner."""


MAX_AUTO_CATEGORIES = 10
"""The most levels an ``"auto"`` node's integer codes ``0..k-1`` may have for it to become
categorical (:func:`categorical_for_coded_columns`); a column of more is left to a flow."""


def categorical_for_coded_columns(
    scm: SCM, rows: dict[str, Tensor], stacklevel: int = 4
) -> list[str]:
    """Give every ``"auto"`` node whose ``rows`` (``{node: (n, dim)}``) are integer codes
    ``0..k-1``, every code present and ``2 <= k <=`` :data:`MAX_AUTO_CATEGORIES`, a
    :class:`~scm.mechanisms.CategoricalMechanism` with ``k`` categories (the node leaves
    :attr:`SCM.auto_nodes`: nothing is left to choose); returns those nodes. Another scalar
    ``"auto"`` column with 2 to :data:`MAX_AUTO_CATEGORIES` distinct values (say 1..5, or 0
    and 2) keeps its flow with a ``UserWarning`` that names it and says to recode it
    (``stacklevel`` as in :func:`warnings.warn`, counted from here).

    Why: a flow fitted to a few point masses chases an unbounded density and samples values
    between them; on a Bernoulli(.5) root with a Gaussian child (2,000 rows), ``"auto"``'s
    flow sampled a mean of .645 and values other than 0 and 1. A categorical node is not
    invertible: a counterfactual that must recompute it raises ``ValueError`` naming it, as
    for a declared one; one that intervenes on it or leaves it alone is exact as before."""
    nodes = []
    for k in sorted(scm.auto_nodes):
        v = rows[k]
        if v.shape[-1] != 1:
            _warn_if_vector_of_codes(k, v, stacklevel + 1)
            continue
        levels = torch.unique(v)
        if not 2 <= len(levels) <= MAX_AUTO_CATEGORIES:
            continue
        if torch.equal(levels, torch.arange(len(levels), dtype=levels.dtype)):
            scm.mechanisms[k] = seeded_categorical(scm, k, len(levels))
            scm.auto_nodes.discard(k)
            nodes.append(k)
        elif len(levels) < len(v) and not _rounded_by_float32(levels):
            # values repeat (a few rows of distinct values do not); float32 rounding of a
            # large offset is not a code (warn_about_columns names that)
            shown = ", ".join(f"{x:g}" for x in levels.tolist())
            warnings.warn(
                f"node {k!r} takes only {len(levels)} distinct values ({shown}); \"auto\" "
                f"models it as continuous (a flow or linear-Gaussian), which samples values "
                f"between them: recode it as 0..{len(levels) - 1} to make it categorical",
                UserWarning,
                stacklevel=stacklevel,
            )
    return nodes


def size_declared_categoricals(scm: SCM, rows: dict[str, Tensor]) -> list[str]:
    """Give every node declared by the name ``"categorical"`` (which builds 2 categories) as
    many categories as its ``rows`` (``{node: (n, 1)}``) hold codes, when they are exactly
    ``0..k-1``, every code present; returns the nodes resized. Other codes are left to
    :func:`~scm.mechanisms.categorical.check_category_codes`'s message. A 3-class column so
    declared was refused ("codes 0..1; got 2") with no way to say 3 by name (the CLI's
    ``--mechanism node=categorical`` counts them the same way)."""
    nodes = []
    for k in scm.nodes:
        if scm.declared_kind(k) != "categorical" or scm.dims[k] != 1:
            continue
        levels = torch.unique(rows[k])
        coded = torch.equal(levels, torch.arange(len(levels), dtype=levels.dtype))
        if coded and len(levels) >= 2 and len(levels) != scm.mechanisms[k].categories:
            scm.mechanisms[k] = seeded_categorical(scm, k, len(levels))
            nodes.append(k)
    return nodes


def seeded_categorical(scm: SCM, node: str, categories: int) -> Mechanism:
    """A :class:`~scm.mechanisms.CategoricalMechanism` for ``node`` with ``categories``
    codes, its conditioner's initial weights from the SCM's seed, not the global stream (two
    fits with the same seeds gave different models)."""
    from scm.mechanisms import CategoricalMechanism

    context_dim = sum(scm.dims[p] for p in scm.parents[node])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(scm.seed + 1 + scm.nodes.index(node))
        return CategoricalMechanism(1, context_dim, categories=categories)


def _rounded_by_float32(levels: Tensor) -> bool:
    """Whether sorted distinct values ``levels`` are float32's rounding of a continuous column
    (a Unix timestamp's 442 values became 6): float32's spacing at their magnitude is over 1%
    of their range."""
    spacing = torch.finfo(torch.float32).eps * float(levels.abs().max())
    return spacing > 0.01 * float(levels.max() - levels.min())


def _warn_if_vector_of_codes(node: str, v: Tensor, stacklevel: int) -> None:
    """Warn when every column of vector ``node``'s rows ``v (n, dim)`` takes 2 to
    :data:`MAX_AUTO_CATEGORIES` repeated values: ``"auto"`` keeps a continuous flow there (a
    vector node is never categorical), which samples values between the codes (columns of 0/1
    sampled a mean of .437 against the data's .5, and values other than 0 and 1)."""
    counts = [len(torch.unique(v[:, j])) for j in range(v.shape[-1])]
    if all(2 <= c <= MAX_AUTO_CATEGORIES for c in counts) and max(counts) < len(v):
        warnings.warn(
            f"vector node {node!r} has columns of only {max(counts)} distinct values or fewer; "
            "\"auto\" models it as continuous (a flow or linear-Gaussian): declare its columns "
            "as scalar nodes to make them categorical",
            UserWarning,
            stacklevel=stacklevel,
        )


def mark_homoscedastic_flows(
    scm: SCM, train: dict[str, Tensor]
) -> dict[str, LinearityCheck | None]:
    """Make every ``"auto"`` node's scalar flow (no conditional spline layers) with parents
    homoscedastic (:attr:`~scm.mechanisms.flow.FlowMechanism.homoscedastic`) unless the
    linearity check on ``train`` finds the noise's spread depending on the parents; rival
    flows copy the flag. Returns the checks made, ``{node: check}`` (``fit_mle`` passes them
    on to :func:`~scm.gaussian_noise.choose_linear_before_training`)."""
    checks = {}
    for k in scm.auto_nodes:
        mech, parents = scm.mechanisms[k], scm.parents[k]
        if parents and isinstance(mech, FlowMechanism) and mech.n_transforms == 0:
            check = checks[k] = check_linearity(*in_units(mech, train, k, parents))
            mech.homoscedastic = check is not None and check.scale <= check.scale_penalty
    return checks


def retire_losing_flows(
    candidates: dict[str, list[str]],
    nll: dict[str, float],
    n_val: int,
    scored: Sequence[Sequence[str]],
    stacks: Sequence[StackedFlows],
) -> None:
    """Stop training every candidate flow (``"node"`` or ``"node@j"``,
    :func:`~scm.fit.training_stacks`) whose held-out NLL ``nll`` (nats per row) trails its
    node's best candidate by more than :data:`RETIRE_GAP` nats over the ``n_val`` rows: it
    leaves ``candidates`` (in place) and its stack evaluates it no more
    (:meth:`~scm.stacked.StackedFlows.retire`). A stack keeps its last live member; a flow
    outside every stack (a node's own, when it is the only flow node) is not retired."""
    for keys in candidates.values():
        if len(keys) < 2:
            continue
        best = min(keys, key=nll.__getitem__)
        for c in [c for c in keys if c != best and (nll[c] - nll[best]) * n_val > RETIRE_GAP]:
            names, stack = next(((names, stack) for names, stack
                                 in zip(scored, stacks, strict=True) if c in names), (None, None))
            # a node's own flow outside every stack (the only flow node) trains to the end
            if stack is not None and len(stack.live) > 1:
                stack.retire([names.index(c)])
                keys.remove(c)

def rival_flows(scm: SCM, train: dict[str, Tensor], seed: int) -> list[dict[str, FlowMechanism]]:
    """For each conditioner of :data:`AUTO_CONDITIONERS`, ``{node: new flow}`` for the ``"auto"``
    nodes with parents whose stackable flow has another conditioner; standardised on ``train``
    and initialised from ``seed``. Conditioners that no node needs are left out."""
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for activation, hidden in AUTO_CONDITIONERS:
            flows = {}
            for k in scm.nodes:
                mech = scm.mechanisms[k]
                if (k not in scm.auto_nodes or not scm.parents[k] or not stackable(mech)
                        or (mech.activation, mech.hidden) == (activation, hidden)):
                    continue
                flows[k] = FlowMechanism(mech.dim, mech.context_dim, bins=mech.bins,
                                         hidden=hidden, activation=activation,
                                         homoscedastic=mech.homoscedastic)
                flows[k].set_log_scale(mech.log_value, mech.log_context)
                context = torch.cat([train[p] for p in scm.parents[k]], -1)
                with torch.no_grad():
                    flows[k].standardize(train[k], context)
            if flows:
                out.append(flows)
    return out

def select_auto_mechanism(
    scm: SCM,
    node: str,
    train: dict[str, Tensor],
    val: dict[str, Tensor],
    refit: dict[str, Tensor] | None = None,
    rivals: Sequence[Mechanism] = (),
    choose_on: dict[str, Tensor] | None = None,
    check_on: dict[str, Tensor] | None = None,
) -> None:
    """Set ``node``'s mechanism to the flow among its own and ``rivals`` (other conditioners,
    :data:`AUTO_CONDITIONERS`) with the highest log-likelihood on held-out rows ``choose_on``
    (default ``val``); then swap that flow for a linear-Gaussian mechanism unless the data call
    for the flow.

    The flow is kept when (a) the closed-form linearity check on ``refit`` (all rows; ``train``
    without it, :func:`~scm.linearity.check_linearity`) finds the parents' effect curved or the
    noise's spread depending on them, and the flow does not lose to linear on ``choose_on``
    (``val`` without it) by more than :data:`LOSS_Z` standard errors of the summed per-row
    log-likelihood difference (and :data:`TIE_NATS` nats); or (b) the flow gains more than
    :data:`SHAPE_GAIN` nats on ``val`` (a linear, homoscedastic dependence with non-Gaussian
    noise: the flow keeps its noise law with a linear location, :func:`with_linear_location`).
    Why the check: a near-linear mechanism (a tanh over the data's range) gains only
    about a nat over the linear fit on 500 held-out rows, within chance, yet its curvature
    decides counterfactuals that move the parents far; a linear node's chance win by 1-2 nats
    cost as much the other way (collider seed 23: CF RMSE .0356 vs .0030). A fixed margin could
    not tell the two apart (1 nat lets linear nodes go to the flow; 3 nats sent near-linear
    random20 nodes to linear: .0598 -> .0627), and the polynomial check on every row does: on
    ``bench/flow_conditioner.py``'s cases, seeds 20-25 (never the SCM benchmark's), its mean
    statistic was 31-70 against a penalty of 17 on random20's near-linear x15, and at most 8
    against penalties of 17-43 on every node of the chain and the collider (the spread statistic
    at most 9 against 17-34). Counterfactual RMSE in stds, mean of the six seeds before ->
    after: random20 .0590 -> .0530 (seeds 20 and 24 had sent x15 to linear: .0672 -> .0472,
    .0722 -> .0562), chain .0169 -> .0119 (seed 20 had kept a flow for x2 at a 1.9-nat gain:
    .0468 -> .0137), collider, triangle, random10 and pendulum the same to four digits on every
    seed.

    ``check_on``: the rows of the linearity check instead of ``refit`` (``fit_mle`` passes one
    row of each group of copies, :func:`~scm.rows.one_row_per_copy`, and held-out rows
    likewise: twenty copies of 100 chain rows made the check's statistic and the held-out
    gains twentyfold, and flows won linear nodes).

    ``fit_mle`` chooses the conditioner on both held-out sets (1,000 rows at 5,000;
    ``choose_on``) and flow-or-linear on the selection rows where the check sees a line. On
    the early-stopping rows alone (500) the ReLU/ELU choice was noisy: on
    ``bench/scm_queries.py``'s seed 7 the triangle's x3 went to ELU by 0.2 nats there while
    ReLU led by 7 nats on the selection rows, and the counterfactual error doubled (.0506 ->
    .0989). Both sets, on ``bench/flow_conditioner.py``'s cases, seeds 20-25, CF RMSE in
    stds, early-stopping rows -> both: random10 .0509 -> .0481 (MMD² 1.06e-4 -> 8.4e-5),
    random20 .0530 -> .0523 (MMD² 1.9e-5 -> 1.4e-5), triangle .0546 -> .0554 (seed 20 .0492
    -> .0545), pendulum, chain and collider the same. That the better
    of two flows is then scored on rows that chose it biases its flow-or-linear margin
    upwards, which once let flows win linear-Gaussian nodes by chance (collider seed 23 at 1.4
    nats, when the margin was 1 nat for every node); with the linearity check a flow that the
    check does not call for needs :data:`SHAPE_GAIN` nats, and the chain's and collider's
    choices did not change. A flow the check calls for is scored against linear on both sets
    (``choose_on``): 500 rows alone are noisy enough for a good flow to lose there by several
    nats. On ``bench/scm_queries.py``'s random20 with seed 26 (not a reported seed), x11
    (tanh of one parent, check statistic 150 against a penalty of 17) went to linear at -4.3
    nats on the selection rows while the flow led by 5.5 on both sets; the linear fit's
    median was off the true curve by up to .14 in data units (the flow's by .06), and the
    interventional mean of x11 by 0.22 std. The bias toward the chosen flow matters little
    where the check has already ruled out a line. The loss a curved node's flow may take there
    scales with the rows' noise (:data:`LOSS_Z`), not a fixed :data:`TIE_NATS`: on
    ``bench/scm_queries.py``'s cases at 1,000 training rows, seeds 0-5, counterfactual RMSE in
    stds, fixed -> scaled: random10 .134 -> .112 (seed 0 .214 -> .082), random20 .135 -> .118
    (5 seeds better, 1 worse), triangle the same; on ``bench/flow_conditioner.py``'s cases at
    5,000 rows, seeds 20-25, one node of one fit changed (random20 seed 25, off the
    counterfactual's path) and every counterfactual error and the pendulum's, random10's and
    the triangle's MMD² stayed the same.

    The linear candidate is fitted in closed form (least squares is its MLE), so trying it
    costs nothing. Like DoWhy's automatic assignment the choice is per node (the
    log-likelihood factorises over nodes), on held-out rows ``val`` used for nothing else.
    (An earlier rule kept the flow only when it won by two standard errors of the paired
    difference, a Vuong-style test leaning to the simpler model: on the 20-node random DAG it
    chose linear for 3-6 of the 11 non-root nodes, near-linear tanh mechanisms, and
    counterfactual RMSE rose from .073 to .099 std.) The choice compares both fitted on
    ``train``; a chosen linear mechanism is then refitted on ``refit`` (all rows, when given):
    the held-out rows were needed to choose, not to estimate, and a closed-form fit has no
    early stopping to feed (bench/scm_queries.py, collider, 5,000 rows: counterfactual RMSE
    .0092 -> .0086, now equal to DoWhy's least squares to float32 rounding).
    """
    parents = scm.parents[node]
    with torch.no_grad():
        val_context = torch.cat([val[p] for p in parents], -1) if parents else None
        candidates = [scm.mechanisms[node], *rivals]
        rows = val if choose_on is None else choose_on
        context = val_context
        if rows is not val and parents:
            context = torch.cat([rows[p] for p in parents], -1)
        per_row = [m(context).log_prob(rows[node]) for m in candidates]
        scores = [p.sum().item() for p in per_row]
        best = max(range(len(candidates)), key=scores.__getitem__)
        flow = scm.mechanisms[node] = candidates[best]
        linear = linear_mle(flow, node, parents, train)
        diff = per_row[best] - linear(context).log_prob(rows[node])
        gain_on_rows = diff.sum().item()
        # the standard error of the sum of n per-row differences: sqrt(n) * their sd
        se = math.sqrt(len(diff)) * diff.std().item() if len(diff) > 1 else 0.0
        loss_allowed = max(TIE_NATS, LOSS_Z * se)
        gain = gain_on_rows
        if rows is not val:
            gain = (flow(val_context).log_prob(val[node])
                    - linear(val_context).log_prob(val[node])).sum().item()
    every_row = check_on if check_on is not None else refit if refit is not None else train
    check = check_linearity(*in_units(flow, every_row, node, parents)) if parents else None
    bent = check is not None and check.rejects_linear
    if not ((bent and gain_on_rows > -loss_allowed) or gain > SHAPE_GAIN):
        if refit is not None:
            linear = linear_mle(flow, node, parents, refit)
        scm.mechanisms[node] = linear
    elif not bent and parents and linear_location_fits(flow):
        # rule (b) alone: a line with a non-Gaussian noise, so the flow keeps its noise law
        # and its location becomes the line closest to its conditioner's, unless that loses
        # on the choosing rows by the margin a curved flow may lose to linear-Gaussian
        line = with_linear_location(flow, every_row, node, parents)
        with torch.no_grad():
            loss = per_row[best] - line(context).log_prob(rows[node])
        se_loss = math.sqrt(len(loss)) * loss.std().item() if len(loss) > 1 else 0.0
        if loss.sum().item() < max(TIE_NATS, LOSS_Z * se_loss):
            scm.mechanisms[node] = line
    log.info(
        "node %s: flow - linear held-out log-lik %.2f nats (%.2f on the choosing rows, "
        "loss allowed %.2f), linearity check %s: keep %s",
        node,
        gain,
        gain_on_rows,
        loss_allowed,
        check,
        scm.mechanisms[node].kind,
    )


def linear_location_fits(flow: Mechanism) -> bool:
    """Whether :func:`with_linear_location` applies to ``flow``: a scalar location-scale
    flow with a conditioner whose parents move its location only."""
    return (isinstance(flow, FlowMechanism) and flow.dim == 1 and flow.n_transforms == 0
            and flow.homoscedastic and flow.loc_scale is not None and bool(flow.hidden))


def with_linear_location(
    flow: FlowMechanism, rows: dict[str, Tensor], node: str, parents: list[str]
) -> FlowMechanism:
    """A copy of homoscedastic scalar ``flow`` (:func:`linear_location_fits`) whose
    conditioner is one linear layer (``hidden=()``): the least-squares line through the
    trained conditioner's shifts at ``rows``' parents, the noise law, scale and
    standardisation kept. Returns the new flow (eval mode).

    Why: where the linearity check finds the parents' effect linear and the noise's spread
    constant, but the noise is not Gaussian (rule (b) of :func:`select_auto_mechanism`), the
    MLP's location is a line only where the rows are and bends beyond them. On a linear DAG
    with Laplace and exponential noises (2,000 rows, 3 seeds), counterfactuals under do(x)
    at +4 std had RMSE .046 / .096 / .152 std with the MLP's location, .002 / .049 / .001
    with this one (linear-Gaussian mechanisms .025 / .000 / .023). ``select_auto_mechanism``
    keeps the line unless it loses on the choosing rows by the margin a curved flow may lose
    to linear-Gaussian: on 353 rows of scikit-learn's diabetes table the check's low power let
    curved nodes through, and the lines always kept cost 0.37 nats per row of 5-fold held-out
    log-likelihood (with the margin: -29.64 vs -29.63; wine -19.38 vs -19.36, breast cancer
    8.11 vs 8.14). It fired on none of ``bench/scm_queries.py``'s 120 zoo fits (seeds 0-19):
    their noises are Gaussian."""
    line = FlowMechanism(flow.dim, flow.context_dim, bins=flow.bins, hidden=(),
                         activation=flow.activation, homoscedastic=True)
    state = {k: v for k, v in flow.state_dict().items() if not k.startswith("loc_scale.")}
    line.load_state_dict(state, strict=False)
    line.set_log_scale(flow.log_value, flow.log_context)
    with torch.no_grad():
        z = flow._standardized_context(torch.cat([rows[p] for p in parents], -1))
        shift = flow.loc_scale(z)[:, : flow.dim]  # (n, 1), in the flow's standardised units
        design = torch.cat([z, torch.ones_like(shift)], -1).double()
        coef = torch.linalg.lstsq(design, shift.double()).solution.float()  # (context + 1, 1)
        layer = line.loc_scale[-1]
        layer.weight.zero_()
        layer.bias.zero_()
        layer.weight[: flow.dim] = coef[:-1].T
        layer.bias[: flow.dim] = coef[-1]
    return line.eval()


def choose_by_linearity_check(
    scm: SCM, node: str, rows: dict[str, Tensor], check_on: dict[str, Tensor] | None = None
) -> bool:
    """Keep ``node``'s flow where the linearity check on ``rows`` (``{name: (n, width)}``)
    rejects a linear-Gaussian mechanism, else swap in the closed-form linear fit on ``rows``
    (a root, with no check, goes linear); returns whether the flow was kept.

    The fallback of :func:`select_auto_mechanism`'s rule (a) when no rows are held out to
    compare likelihoods on: a non-Gaussian noise shape (its rule (b)) goes unseen."""
    parents, flow = scm.parents[node], scm.mechanisms[node]
    checked = rows if check_on is None else check_on
    check = check_linearity(*in_units(flow, checked, node, parents)) if parents else None
    keep = check is not None and check.rejects_linear
    if not keep:
        scm.mechanisms[node] = linear_mle(flow, node, parents, rows)
    log.info("node %s without held-out rows: linearity check %s: keep %s", node, check,
             scm.mechanisms[node].kind)
    return keep


def in_units(
    mechanism: Mechanism, rows: dict[str, Tensor], node: str, parents: list[str]
) -> tuple[Tensor, Tensor]:
    """``(value (n, dim), context (n, context_dim))`` of ``node`` on ``rows`` as ``mechanism``
    models and reads them (logged where it has a log scale, :mod:`scm.log_nodes`)."""
    context = torch.cat([rows[p] for p in parents], -1)
    return mechanism.value_units(rows[node]), mechanism.context_units(context)


def linear_mle(
    like: Mechanism, node: str, parents: list[str], rows: dict[str, Tensor]
) -> LinearGaussian:
    """The closed-form maximum-likelihood :class:`~scm.mechanisms.LinearGaussian` of ``node``
    given ``parents`` on ``rows`` (``{name: (n, width)}``), with the width and log scales of
    mechanism ``like``: least squares in standardised units (of the logs where ``like`` has
    a log scale), the residual standard deviation as the noise scale."""
    from scm.mechanisms import LinearGaussian

    linear = LinearGaussian(like.dim, like.context_dim)
    linear.set_log_scale(like.log_value, like.log_context)
    with torch.no_grad():
        context = torch.cat([rows[p] for p in parents], -1) if parents else None
        linear.standardize(rows[node], context)
        y = (linear.value_units(rows[node]) - linear.loc) / linear.scale
        if context is not None:
            z = (linear.context_units(context) - linear.context_loc) / linear.context_scale
            design = torch.cat([z, torch.ones(len(z), 1)], -1).double()
            coef = torch.linalg.lstsq(design, y.double()).solution.to(y.dtype)
            linear.weight.copy_(coef[:-1].T)
            linear.bias.copy_(coef[-1])
            resid = y - z @ linear.weight.T - linear.bias
        else:
            linear.bias.copy_(y.mean(0))
            resid = y - linear.bias
        linear.log_scale.copy_(resid.std(0).clamp_min(1e-6).log())
    return linear
