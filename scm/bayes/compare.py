"""Compare candidate causal graphs by their out-of-sample predictive fit (PSIS-LOO)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from scm.bayes._arviz import az
from scm.graph import GraphLike


def compare_graphs(
    graphs: Mapping[str, GraphLike],
    df: pd.DataFrame,
    *,
    mechanisms: str = "bayes-linear",
    inference: str = "nuts",
    seed: int = 0,
    progress: bool = False,
    **options: Any,
) -> pd.DataFrame:
    """Fit a Bayesian SCM per graph on ``df`` and rank them with ``az.compare``.

    Each fit's pointwise log-likelihood of a row is summed over all nodes, so every graph
    predicts the same observations and the expected log predictive densities (PSIS-LOO,
    Vehtari, Gelman & Gabry, Statistics and Computing 2017) are comparable. Graphs of one
    Markov equivalence class fit linear-Gaussian data equally well; a graph outside it
    (e.g. a collider read as a chain) loses.

    Returns:
        ``az.compare``'s table, best graph first (``elpd_loo``, ``p_loo``, ``elpd_diff``,
        ``weight``, ``se``, ``dse``, ...), indexed by the names in ``graphs``.
    """
    from scm.bayes.arviz import joint_name, to_inference_data
    from scm.scm import SCM

    if len(graphs) < 2:
        raise ValueError(f"compare_graphs needs at least two graphs, got {len(graphs)}")
    fits = {}
    var_names = set()
    for name, graph in graphs.items():
        scm = SCM(graph, mechanisms=mechanisms).fit(
            df, inference=inference, seed=seed, progress=progress, **options
        )
        fits[name] = to_inference_data(scm, predictive=False)
        var_names.add(joint_name(scm))
    if len(var_names) != 1:
        raise ValueError(f"graphs must share their nodes; log-likelihood names {var_names}")
    return az.compare(fits, var_name=var_names.pop())
