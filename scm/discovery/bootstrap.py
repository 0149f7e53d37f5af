"""Bootstrap stability of discovered edges, in parallel over processes."""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from scm.discovery.data import prepare
from scm.discovery.discover import check_inputs, data_kind, discover
from scm.discovery.knowledge import Knowledge
from scm.discovery.methods import Method

_WORKER_DATA: dict[str, Any] = {}
MAX_REDRAWS = 10
"""Consecutive refused resamples after which :func:`bootstrap` gives up."""


def _init_worker(df: pd.DataFrame, method: str, knowledge: Knowledge | None, options: dict) -> None:
    """Keep the table and settings in each worker, so tasks only ship row indices."""
    _WORKER_DATA.update(df=df, method=method, knowledge=knowledge, options=options)


def _fit_labels(
    df: pd.DataFrame, method: str, knowledge: Knowledge | None, options: dict, rows: np.ndarray
) -> list[str]:
    """Edge labels that ``method`` finds on the resample ``df.iloc[rows]``."""
    sample = df.iloc[rows].reset_index(drop=True)
    return [e.label for e in discover(sample, method, knowledge=knowledge, **options).edges]


def _labels_of(rows: np.ndarray) -> list[str]:
    """Worker side of :func:`_fit_labels`, with the settings from :func:`_init_worker`."""
    w = _WORKER_DATA
    return _fit_labels(w["df"], w["method"], w["knowledge"], w["options"], rows)


def _resample(df: pd.DataFrame, rng: np.random.Generator, kind: str, need: str) -> np.ndarray:
    """Row indices of one resample that :func:`~scm.discovery.data.prepare` accepts.

    A resample of a rare binary column (3 ones in 200 rows) can miss every one, and a
    constant (or collinear) column is refused by :func:`discover`; such a resample is redrawn
    from ``rng``, so the draws stay a function of the seed.

    Raises:
        ValueError: after :data:`MAX_REDRAWS` refused resamples in a row, with the last reason.
    """
    n, reason = len(df), ""
    for _ in range(MAX_REDRAWS):
        rows = rng.integers(0, n, size=n)
        try:
            prepare(df.iloc[rows], kind=kind, need=need)  # type: ignore[arg-type]
        except ValueError as err:
            reason = str(err)
            continue
        return rows
    raise ValueError(
        f"bootstrap drew {MAX_REDRAWS} resamples in a row that discover refuses ({reason}); a "
        "column has too few distinct rows to resample, drop or merge its rare values"
    )


def _context() -> mp.context.BaseContext:
    """A forkserver context (spawn where there is none), with this module preloaded.

    Not fork: forking a process with live threads (torch, BLAS) can deadlock, and Python
    3.12+ warns about it. The forkserver imports this module (and so torch, via ``scm``)
    once, and every worker forks from it warm instead of paying seconds of imports.
    """
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", __name__])
    return ctx


def bootstrap(
    df: pd.DataFrame,
    method: Method = "pc",
    *,
    B: int = 100,  # noqa: N803 - the usual name for the number of resamples
    n_jobs: int = 1,
    seed: int = 0,
    knowledge: Knowledge | None = None,
    **options: Any,  # noqa: ANN401 - passed to discover
) -> dict[str, float]:
    """Edge frequencies over ``B`` bootstrap resamples of the rows of ``df``.

    Each resample draws ``n`` rows with replacement and runs :func:`discover`. The row
    indices all come from ``numpy.random.default_rng(seed)`` in the calling process, and
    methods with their own randomness get their ``seed`` option, so the result depends on
    ``seed`` only, never on ``n_jobs``. A resample that :func:`discover` would refuse (a
    column constant in it, e.g. a binary column whose few ones were all left out) is redrawn
    from the same generator; the frequencies are then over resamples in which every column
    varies, which slightly favours the rows of rare values.

    Args:
        df, method, knowledge, options: as for :func:`discover`.
        B: number of resamples, >= 1.
        n_jobs: worker processes (``concurrent.futures.ProcessPoolExecutor``); 1 runs in this
            process. Set ``OMP_NUM_THREADS=1`` so workers do not oversubscribe the cores.
        seed: seed of the resampling.

    Returns:
        ``{edge label: fraction of resamples containing it}`` for every edge seen at least
        once, e.g. ``{"x1 --> x3": 0.97, "x1 --- x2": 0.6, "x2 --> x1": 0.4}``; a directed
        and an undirected edge on the same pair are counted separately. Sorted by frequency,
        highest first.

    Raises:
        ValueError: for ``B < 1`` or ``n_jobs < 1``, what :func:`discover` raises for bad
            options or data (checked on the full table before any resampling), and when
            :data:`MAX_REDRAWS` resamples in a row are refused.
    """
    if not isinstance(B, int) or B < 1:
        raise ValueError(f"B must be an integer >= 1, got {B!r}")
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be an integer >= 1, got {n_jobs!r}")
    # Fail fast, in this process, on bad options, knowledge or data.
    _, resolved, _, _ = check_inputs(df, method, knowledge=knowledge, options=options)
    rng = np.random.default_rng(seed)
    kind, need = data_kind(resolved), f"bootstrap of method={method!r}"
    resamples = [_resample(df, rng, kind, need) for _ in range(B)]
    init = (df, method, knowledge, options)
    if n_jobs == 1:
        runs = [_fit_labels(*init, rows) for rows in resamples]
    else:
        with ProcessPoolExecutor(
            max_workers=min(n_jobs, B),
            mp_context=_context(),
            initializer=_init_worker,
            initargs=init,
        ) as pool:
            runs = list(pool.map(_labels_of, resamples, chunksize=max(1, B // (4 * n_jobs))))
    counts = Counter(label for labels in runs for label in labels)
    return {k: c / B for k, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}
