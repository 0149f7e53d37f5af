"""Posterior versions of the SCM's queries: run the point query once per posterior draw.

Each draw's parameters are fixed with ``poutine.condition`` on the parameter sites, so the
query code is the same as for a point-estimate SCM. Every draw uses the same seed (common
random numbers): the spread between draws is parameter uncertainty, not Monte-Carlo noise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd
import torch
import xarray as xr
from pyro import poutine
from torch import Tensor

from scm.bayes.draws import Draws
from scm.bayes.posterior import Posterior
from scm.frame import columns_for, to_frame
from scm.interventions import Interventions

if TYPE_CHECKING:
    from scm.scm import SCM, Intervened

T = TypeVar("T")


def each_draw(posterior: Posterior, query: Callable[[], T]) -> list[list[T]]:
    """``[[query() under draw (c, d) for d] for c]``: ``query`` with the parameters fixed."""
    out: list[list[T]] = [[] for _ in range(posterior.num_chains)]
    for chain, _, params in posterior.draws():
        with poutine.condition(data=params):
            out[chain].append(query())
    return out


def sample_draws(intervened: Intervened, n: int, seed: int) -> Draws:
    """``n`` rows of the intervened model per posterior draw; variables per column."""
    scm = intervened.scm
    grid = each_draw(_posterior(scm), lambda: intervened.sample_tensors(n, seed))
    return _frames_to_draws([[to_frame(t, scm.dims) for t in row] for row in grid], np.arange(n))


def means_draws(intervened: Intervened, n: int, seed: int) -> Draws:
    """Per-draw means of ``n`` intervened rows (no rows kept: memory independent of ``n``)."""
    scm = intervened.scm

    def query() -> dict[str, np.ndarray]:
        values = intervened.sample_tensors(n, seed)
        return {k: v.double().mean(0).numpy() for k, v in values.items()}

    grid = each_draw(_posterior(scm), query)
    data = {}
    for node, dim in scm.dims.items():
        arr = np.array([[d[node] for d in row] for row in grid])  # (chain, draw, dim)
        for i, col in enumerate(columns_for(node, dim)):
            data[col] = (("chain", "draw"), arr[..., i])
    return Draws(xr.Dataset(data))


def ate_draws(
    scm: SCM, treatment: str, outcome: str, *, a: float, b: float, n: int, seed: int
) -> Draws:
    """The average treatment effect under each posterior draw; variable ``"ate"``."""
    grid = each_draw(_posterior(scm), lambda: scm._ate(treatment, outcome, a, b, n, seed))
    arr = np.asarray(grid, dtype=np.float64)
    dims = ("chain", "draw") if arr.ndim == 2 else ("chain", "draw", "dim")
    return Draws(xr.Dataset({"ate": (dims, arr)}))


def counterfactual_draws(scm: SCM, factual: pd.DataFrame, interventions: Interventions) -> Draws:
    """Counterfactual rows of ``factual`` under each posterior draw (abduct with that draw)."""
    grid = each_draw(_posterior(scm), lambda: scm._counterfactual_frame(factual, interventions))
    return _frames_to_draws(grid, factual.index.to_numpy())


def pointwise_log_lik(
    scm: SCM, x: Mapping[str, Tensor], posterior: Posterior | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-node, per-row ``log p(x_node | parents, theta)`` and the log joint, per draw.

    Returns:
        ``({node: (chain, draw, row)}, log_joint (chain, draw))``; the log joint adds the
        log prior of the parameters (ArviZ's ``lp``).
    """
    posterior = posterior or _posterior(scm)
    n = next(iter(x.values())).shape[0]

    def query() -> tuple[dict[str, np.ndarray], float]:
        with torch.no_grad():
            tr = poutine.trace(poutine.condition(scm.model, data=dict(x))).get_trace(n)
            tr.compute_log_prob()
        per_node = {k: tr.nodes[k]["log_prob"].double().numpy() for k in scm.nodes}
        joint = sum(float(s["log_prob_sum"]) for s in tr.nodes.values() if s["type"] == "sample")
        return per_node, joint

    grid = each_draw(posterior, query)
    per_node = {k: np.array([[d[0][k] for d in row] for row in grid]) for k in scm.nodes}
    return per_node, np.array([[d[1] for d in row] for row in grid])


def log_predictive_density(scm: SCM, x: Mapping[str, Tensor]) -> np.ndarray:
    """``log mean_s p(x_i | theta_s)`` per row ``i`` over all posterior draws; ``(n,)``."""
    per_node, _ = pointwise_log_lik(scm, x)
    total = sum(per_node.values()).reshape(-1, next(iter(per_node.values())).shape[-1])
    peak = total.max(0)
    return peak + np.log(np.exp(total - peak).mean(0))


def _frames_to_draws(grid: list[list[pd.DataFrame]], rows: Any) -> Draws:
    columns = list(grid[0][0].columns)
    data = {
        col: (("chain", "draw", "row"), np.array([[f[col].to_numpy() for f in r] for r in grid]))
        for col in columns
    }
    return Draws(xr.Dataset(data, coords={"row": rows}))


def _posterior(scm: SCM) -> Posterior:
    if scm.posterior is None:
        raise ValueError("this SCM has no posterior: fit it with inference='nuts' or 'svi' first")
    return scm.posterior
