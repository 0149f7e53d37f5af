"""A continuous acyclicity penalty for a learned factor graph, and scoring the learned graph.

``acyclicity`` is the trace-exponential constraint of NOTEARS (Zheng et al. 2018, "DAGs with NO
TEARS"): ``h(A) = tr(exp(A * A)) - d``, zero exactly when the weighted adjacency ``A`` has no
directed cycle and positive otherwise, differentiable with gradient ``exp(A * A)^T * 2A``.
``learned_graph`` thresholds a weighted adjacency into a :class:`DiscoveredGraph` and ``shd``
scores it against the true graph with :func:`scm.discovery.compare`.

Convention: ``A[i, j] != 0`` is the edge ``nodes[i] -> nodes[j]`` (row = parent), as in NOTEARS.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from scm.discovery import DiscoveredGraph, compare


def acyclicity(a: Tensor) -> Tensor:
    """``h(A) = tr(exp(A * A)) - d`` of a square ``(d, d)`` weighted adjacency (a scalar).

    ``exp(A * A) = sum_k (A * A)^k / k!`` and ``tr((A * A)^k)`` sums the weights of closed
    walks of length ``k``, so ``h(A) = 0`` if and only if ``A`` is a DAG's adjacency.

    >>> acyclicity(torch.tensor([[0.0, 1.0], [0.0, 0.0]])).item()
    0.0
    >>> round(acyclicity(torch.tensor([[0.0, 1.0], [1.0, 0.0]])).item(), 4)  # 2 cosh(1) - 2
    1.0862
    """
    if a.dim() != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"a must be a square (d, d) matrix; got shape {tuple(a.shape)}")
    return torch.linalg.matrix_exp(a * a).diagonal().sum() - a.shape[0]


def learned_graph(
    a: Tensor | np.ndarray, nodes: Sequence[str], *, threshold: float = 0.3
) -> DiscoveredGraph:
    """The directed graph of the entries of ``a`` with ``|a[i, j]| > threshold``.

    A pair above the threshold in both directions keeps the larger magnitude only (the first
    node's row on a tie), so the result has no 2-cycles; longer cycles are kept as found.
    """
    w = np.abs(torch.as_tensor(a).detach().cpu().double().numpy())
    if w.ndim != 2 or w.shape != (len(nodes), len(nodes)):
        raise ValueError(f"a must have shape ({len(nodes)}, {len(nodes)}) for nodes "
                         f"{list(nodes)}; got {w.shape}")
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0; got {threshold}")
    edges = []
    for i in range(len(nodes)):
        for j in range(len(nodes)):
            if i == j or w[i, j] <= threshold:
                continue
            if w[j, i] > w[i, j] or (w[j, i] == w[i, j] and j < i):
                continue
            edges.append(f"{nodes[i]} --> {nodes[j]}")
    return DiscoveredGraph.from_edges(list(nodes), edges, method="notears",
                                      options={"threshold": threshold})


def shd(
    a: Tensor | np.ndarray,
    truth: Any,  # noqa: ANN401 - any graph form scm.discovery.compare takes
    nodes: Sequence[str],
    *,
    threshold: float = 0.3,
) -> int:
    """Structural Hamming distance of ``learned_graph(a, nodes, threshold=threshold)`` to the
    true DAG ``truth`` (``{child: [parents]}`` etc.): ``compare(...).shd_dag``.

    >>> shd(torch.tensor([[0.0, 0.9], [0.0, 0.0]]), {"x": [], "y": ["x"]}, ["x", "y"])
    0
    >>> shd(torch.tensor([[0.0, 0.0], [0.9, 0.0]]), {"x": [], "y": ["x"]}, ["x", "y"])
    1
    """
    return compare(learned_graph(a, nodes, threshold=threshold), truth).shd_dag
