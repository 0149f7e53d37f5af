"""One runner per causal-learn method: typed options in, marked edges out.

Each runner takes the prepared ``(n, d)`` array, the column names and keyword-only options
whose annotations and defaults are the single source of truth for :func:`discover`'s
validation (an option's ``Literal`` lists its allowed values). Runners call causal-learn and
convert its output with :mod:`scm.discovery.convert`; they never orient anything themselves.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from causallearn.utils.PCUtils.BackgroundKnowledge import BackgroundKnowledge

from scm.discovery.convert import (
    edges_from_dag_matrix,
    edges_from_general_graph,
    edges_from_sem_matrix,
)
from scm.discovery.edges import Edge
from scm.discovery.knowledge import Knowledge

if TYPE_CHECKING:
    from causallearn.graph.GraphClass import CausalGraph

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


def _check_depth(depth: int | None) -> None:
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be >= 0 (or None for no cap), got {depth!r}")


def _bk(knowledge: Knowledge | None, names: list[str]) -> BackgroundKnowledge | None:
    return None if knowledge is None or knowledge.is_empty else knowledge.to_causallearn(names)


def _unhonoured(edges: list[Edge], knowledge: Knowledge | None) -> list[str]:
    """The required arcs of ``knowledge`` that ``edges`` lack as ``u --> v``, as ``"u -> v"``."""
    directed = {(e.u, e.v) for e in edges if e.kind == "directed"} | {
        (e.v, e.u) for e in edges if (e.mark_u, e.mark_v) == ("arrow", "tail")
    }
    required = () if knowledge is None else knowledge.required
    return [f"{u} -> {v}" for u, v in required if (u, v) not in directed]


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

    ``depth`` caps the conditioning-set size (causal-learn's ``max_k``; None: no cap, else
    >= 0). causal-learn's skeleton search drops a required edge whose endpoints test
    independent (and then never orients it); with required edges, the search runs as
    :func:`_pc_keeping_required` instead, which puts them back before orientation, as Tetrad's
    PC never removes a required adjacency.
    """
    from causallearn.search.ConstraintBased.PC import pc

    _check_alpha(alpha)
    _check_depth(depth)
    if knowledge is not None and knowledge.required:
        cg = _pc_keeping_required(
            x,
            names,
            knowledge,
            alpha,
            test,
            depth,
            stable,
            _UC_RULE[uc_rule],
            _UC_PRIORITY[uc_priority],
        )
    else:
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
    edges = edges_from_general_graph(cg.G)
    missed = _unhonoured(edges, knowledge)
    if missed:  # not seen; a guard so that knowledge is never dropped silently
        raise ValueError(f"method 'pc' could not orient required edge(s) {', '.join(missed)}")
    return edges


def _pc_keeping_required(
    x: np.ndarray,
    names: list[str],
    knowledge: Knowledge,
    alpha: float,
    test: str,
    depth: int | None,
    stable: bool,
    uc_rule: int,
    uc_priority: int,
) -> CausalGraph:
    """causal-learn's ``pc_alg`` with every required arc added to the skeleton before orienting.

    The steps and their order are ``pc_alg``'s (causal-learn 0.1.4.8): skeleton, background
    knowledge, unshielded colliders by ``uc_rule``, Meek's rules. A required adjacency makes
    its triples shielded, so no collider is read off the separating set that dropped it.

    Returns:
        causal-learn's ``CausalGraph``; its ``G`` is the CPDAG.
    """
    from causallearn.utils.cit import CIT
    from causallearn.utils.PCUtils import Meek, SkeletonDiscovery, UCSepset
    from causallearn.utils.PCUtils.BackgroundKnowledgeOrientUtils import (
        orient_by_background_knowledge,
    )

    bk = knowledge.to_causallearn(names)
    cg = SkeletonDiscovery.skeleton_discovery(
        x,
        alpha,
        CIT(x, test),
        stable,
        background_knowledge=bk,
        show_progress=False,
        node_names=names,
        max_k=depth,
    )
    nodes = cg.G.get_nodes()
    for u, v in knowledge.required:
        a, b = nodes[names.index(u)], nodes[names.index(v)]
        if not cg.G.is_adjacent_to(a, b):
            cg.G.add_directed_edge(a, b)
    orient_by_background_knowledge(cg, bk)
    priority = () if uc_priority == -1 else (uc_priority,)
    if uc_rule == _UC_RULE["sepset"]:
        cg = UCSepset.uc_sepset(cg, *priority, background_knowledge=bk)
    elif uc_rule == _UC_RULE["maxp"]:
        cg = UCSepset.maxp(cg, *priority, background_knowledge=bk)
    else:
        cg = UCSepset.definite_maxp(cg, alpha, *priority, background_knowledge=bk)
        cg = Meek.definite_meek(cg, background_knowledge=bk)
    return Meek.meek(cg, background_knowledge=bk)


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
    """FCI (Spirtes et al. 2000; Zhang 2008's rules) via ``causallearn...FCI.fci``; a PAG.

    ``depth`` caps the conditioning-set size (None: no cap, else >= 0). causal-learn's FCI
    orients a required edge only where its tests keep the adjacency, and adding one to a PAG
    afterwards is not sound (it changes which paths are m-connecting, so the orientation
    rules would need rerunning), so a required edge missing from the result is an error.

    Raises:
        ValueError: when a required edge is not in the PAG as ``u --> v``.
    """
    from causallearn.search.ConstraintBased.FCI import fci

    _check_alpha(alpha)
    _check_depth(depth)
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
    edges = edges_from_general_graph(graph)
    missed = _unhonoured(edges, knowledge)
    if missed:
        raise ValueError(
            f"method 'fci' cannot enforce required edge(s) {', '.join(missed)}: its tests "
            "removed or its rules oriented them otherwise, and it does not add edges; drop "
            "them or use 'pc' or 'exact'"
        )
    return edges


