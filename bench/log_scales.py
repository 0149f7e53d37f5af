"""Benchmark: ``"auto"``'s log scales (scm/log_nodes.py) on positive data, against the same fit
with log scales off and against ``"flow"``.

Cases (data with known counterfactuals, drawn per seed):

- ``loglinear10``: ``exp`` of every column of ``zoo.random_dag(10, seed=100 + seed,
  kind="linear")``: every effect multiplicative (log-linear).
- ``multiplicative``: x -> y -> v, x -> w, y -> w; ``y = 2 x^0.8 e^{0.3u}``, ``w = 3 x^0.5
  y^-0.7 e^{0.2u}``, ``v = y^0.5 e^{0.4u}`` (as ``tests/test_log_scales.py``).
- ``mixed``: ``y = x^0.8 e^{0.3u}`` (log-linear), ``z = y/2 + e^{0.5u}`` (additive in y).
- ``exponential``: an exponential root with a linear child, ``y = 2x + 3 + N(0, .25)``:
  positive data whose effects are additive (nothing should be lost).

For each, 3,000 training rows; counterfactuals of 500 other rows under ``do(t = t of another
row)`` on the node with the most descendants; RMSE over its descendants in units of each
one's observational std (raw units), and the fit's seconds on one thread.

``--real`` adds real tables (scikit-learn's bundled wine, breast-cancer and diabetes tables,
their positive columns): 5-fold held-out log-likelihood per row in the data's units, log scales
on and off, the DAG found by DirectLiNGAM on the logged columns.

Usage::

    .venv/bin/python bench/log_scales.py --seeds 0 1 2 --real
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import scm.log_nodes  # noqa: E402
from scm import SCM, zoo  # noqa: E402
from scm.graph import descendants  # noqa: E402


@dataclass(frozen=True)
class Case:
    """Data with known counterfactuals: ``sample(n, seed)`` rows; ``counterfactual(n, seed,
    do)`` the exact counterfactual of those same rows under ``do`` (per-row values)."""

    graph: dict[str, list[str]]
    sample: Callable[[int, int], pd.DataFrame]
    counterfactual: Callable[[int, int, dict], pd.DataFrame]


def loglinear10(dag_seed: int) -> Case:
    truth = zoo.random_dag(10, seed=100 + dag_seed, kind="linear")

    def sample(n: int, seed: int) -> pd.DataFrame:
        return np.exp(truth.sample(n, seed=seed))

    def counterfactual(n: int, seed: int, do: dict) -> pd.DataFrame:
        logs = {k: np.log(v) for k, v in do.items()}
        return np.exp(truth.counterfactual(np.log(sample(n, seed)), logs))

    return Case(truth.graph, sample, counterfactual)


def _multiplicative(u: np.ndarray, x: np.ndarray) -> pd.DataFrame:
    y = 2 * x**0.8 * np.exp(0.3 * u[:, 1])
    w = 3 * x**0.5 * y**-0.7 * np.exp(0.2 * u[:, 2])
    return pd.DataFrame({"x": x, "y": y, "w": w, "v": np.sqrt(y) * np.exp(0.4 * u[:, 3])})


def _mixed(u: np.ndarray, x: np.ndarray) -> pd.DataFrame:
    y = x**0.8 * np.exp(0.3 * u[:, 1])
    return pd.DataFrame({"x": x, "y": y, "z": 0.5 * y + np.exp(0.5 * u[:, 2])})


def _exponential(u: np.ndarray, x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"x": x, "y": 2 * x + 3 + 0.5 * u[:, 1]})


def rooted(graph: dict, equations: Callable, root: Callable) -> Case:
    """A case whose one root is ``x = root(u0)`` and the rest ``equations(u, x)``, with
    Gaussian noises ``u (n, 4)`` drawn from ``seed``: a counterfactual keeps each row's
    noises and recomputes from the new x."""
    def noise(n: int, seed: int) -> np.ndarray:
        return np.random.default_rng(seed).normal(size=(n, 4))

    def sample(n: int, seed: int) -> pd.DataFrame:
        u = noise(n, seed)
        return equations(u, root(u[:, 0]))

    def counterfactual(n: int, seed: int, do: dict) -> pd.DataFrame:
        return equations(noise(n, seed), np.asarray(do["x"], dtype=np.float64))

    return Case(graph, sample, counterfactual)


def _upper_tail(u: np.ndarray) -> np.ndarray:
    """``P(N(0, 1) > u)``, so that ``-log`` of it is an Exp(1) draw (inverse CDF)."""
    return 0.5 * np.vectorize(math.erfc)(u / math.sqrt(2))


CASES: dict[str, Callable[[int], Case]] = {
    "loglinear10": loglinear10,
    "multiplicative": lambda _: rooted({"x": [], "y": ["x"], "w": ["x", "y"], "v": ["y"]},
                                       _multiplicative, np.exp),
    "mixed": lambda _: rooted({"x": [], "y": ["x"], "z": ["y"]}, _mixed, np.exp),
    "exponential": lambda _: rooted({"x": [], "y": ["x"]}, _exponential,
                                    lambda u: -np.log(_upper_tail(u))),  # Exp(1)
}


def build(graph: dict, config: str) -> SCM:
    """The unfitted SCM of a configuration: ``"auto"``, ``"auto, log scales off"``
    (``log_nodes=None``) or ``"flow"``."""
    if config == "flow":
        return SCM(graph, "flow")
    return SCM(graph, "auto", log_nodes=None if config == "auto, log scales off" else ())


def run(name: str, seed: int, config: str) -> tuple[float, float, str]:
    """``(CF RMSE, fit seconds, chosen log scales)`` of one fit."""
    case = CASES[name](seed)
    train = case.sample(3000, seed)
    factual = case.sample(500, seed + 1000)
    target = max(case.graph, key=lambda k: len(descendants(case.graph, {k})))
    perm = np.random.default_rng(seed).permutation(len(factual))
    do = {target: factual[target].to_numpy()[perm]}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build(case.graph, config).fit(train, seed=seed, progress=False)
    seconds = time.perf_counter() - start
    predicted = model.counterfactual(factual, do)
    truth = case.counterfactual(500, seed + 1000, do)
    nodes = sorted(descendants(case.graph, {target}))
    errors = [((predicted[k] - truth[k]) / train[k].std()).to_numpy() for k in nodes]
    rmse = float(np.sqrt(np.mean(np.square(errors))))
    scales = [f"{k}:{'value' if s['value'] else ''}{'+' if s['value'] and s['parents'] else ''}"
              f"{','.join('log ' + p for p in s['parents'])}"
              for k, s in scm.log_nodes.log_scales(model).items()]
    return rmse, seconds, " ".join(scales) or "none"


def real_tables() -> dict[str, pd.DataFrame]:
    """scikit-learn's bundled tables (no download; scikit-learn comes with causal-learn), the
    positive columns: wine (13 chemical measurements, 178 rows), the first ten breast-cancer
    features (569 rows) and the raw diabetes table without its sex code (442 rows)."""
    from sklearn import datasets

    tables = {
        "wine": datasets.load_wine(as_frame=True).frame.drop(columns="target"),
        "breast_cancer": datasets.load_breast_cancer(as_frame=True).frame.iloc[:, :10],
        "diabetes": datasets.load_diabetes(as_frame=True, scaled=False).frame.drop(
            columns="sex"),
    }
    out = {}
    for name, df in tables.items():
        df = df.astype(float)
        df.columns = ["".join(c if c.isalnum() else "_" for c in col) for col in df.columns]
        out[name] = df.loc[:, (df > 0).all()]
    return out


def held_out(df: pd.DataFrame, graph: dict, config: str, folds: int = 5) -> np.ndarray:
    """Per-row held-out log-likelihood (data units) over ``folds`` folds of ``"auto"`` fits."""
    parts = np.array_split(np.random.default_rng(0).permutation(len(df)), folds)
    out = np.empty(len(df))
    for k, test in enumerate(parts):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = build(graph, config).fit(df.drop(index=df.index[test]), seed=k,
                                             progress=False)
        out[test] = model.log_prob(df.iloc[test])
    return out


def real() -> None:
    """Held-out log-likelihood on real tables, log scales on and off, with a DAG found by
    DirectLiNGAM on the logged columns of all rows (the same DAG for both)."""
    from scm.discovery import discover

    print("\n| table | rows x cols (edges) | held-out log-lik / row, log scales | off | "
          "difference (± s.e.) |")
    print("|---|---|---|---|---|")
    for name, df in real_tables().items():
        graph = discover(np.log(df), "direct_lingam", seed=0).parents()
        on, off = held_out(df, graph, "auto"), held_out(df, graph, "auto, log scales off")
        diff = on - off
        edges = sum(len(p) for p in graph.values())
        print(f"| {name} | {df.shape[0]} x {df.shape[1]} ({edges}) | {on.mean():.3f} | "
              f"{off.mean():.3f} | {diff.mean():+.3f} ± {diff.std() / math.sqrt(len(diff)):.3f} |",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cases", nargs="+", default=list(CASES))
    parser.add_argument("--configs", nargs="+",
                        default=["auto", "auto, log scales off", "flow"])
    parser.add_argument("--real", action="store_true",
                        help="also: 5-fold held-out log-likelihood on real tables")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| case | config | CF RMSE (std), mean over seeds | per seed | fit (s) | log scales "
          "(seed 0) |")
    print("|---|---|---|---|---|---|")
    for case in args.cases:
        for config in args.configs:
            out = [run(case, seed, config) for seed in args.seeds]
            rmse = [r for r, _, _ in out]
            print(f"| {case} | {config} | {np.mean(rmse):.4f} | "
                  f"{' '.join(f'{r:.4f}' for r in rmse)} | {np.mean([s for _, s, _ in out]):.1f} "
                  f"| {out[0][2]} |", flush=True)
    if args.real:
        real()


if __name__ == "__main__":
    main()
