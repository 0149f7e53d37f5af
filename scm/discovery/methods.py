"""One runner per causal-learn method: typed options in, marked edges out.

Each runner takes the prepared ``(n, d)`` array, the column names and keyword-only options
whose annotations and defaults are the single source of truth for :func:`discover`'s
validation (an option's ``Literal`` lists its allowed values). Runners call causal-learn and
convert its output with :mod:`scm.discovery.convert`; they never orient anything themselves.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

import numpy as np
from causallearn.utils.PCUtils.BackgroundKnowledge import BackgroundKnowledge

from scm.discovery.convert import (
    edges_from_dag_matrix,
    edges_from_general_graph,
    edges_from_sem_matrix,
)
from scm.discovery.edges import Edge
from scm.discovery.knowledge import Knowledge

Method = Literal["pc", "fci", "ges", "grasp", "boss", "exact", "direct_lingam", "ica_lingam"]
Test = Literal["fisherz", "kci", "chisq", "gsq"]
Score = Literal["bic", "bdeu", "cv_general", "marginal_general"]
UcRule = Literal["sepset", "maxp", "definite_maxp"]
UcPriority = Literal["default", "overwrite", "bidirected", "existing", "stronger", "stronger_plus"]

DISCRETE_TESTS: frozenset[str] = frozenset({"chisq", "gsq"})
DISCRETE_SCORES: frozenset[str] = frozenset({"bdeu"})
EXACT_MAX_NODES = 15
"""Exact search scores every parent set of every node, ``d * 2**(d-1)`` regressions."""

# causal-learn's names for our options (PC's uc_rule/uc_priority are magic integers there).
_UC_RULE = {"sepset": 0, "maxp": 1, "definite_maxp": 2}
_UC_PRIORITY = {
    "default": -1,
    "overwrite": 0,
    "bidirected": 1,
    "existing": 2,
    "stronger": 3,
    "stronger_plus": 4,
}
_GES_SCORE = {
    "bic": "local_score_BIC",
    "bdeu": "local_score_BDeu",
    # Generalized scores of Huang et al., "Generalized score functions for causal discovery"
    # (KDD 2018): cross-validated / marginal likelihood of a regression in an RKHS.
    "cv_general": "local_score_CV_general",
    "marginal_general": "local_score_marginal_general",
}
# GRaSP and BOSS warn and substitute the covariance form for 'local_score_BIC'; ask for it.
_PERMUTATION_SCORE = {**_GES_SCORE, "bic": "local_score_BIC_from_cov"}


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


def _check_penalty(penalty: float | None, score: str) -> dict[str, float] | None:
    if penalty is None:
        return None
    if score != "bic":
        raise ValueError(f"penalty applies to score='bic' only, got score={score!r}")
    if penalty <= 0:
        raise ValueError(f"penalty must be > 0, got {penalty!r}")
    return {"lambda_value": float(penalty)}


def _bk(knowledge: Knowledge | None, names: list[str]) -> BackgroundKnowledge | None:
    return None if knowledge is None or knowledge.is_empty else knowledge.to_causallearn(names)


@contextmanager
def _python_random(seed: int) -> Iterator[None]:
    """Seed :mod:`random` for a block and restore its state after.

    GRaSP and BOSS shuffle with the global ``random`` module
    (``causallearn.search.PermutationBased``), so this is the only way to make them
    reproducible; the caller's random state is left as it was.
    """
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def run_pc(
    x: np.ndarray,
    names: list[str],
    *,
    knowledge: Knowledge | None = None,
    alpha: float = 0.05,
    test: Test = "fisherz",
    depth: int | None = None,
    stable: bool = True,
    uc_rule: UcRule = "sepset",
    uc_priority: UcPriority = "existing",
) -> list[Edge]:
    """PC (Spirtes & Glymour 1991) via ``causallearn.search.ConstraintBased.PC.pc``; a CPDAG.

    ``depth`` caps the conditioning-set size (causal-learn's ``max_k``; None: no cap).
    """
    from causallearn.search.ConstraintBased.PC import pc

    _check_alpha(alpha)
    cg = pc(
        x,
        alpha,
        test,
        stable=stable,
        uc_rule=_UC_RULE[uc_rule],
        uc_priority=_UC_PRIORITY[uc_priority],
        background_knowledge=_bk(knowledge, names),
        show_progress=False,
        node_names=names,
        max_k=depth,
    )
    return edges_from_general_graph(cg.G)


def run_fci(
    x: np.ndarray,
    names: list[str],
    *,
    knowledge: Knowledge | None = None,
    alpha: float = 0.05,
    test: Test = "fisherz",
    depth: int | None = None,
    max_path_length: int | None = None,
) -> list[Edge]:
    """FCI (Spirtes et al. 2000; Zhang 2008's rules) via ``causallearn...FCI.fci``; a PAG."""
    from causallearn.search.ConstraintBased.FCI import fci

    _check_alpha(alpha)
    graph, _ = fci(
        x,
        test,
        alpha,
        depth=-1 if depth is None else int(depth),
        max_path_length=-1 if max_path_length is None else int(max_path_length),
        background_knowledge=_bk(knowledge, names),
        show_progress=False,
        node_names=names,
    )
    return edges_from_general_graph(graph)


def run_ges(
    x: np.ndarray,
    names: list[str],
    *,
    score: Score = "bic",
    max_parents: int | None = None,
    penalty: float | None = None,
) -> list[Edge]:
    """GES (Chickering 2002) via ``causallearn.search.ScoreBased.GES.ges``; a CPDAG.

    ``penalty`` is the BIC's ``lambda_value`` (causal-learn's default 0.5: the standard BIC).
    """
    from causallearn.search.ScoreBased.GES import ges

    params = _check_penalty(penalty, score)
    record = ges(x, _GES_SCORE[score], maxP=max_parents, parameters=params, node_names=names)
    return edges_from_general_graph(record["G"])


def run_grasp(
    x: np.ndarray,
    names: list[str],
    *,
    score: Score = "bic",
    search_depth: int = 3,
    penalty: float | None = None,
    seed: int = 0,
) -> list[Edge]:
    """GRaSP (Lam, Andrews & Ramsey, UAI 2022) via ``...PermutationBased.GRaSP.grasp``; a CPDAG.

    ``search_depth`` is the depth of GRaSP's tuck search; ``penalty`` the BIC's
    ``lambda_value`` (causal-learn's default here is 2, a sparser graph than GES's 0.5).
    """
    from causallearn.search.PermutationBased.GRaSP import grasp

    params = _check_penalty(penalty, score)
    with _python_random(seed):
        g = grasp(
            x,
            _PERMUTATION_SCORE[score],
            depth=search_depth,
            parameters=params,
            verbose=False,
            node_names=names,
        )
    return edges_from_general_graph(g)


def run_boss(
    x: np.ndarray,
    names: list[str],
    *,
    score: Score = "bic",
    penalty: float | None = None,
    seed: int = 0,
) -> list[Edge]:
    """BOSS (Andrews et al., NeurIPS 2023) via ``...PermutationBased.BOSS.boss``; a CPDAG."""
    from causallearn.search.PermutationBased.BOSS import boss

    params = _check_penalty(penalty, score)
    with _python_random(seed):
        g = boss(x, _PERMUTATION_SCORE[score], parameters=params, verbose=False, node_names=names)
    return edges_from_general_graph(g)


def run_exact(
    x: np.ndarray,
    names: list[str],
    *,
    knowledge: Knowledge | None = None,
    search: Literal["astar", "dp"] = "astar",
    max_parents: int | None = None,
) -> list[Edge]:
    """Exact BIC search (A* of Yuan & Malone 2013, or DP) via ``bic_exact_search``; one DAG.

    The data are centred first: ``ExactSearch.bic_score_node`` regresses without an
    intercept. Background knowledge becomes its ``super_graph`` (allowed arcs) and
    ``include_graph`` (required arcs).
    """
    from causallearn.search.ScoreBased.ExactSearch import bic_exact_search

    d = len(names)
    if d > EXACT_MAX_NODES:
        raise ValueError(
            f"method 'exact' scores all 2^(d-1) parent sets per node and allows at most "
            f"{EXACT_MAX_NODES} columns, got {d}; use 'ges', 'grasp' or 'boss'"
        )
    super_graph = include_graph = None
    if knowledge is not None and not knowledge.is_empty:
        super_graph, include_graph = knowledge.exact_search_graphs(names)
    dag, _ = bic_exact_search(
        x - x.mean(axis=0),
        super_graph=super_graph,
        search_method=search,
        include_graph=include_graph,
        max_parents=max_parents,
    )
    return edges_from_dag_matrix(dag, names)


def run_direct_lingam(
    x: np.ndarray,
    names: list[str],
    *,
    knowledge: Knowledge | None = None,
    measure: Literal["pwling", "kernel"] = "pwling",
    threshold: float = 0.0,
    seed: int = 0,
) -> list[Edge]:
    """DirectLiNGAM (Shimizu et al., JMLR 2011) via ``causallearn...lingam.DirectLiNGAM``; a DAG.

    Edges are the SEM weights with ``|w| > threshold`` (the adaptive lasso already zeroes
    most absent edges). Tiers become its ``prior_knowledge``.
    """
    from causallearn.search.FCMBased.lingam import DirectLiNGAM

    prior = None
    if knowledge is not None and not knowledge.is_empty:
        prior = knowledge.lingam_prior(names)
    model = DirectLiNGAM(random_state=seed, prior_knowledge=prior, measure=measure).fit(x)
    return edges_from_sem_matrix(model.adjacency_matrix_, names, threshold)


def run_ica_lingam(
    x: np.ndarray,
    names: list[str],
    *,
    threshold: float = 0.0,
    max_iter: int = 1000,
    seed: int = 0,
) -> list[Edge]:
    """ICA-LiNGAM (Shimizu et al., JMLR 2006) via ``causallearn...lingam.ICALiNGAM``; a DAG."""
    from causallearn.search.FCMBased.lingam import ICALiNGAM

    model = ICALiNGAM(random_state=seed, max_iter=max_iter).fit(x)
    return edges_from_sem_matrix(model.adjacency_matrix_, names, threshold)


RUNNERS: dict[str, Callable[..., list[Edge]]] = {
    "pc": run_pc,
    "fci": run_fci,
    "ges": run_ges,
    "grasp": run_grasp,
    "boss": run_boss,
    "exact": run_exact,
    "direct_lingam": run_direct_lingam,
    "ica_lingam": run_ica_lingam,
}
"""Method name -> runner; keys are exactly ``Method``'s values."""
