"""ArviZ views of a Bayesian SCM: InferenceData, summaries with R-hat / ESS, predictive checks."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch import Tensor

from scm.bayes._arviz import az, from_dict
from scm.bayes.queries import _posterior, each_draw, pointwise_log_lik
from scm.frame import columns_for, to_frame, to_tensors
from scm.io import as_if_opened

if TYPE_CHECKING:
    from scm.scm import SCM

_NODE_DIM = {"bias", "noise", "intercept", "noise_sd"}
_NODE_BY_PARENT = {"weight", "coef"}


def joint_name(scm: SCM) -> str:
    """Name of the log-likelihood variable summed over nodes (``"joint"`` unless taken)."""
    name = "joint"
    while name in scm.dims:
        name += "_"
    return name


def _posterior_groups(scm: SCM) -> tuple[dict[str, np.ndarray], dict[str, list[str]], dict]:
    """Raw parameter draws plus each mechanism's data-unit quantities, with dims and coords."""
    posterior = _posterior(scm)
    arrays: dict[str, np.ndarray] = {}
    dims: dict[str, list[str]] = {}
    coords: dict[str, list[str]] = {}
    for node, mech in scm.mechanisms.items():
        raw = posterior.site_draws(node)
        with torch.no_grad():
            derived = mech.derived(raw)
        coords[f"{node}_dim"] = columns_for(node, scm.dims[node])
        parents = [c for p in scm.parents[node] for c in columns_for(p, scm.dims[p])]
        if parents:
            coords[f"{node}_parent"] = parents
        for key, value in {**raw, **derived}.items():
            name = f"{node}.{key}"
            arrays[name] = value.detach().double().numpy()
            if key in _NODE_DIM:
                dims[name] = [f"{node}_dim"]
            elif key in _NODE_BY_PARENT:
                dims[name] = [f"{node}_dim", f"{node}_parent"]
    return arrays, dims, coords


def posterior_dataset(scm: SCM) -> xr.Dataset:
    """The posterior as an ``xarray.Dataset`` (dims ``chain, draw, ...``).

    Sites are ``"{node}.{parameter}"`` in standardised units; ``bayes-linear`` nodes add
    ``"{node}.coef"``, ``"{node}.intercept"`` and ``"{node}.noise_sd"`` in data units.
    """
    arrays, dims, coords = _posterior_groups(scm)
    return from_dict({"posterior": arrays}, dims=dims, coords=coords).posterior


def summary(scm: SCM, *, hdi_prob: float = 0.94, var_names: list[str] | None = None) -> Any:
    """``az.summary`` of the posterior: mean, sd, HDI, MCSE, bulk/tail ESS and R-hat."""
    return az.summary(posterior_dataset(scm), var_names=var_names, hdi_prob=hdi_prob)


def to_inference_data(
    scm: SCM, df: pd.DataFrame | None = None, *, predictive: bool = True, seed: int = 0
) -> Any:
    """The fit as ``arviz.InferenceData``.

    Groups: ``posterior`` (as :func:`posterior_dataset`), ``observed_data`` (one variable
    per column, dim ``row``), ``log_likelihood`` (``log p(x_node | parents, theta)`` per node
    and their sum, named by :func:`joint_name`, dims ``chain, draw, row``: what ``az.loo``
    needs), ``sample_stats`` (``lp``, the log joint; after NUTS also ``diverging`` and
    ``step_size``) and, with ``predictive``, ``posterior_predictive`` (one replicate of the
    data per draw, each draw with its own noise, seeded by ``seed``).

    Args:
        df: data to evaluate on; default the training data.
    """
    posterior = _posterior(scm)
    x = to_tensors(df, scm.dims) if df is not None else posterior.observed
    n = next(iter(x.values())).shape[0]
    arrays, dims, coords = _posterior_groups(scm)
    coords["row"] = list(range(n))
    per_node, lp = pointwise_log_lik(scm, x)
    log_lik: dict[str, np.ndarray] = dict(per_node)
    log_lik[joint_name(scm)] = sum(per_node.values())
    for name in log_lik:
        dims[name] = ["row"]
    stats = {"lp": lp, **{k: v.numpy() for k, v in posterior.sample_stats.items()}}
    observed = _columns(x, scm.dims)
    groups: dict[str, dict[str, Any]] = {
        "posterior": arrays,
        "sample_stats": stats,
        "log_likelihood": log_lik,
        "observed_data": observed,
    }
    if predictive:
        groups["posterior_predictive"] = _replicates(scm, n, seed)
    for col in observed:
        dims[col] = ["row"]
    return from_dict(groups, dims=dims, coords=coords)


def _columns(x: Mapping[str, Tensor], dims: Mapping[str, int]) -> dict[str, np.ndarray]:
    frame = to_frame(x, dims)
    return {c: frame[c].to_numpy() for c in frame.columns}


def _replicates(scm: SCM, n: int, seed: int) -> dict[str, np.ndarray]:
    counter = iter(range(10**9))
    intervened = scm.do({})
    grid = each_draw(
        _posterior(scm), lambda: intervened.sample_tensors(n, seed * 100_003 + next(counter))
    )
    frames = [[to_frame(t, scm.dims) for t in row] for row in grid]
    cols = frames[0][0].columns
    return {c: np.array([[f[c].to_numpy() for f in row] for row in frames]) for c in cols}


def plot_ppc(
    scm: SCM,
    path: str | os.PathLike[str],
    df: pd.DataFrame | None = None,
    *,
    num_pp_samples: int = 100,
    seed: int = 0,
) -> Path:
    """Write ArviZ's posterior-predictive check (``az.plot_ppc``, a panel per column) to PNG.

    Returns:
        The path written.
    """
    import matplotlib.pyplot as plt

    idata = to_inference_data(scm, df, seed=seed)
    draws = idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"]
    axes = az.plot_ppc(idata, num_pp_samples=min(num_pp_samples, draws), random_seed=seed)
    fig = np.ravel(axes)[0].figure
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def write_netcdf(idata: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``idata`` to netCDF at ``path`` atomically (temporary file, then rename)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".nc")
    os.close(fd)
    as_if_opened(tmp)
    try:
        idata.to_netcdf(tmp)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
