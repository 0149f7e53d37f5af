"""The rows a fit takes: checks and warnings about them, and the seeded split into training
and held-out rows (copies of a row kept together)."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from scm.auto import MAX_AUTO_CATEGORIES, choose_by_linearity_check
from scm.collinear import warn_if_collinear_parents
from scm.point_mass import warn_if_point_mass

if TYPE_CHECKING:
    from scm.scm import SCM


FEW_ROWS = 100
"""Below this many rows ``fit`` warns that declared neural mechanisms (``"flow"``,
``"additive"``) may answer worse than ignoring the intervention. A 6-node random nonlinear
DAG (``zoo.random_dag(6, seed=5)``), counterfactual RMSE in stds (fit seed 0), flow /
additive / ``"auto"`` / the factual row unchanged: 30 rows 3.57 / 1.17 / .47 / 1.29 (the
flows abducted new rows' noise as far as -168 std), 100 rows .28 / .46 / .29 / 1.24, 300 rows
.21 / .27 / .23 / 1.12. ``"auto"`` nodes can fall back to linear and are not warned about."""


FLOAT32_STEP = 0.01
"""The largest float32 rounding step, as a fraction of a column's standard deviation, that
``fit`` takes without a warning. Values are stored in float32 (7 significant digits): a
column of spread 1 around 1e7 is rounded to whole units, and a linear chain shifted by 1e7
answered ``ate`` 0.0 (truth -1.8); around 1e6 (steps of 0.06 std) -1.75."""


FAR_OUT_MADS = 1000.0
"""A value this many robust standard deviations (1.4826 median absolute deviations) from its
column's median draws a warning from ``fit`` (a missing-value code such as 99999, a typo).
Every node is standardised by its mean and std, which one such cell inflates: on x -> y -> z
(nonlinear, 2,000 rows) one y of 99999 (1e5 stds) turned the ATE of x on z from +2.39 to
+0.00 for flows, ``"auto"`` and linear mechanisms alike; an outlier at 1e4 stds gave +0.64,
at 1e3 +2.22 (truth +2.41). A Gaussian column's farthest of 5,000 values lies ~4 away."""


def warn_about_columns(scm: SCM, x: dict[str, Tensor], stacklevel: int = 4) -> None:
    """Warn (``UserWarning``, ``stacklevel`` frames up) about each node of rows ``x``
    (``{node: (n, dim)}``) that is constant (its children cannot learn its effect, and an
    intervention on it extrapolates), whose float32 rounding exceeds :data:`FLOAT32_STEP`
    of its spread, or that holds a value :data:`FAR_OUT_MADS` robust stds from its median;
    and about parents that are collinear (:mod:`scm.collinear`)."""
    if len(x[scm.nodes[0]]) < 2:
        return
    for node in scm.nodes:
        v = x[node]
        warn_if_flow_on_few_values(scm, node, v, stacklevel + 1)
        warn_if_point_mass(scm, node, v, stacklevel + 1)
        warn_if_collinear_parents(node, scm.parents[node], x, scm.dims, stacklevel + 1)
        warn_if_far_out(node, v, stacklevel + 1)
        std, size = v.std(0), v.abs().amax(0)
        step = size * torch.finfo(v.dtype).eps
        if bool((v.amax(0) == v.amin(0)).any()):
            warnings.warn(
                f"node {node!r} is constant in the data ({v[0].tolist()}): a mechanism cannot "
                "learn its effect on its children, and an intervention on it extrapolates",
                UserWarning, stacklevel=stacklevel)
        elif bool((step > FLOAT32_STEP * std).any()):
            i = int((step / std).argmax())
            warnings.warn(
                f"node {node!r} varies by {std[i].item():.3g} (std) around "
                f"{v[:, i].mean().item():.4g}: cauflow computes in float32, which rounds it in "
                f"steps of {step[i].item():.2g}, {(step[i] / std[i]).item():.2g} of its spread; "
                "subtract an offset (e.g. its mean) before fitting",
                UserWarning, stacklevel=stacklevel)


def warn_if_far_out(node: str, v: Tensor, stacklevel: int) -> None:
    """Warn when a column of ``v (n, dim)`` holds a value :data:`FAR_OUT_MADS` robust stds
    from its median, naming the row (position) and value; columns with a zero median absolute
    deviation (mostly one value: codes, counts) are left alone."""
    median = v.median(0).values
    spread = 1.4826 * (v - median).abs().median(0).values
    far = (v - median).abs() / spread.clamp_min(1e-30)
    far[:, spread == 0] = 0.0
    if not bool((far > FAR_OUT_MADS).any()):
        return
    row, col = divmod(int(far.argmax()), v.shape[1])
    count = int((far > FAR_OUT_MADS).sum())
    warnings.warn(
        f"node {node!r} has {count} value(s) over {FAR_OUT_MADS:g} robust stds from its median "
        f"{median[col].item():.4g}, the farthest {v[row, col].item():.6g} at row {row} "
        f"({far[row, col].item():.2g} stds): one such cell sets the node's standardisation, "
        "so the other rows' variation is all but lost; drop or fix such rows (a missing-value "
        "code such as 99999?)",
        UserWarning, stacklevel=stacklevel)


def check_fit_args(
    *,
    epochs: int | None,
    batch_size: int,
    patience: int | None,
    steps: int,
    lr: float,
    val_fraction: float,
) -> None:
    """``ValueError`` naming the first fitting argument out of range."""
    sizes = {"epochs": epochs, "batch_size": batch_size, "patience": patience, "steps": steps}
    for name, value in sizes.items():
        if value is not None and not (isinstance(value, int) and value >= 1):
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not (isinstance(lr, int | float) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be positive, got {lr!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")


def check_enough_rows(n: int) -> None:
    """``ValueError`` unless there are two rows or more: one row has no spread to standardise
    by and no residual to estimate a noise scale from."""
    if n < 2:
        raise ValueError(f"fit needs at least 2 rows of data, got {n}")


def choose_auto_without_held_out(
    scm: SCM, x: dict[str, Tensor], distinct: tuple[int, Tensor | None] | None = None
) -> None:
    """With no held-out rows (``val_fraction=0``, or fewer than 20 distinct rows), decide each
    ``"auto"`` node of rows ``x`` by the linearity check alone, before training
    (:func:`~scm.auto.choose_by_linearity_check`), and say so in a ``UserWarning``.

    Before, such a fit skipped the choice and kept a flow at every ``"auto"`` node: on 19 rows
    of the chain the counterfactual RMSE was 3.40 (in stds) against .69 for ``"linear"``."""
    if not scm.auto_nodes:
        return
    once = one_row_per_copy(x, distinct)  # the check counts copies of a row once
    kept = [k for k in scm.nodes if k in scm.auto_nodes and scm.mechanisms[k].kind == "flow"
            and choose_by_linearity_check(scm, k, x, check_on=once)]
    warnings.warn(
        "no held-out rows (val_fraction=0 or fewer than 20 distinct rows): 'auto' chose "
        "linear-Gaussian mechanisms by the linearity check alone, without comparing "
        f"likelihoods; flows kept: {kept or 'none'}",
        UserWarning, stacklevel=5)


def warn_if_flow_on_few_values(scm: SCM, node: str, v: Tensor, stacklevel: int) -> None:
    """Warn when a declared flow or additive-noise ``node`` (not ``"auto"``'s, which
    :func:`~scm.auto.categorical_for_coded_columns` handles) has scalar rows ``v (n, 1)`` of 2
    to :data:`~scm.auto.MAX_AUTO_CATEGORIES` distinct values that repeat: a density fitted
    to point masses samples values between them (a declared flow on a Bernoulli(.5) column
    sampled P(t = 1) = .39, and values other than 0 and 1)."""
    if node in scm.auto_nodes or scm.mechanisms[node].kind not in ("flow", "additive"):
        return
    if v.shape[-1] != 1:
        return
    levels = torch.unique(v)
    if 2 <= len(levels) <= MAX_AUTO_CATEGORIES and len(levels) < len(v):
        shown = ", ".join(f"{x:g}" for x in levels.flatten().tolist())
        warnings.warn(
            f"node {node!r} takes only {len(levels)} distinct values ({shown}), but its "
            f"mechanism is a continuous {scm.mechanisms[node].kind}: declare it 'categorical' "
            f"(codes 0..k-1; cauflow fit --mechanism {node}=categorical) or use "
            "mechanisms='auto'",
            UserWarning, stacklevel=stacklevel)


def warn_if_few_rows(scm: SCM, n: int, stacklevel: int = 4) -> None:
    """Warn (``UserWarning``, at the caller ``stacklevel`` frames up) when ``n`` rows are fewer
    than :data:`FEW_ROWS` and some declared mechanism is a neural one, naming those nodes."""
    neural = [k for k in scm.nodes if k not in scm.auto_nodes
              and scm.mechanisms[k].kind in ("flow", "additive")]
    if n < FEW_ROWS and neural:
        warnings.warn(
            f"fitting neural mechanisms ({', '.join(neural)}) on {n} rows: below {FEW_ROWS} "
            "rows they can answer worse than ignoring the intervention; consider "
            "mechanisms='auto' or 'linear'",
            UserWarning,
            stacklevel=stacklevel,
        )


def split_rows(
    x: dict[str, Tensor],
    scm: SCM,
    gen: torch.Generator,
    val_fraction: float,
    *,
    distinct: tuple[int, Tensor | None] | None = None,
) -> dict[str, dict[str, Tensor]]:
    """Seeded split of fully observed rows into ``{"train", "val", "sel"}`` (each ``{node:
    (m, dim)}``): held-out rows for early stopping, and as many again for the flow-or-linear
    choice of ``"auto"`` nodes (none without them), so that choice is made on rows neither
    training nor early stopping has seen and is not biased toward the flow.

    Copies of a row (:func:`distinct_rows`) go to the same part (the fractions then count
    distinct rows): a held-out copy of a training row scores the fit on what it was trained
    on. Fifty rows of the chain
    repeated 40 times let ``"auto"`` keep flows whose counterfactual RMSE was 2.25 (x3, in
    stds) against .31 on the fifty rows alone. No held-out rows below 20 distinct rows.
    ``distinct``: :func:`distinct_rows` of ``x`` if the caller has it already."""
    groups, inverse = distinct_rows(x, scm) if distinct is None else distinct
    order = torch.randperm(groups, generator=gen)
    n_val = int(round(val_fraction * groups)) if groups >= 20 else 0
    n_sel = n_val if scm.auto_nodes else 0
    if inverse is None:  # every row distinct: the rows themselves are shuffled
        idx = {"val": order[:n_val], "sel": order[n_val : n_val + n_sel],
               "train": order[n_val + n_sel :]}
    else:
        place = torch.empty_like(order)
        place[order] = torch.arange(groups)
        place = place[inverse]  # each row's group's place in the shuffled order
        parts = {"val": place < n_val, "sel": (place >= n_val) & (place < n_val + n_sel),
                 "train": place >= n_val + n_sel}
        idx = {name: part.nonzero().squeeze(1) for name, part in parts.items()}
    return {name: {k: v[i] for k, v in x.items()} for name, i in idx.items()}


def distinct_rows(x: dict[str, Tensor], scm: SCM) -> tuple[int, Tensor | None]:
    """``(number of distinct rows, each row's group index (n,))`` of ``x`` (``{node: (n,
    dim)}``) where its repeats are copies: the index ``None`` (and the count ``n``) when no
    row repeats another, or when no column holds a non-integer value.

    Two independent draws of a real-valued measurement never coincide, so a repeated row with
    such a column is a copy (a bootstrap resample, oversampling) and held out with its
    original it would score the fit on its training rows. Rows of codes and counts repeat by
    chance: they keep the plain row split, else whole cells of a table of discrete columns
    would be held out and never trained on. Rows are keyed by a fixed random projection in
    float64 and the keys sorted (``torch.unique`` over rows would sort whole rows); two
    different rows that share a key merely train or stay held out together."""
    matrix = torch.cat([x[k] for k in scm.nodes], -1).double()
    n = matrix.shape[0]
    if not bool((matrix != matrix.round()).any()):
        return n, None
    weights = torch.randn(matrix.shape[1], generator=torch.Generator().manual_seed(0),
                          dtype=torch.float64)
    keys, inverse = torch.unique(matrix @ weights, return_inverse=True)
    return (n, None) if len(keys) == n else (len(keys), inverse)


def one_row_per_copy(
    x: dict[str, Tensor], distinct: tuple[int, Tensor | None] | None
) -> dict[str, Tensor]:
    """``x`` (``{node: (n, dim)}``) with one row of each group of copies that
    :func:`distinct_rows` found (``distinct``, its result; ``None`` or no copies: ``x``
    itself), for checks whose statistics must count a measurement once: twenty copies of 100
    rows made the linearity check's statistic grow twentyfold against a penalty that grows with
    ``log n``."""
    if distinct is None or distinct[1] is None:
        return x
    order = torch.argsort(distinct[1], stable=True)
    grouped = distinct[1][order]
    first = order[torch.cat([grouped.new_ones(1, dtype=torch.bool), grouped[1:] != grouped[:-1]])]
    return {k: v[first] for k, v in x.items()}


def distinct_part(part: dict[str, Tensor], scm: SCM) -> dict[str, Tensor]:
    """A part of :func:`split_rows` (which keeps copies together) with one row of each group of
    copies: for choices whose evidence must count a measurement once."""
    return one_row_per_copy(part, distinct_rows(part, scm)) if part[scm.nodes[0]].shape[0] else part