GES_WARN_COLUMNS = 20
"""Above this many columns, GES without ``max_parents`` draws a warning (its search grows
fast with the columns and shows no progress)."""


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
    ``max_parents`` (None: no cap, else >= 0) bounds the parent set each insertion scores,
    see :func:`_ges_parent_cap`: on a node with three true parents, 0 gives no edges and 1 a
    forest (before, causal-learn's own ``maxP`` let such a node get 2 parents at 0 and at 1).
    """
    from causallearn.search.ScoreBased.GES import ges

    params = _check_penalty(penalty, score)
    if max_parents is not None and max_parents < 0:
        raise ValueError(f"max_parents must be >= 0 (or None for no cap), got {max_parents!r}")
    if max_parents is None and len(names) > GES_WARN_COLUMNS:
        warnings.warn(
            f"GES over {len(names)} columns without max_parents may take many minutes, with no "
            "progress shown (scikit-learn's breast-cancer table, 31 columns, ran past 300 s; "
            "14 columns take ~3 s): pass max_parents (--max-parents, e.g. 3), or use 'pc' "
            "or 'boss'",
            UserWarning, stacklevel=3)
    with _ges_parent_cap(max_parents):
        # causal-learn inserts into a node while it has len(parents) <= maxP, one more.
        max_p = None if max_parents is None else max_parents - 1
        record = ges(x, _GES_SCORE[score], maxP=max_p, parameters=params, node_names=names)
    return edges_from_general_graph(record["G"])


@contextmanager
def _ges_parent_cap(max_parents: int | None) -> Iterator[None]:
    """Make causal-learn's GES skip insertions that give a node more than ``max_parents`` parents.

    An insertion ``Insert(x, y, T)`` scores ``y`` with parents ``Pa(y) | NA(y, x) | T | {x}``,
    but causal-learn's ``maxP`` only bounds ``Pa(y)``, the directed parents of the CPDAG, so
    undirected neighbours could still become extra parents. Within the block,
    ``GES.insert_changed_score_fast`` gives such an insertion a score change of ``-inf``, so
    it is never chosen; the module's function is restored after.
    """
    import causallearn.search.ScoreBased.GES as ges_module

    original = ges_module.insert_changed_score_fast
    if max_parents is None:
        yield
        return

    def capped(data: Any, i: int, j: int, t: Any, na: set, pa: set, *rest: Any) -> Any:  # noqa: ANN401
        if len(na | set(t) | pa | {i}) > max_parents:
            return -np.inf, [i, j, t], rest[0]  # rest[0]: the cache of local scores
        return original(data, i, j, t, na, pa, *rest)

    ges_module.insert_changed_score_fast = capped
    try:
        yield
    finally:
        ges_module.insert_changed_score_fast = original


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
    """BOSS (Andrews et al., NeurIPS 2023) via ``...PermutationBased.BOSS.boss``; a CPDAG.

    Its result can depend on the order of the columns: on 2000 rows of
    ``zoo.random_dag(6, seed=1, noise="laplace")`` a permutation moved it from the true CPDAG
    to SHD 4 (a local optimum of causal-learn's search; GRaSP was order-invariant there).
    """
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


def lingam_weights(model: Any, x: np.ndarray) -> np.ndarray:  # noqa: ANN401 - a LiNGAM model
    """Fit a causal-learn LiNGAM ``model`` on the standardised columns of ``x``.

    ICA-LiNGAM's permutation search and DirectLiNGAM's pruning depend on the columns'
    scales: multiplying three of six columns by 100 took ICA-LiNGAM from SHD 0 to 10, and by
    1e-5 took DirectLiNGAM from 6 edges to 2 (``zoo.random_dag(6, seed=2, noise="laplace")``).
    Standardising first makes the graph independent of the units.

    Returns:
        The SEM matrix ``B`` of ``x = B x + e``, ``(d, d)``, in ``x``'s units:
        ``B[j, i] = B_std[j, i] * sd_j / sd_i`` is the weight of ``i --> j``.
    """
    sd = x.std(axis=0)
    b_std = model.fit((x - x.mean(axis=0)) / sd).adjacency_matrix_
    return np.asarray(b_std) * sd[:, None] / sd[None, :]


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

    Fitted on standardised columns (:func:`lingam_weights`). Edges are the SEM weights, in
    the data's units, with ``|w| > threshold`` (the adaptive lasso already zeroes most absent
    edges). Tiers become its ``prior_knowledge``.
    """
    from causallearn.search.FCMBased.lingam import DirectLiNGAM

    prior = None
    if knowledge is not None and not knowledge.is_empty:
        prior = knowledge.lingam_prior(names)
    model = DirectLiNGAM(random_state=seed, prior_knowledge=prior, measure=measure)
    return edges_from_sem_matrix(lingam_weights(model, x), names, threshold)


def run_ica_lingam(
    x: np.ndarray,
    names: list[str],
    *,
    threshold: float = 0.0,
    max_iter: int = 1000,
    seed: int = 0,
) -> list[Edge]:
    """ICA-LiNGAM (Shimizu et al., JMLR 2006) via ``causallearn...lingam.ICALiNGAM``; a DAG.

    Fitted on standardised columns (:func:`lingam_weights`); ``threshold`` applies to the
    weights in the data's units, as for :func:`run_direct_lingam`.
    """
    from causallearn.search.FCMBased.lingam import ICALiNGAM

    model = ICALiNGAM(random_state=seed, max_iter=max_iter)
    return edges_from_sem_matrix(lingam_weights(model, x), names, threshold)


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
