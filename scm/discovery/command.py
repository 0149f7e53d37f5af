"""The logic of ``cauflow discover``, as a plain function the CLI wraps."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from scm.discovery.bootstrap import bootstrap as run_bootstrap
from scm.discovery.compare import compare
from scm.discovery.discover import discover
from scm.discovery.graph import SCHEMA, DiscoveredGraph
from scm.discovery.knowledge import Knowledge


def _read_json(path: Path, what: str) -> Any:  # noqa: ANN401 - any JSON value
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{what} file {str(path)!r} not found") from None
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{what} file {str(path)!r} is not valid JSON: {err.msg} (line {err.lineno})"
        ) from None


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV; text columns become categorical variables.

    Raises:
        ValueError: when the file is missing, empty or not a CSV.
    """
    try:  # "age, sex, bmi" headers: no leading space in the names (as cauflow fit reads them)
        return pd.read_csv(path, skipinitialspace=True)
    except FileNotFoundError:
        raise ValueError(f"data file {str(path)!r} not found") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"data file {str(path)!r} is not a readable CSV: {err}") from None


def read_truth(path: str | Path) -> dict[str, list[str]] | DiscoveredGraph:
    """Read a true DAG: ``{"node": ["parent", ...]}`` or a saved :class:`DiscoveredGraph`.

    Raises:
        ValueError: for a missing file or another JSON shape.
    """
    data = _read_json(Path(path), "truth")
    if isinstance(data, dict) and data.get("schema") == SCHEMA:
        return DiscoveredGraph.from_dict(data)
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        return {str(k): [str(p) for p in v] for k, v in data.items()}
    raise ValueError(
        f"truth file {str(path)!r} must hold {{node: [parents]}} or a graph saved by "
        "DiscoveredGraph.save"
    )


def read_tiers(path: str | Path) -> list[list[str]]:
    """Read tiers: a JSON list of lists of node names, earliest tier first.

    Raises:
        ValueError: for a missing file or another JSON shape.
    """
    data = _read_json(Path(path), "tiers")
    if not (isinstance(data, list) and all(isinstance(t, list) for t in data)):
        raise ValueError(
            f'tiers file {str(path)!r} must hold a list of lists of nodes, e.g. [["a"], ["b", "c"]]'
        )
    return [[str(n) for n in t] for t in data]


def run_discover(
    data: str | Path,
    *,
    method: str = "pc",
    alpha: float | None = None,
    test: str | None = None,
    score: str | None = None,
    max_parents: int | None = None,
    out: str | Path | None = None,
    plot: str | Path | None = None,
    truth: str | Path | None = None,
    bootstrap: int = 0,
    n_jobs: int = 1,
    seed: int = 0,
    forbid: Sequence[str] = (),
    require: Sequence[str] = (),
    tiers: str | Path | None = None,
    dag: bool = False,
) -> str:
    """Learn a graph from the CSV at ``data`` and return the report to print.

    Options left at ``None`` keep the method's defaults; ``alpha``/``test`` apply to PC and
    FCI, ``score`` to GES, GRaSP and BOSS, ``max_parents`` to GES and exact search. With
    ``bootstrap > 0`` the graph found on all rows is annotated with its edges' frequencies
    over that many resamples. ``dag``: a CPDAG is
    replaced by the first DAG of its equivalence class (:meth:`DiscoveredGraph.dags`), which
    ``cauflow fit --graph`` then reads.

    Returns:
        Lines of text: the method, the edges (with frequencies), the scores against
        ``truth``, and the files written.

    Raises:
        ValueError: one line, for any bad file, option or data.
    """
    if bootstrap < 0:
        raise ValueError(f"bootstrap must be >= 0 resamples, got {bootstrap}")
    df = read_table(data)
    options = {
        k: v
        for k, v in {"alpha": alpha, "test": test, "score": score,
                     "max_parents": max_parents}.items()
        if v is not None
    }
    knowledge = Knowledge.parse(
        forbid=forbid, require=require, tiers=read_tiers(tiers) if tiers is not None else ()
    )
    known = None if knowledge.is_empty else knowledge
    found = discover(df, method, knowledge=known, **options)  # type: ignore[arg-type]
    if bootstrap:
        freqs = run_bootstrap(
            df,
            method,
            B=bootstrap,
            n_jobs=n_jobs,
            seed=seed,
            knowledge=known,
            **options,  # type: ignore[arg-type]
        )
        found = found.with_frequencies(freqs)
    oriented = ""
    if dag and not found.is_dag:
        undirected = found.undirected
        extensions = found.dags(limit=1)
        if not extensions:
            raise ValueError(
                f"no DAG orients the {len(undirected)} undirected edge(s) of this graph "
                "without adding a v-structure (the tests' answers conflict); try another "
                "method or alpha"
            )
        found = extensions[0]
        oriented = (f"--dag: {len(undirected)} undirected edge(s) oriented as one DAG of the "
                    "equivalence class (any other fits the data equally well)")
    shown = ", ".join(f"{k}={v}" for k, v in found.options.items() if k != "knowledge")
    counts = {
        k: len(getattr(found, k)) for k in ("directed", "undirected", "bidirected", "partial")
    }
    lines = [
        f"method: {method} ({shown})",
        f"{len(found.nodes)} nodes, {len(found.edges)} edges: "
        + ", ".join(f"{v} {k}" for k, v in counts.items()),
        found.summary(),
        *([oriented] if oriented else []),
    ]
    if truth is not None:
        scores = compare(found, read_truth(truth))
        lines += [f"scores against {truth}:", scores.summary()]
    if out is not None:
        found.save(out)
        lines.append(f"wrote {out}")
    if plot is not None:
        found.plot(plot, title=f"{method} on {Path(data).name}")
        lines.append(f"wrote {plot}")
    return "\n".join(lines)
