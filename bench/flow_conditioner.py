"""Benchmark: the flow mechanism's conditioner (activation, widths) on seeds the SCM benchmark
never uses, so that choosing a default does not tune it to ``bench/scm_queries.py``'s figures.

For each case and seed this draws the data as ``bench/scm_queries.py`` does (same queries and
scores: counterfactual RMSE in observational stds over the target's descendants, unbiased MMD²
of 5,000 interventional samples), fits ``SCM(graph, mechanisms, hidden=..., activation=...)``
with the default fit, and prints the mean over seeds per case and configuration. Cases: the
zoo's SCMs by name, and ``g{d}_{s}`` for ``zoo.random_dag(d, seed=s)`` (random DAGs other than
the benchmark's). ``--peer causalflows`` adds the causal NF from the benchmark's peer venv.

Usage (the project venv; ~10 min per configuration and three seeds on one thread)::

    .venv/bin/python bench/flow_conditioner.py
    .venv/bin/python bench/flow_conditioner.py --configs relu:32x32 elu:32x32x32 \\
        --cases chain,collider,pendulum --peer causalflows
    .venv/bin/python bench/flow_conditioner.py --configs relu:32x32 default   # auto's choice
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import scm_queries as sq  # noqa: E402

from scm import SCM, zoo  # noqa: E402

DEFAULT_CASES = "triangle,random10,random20,g10_1,g10_2,g20_1"


def parse_config(text: str) -> dict[str, object]:
    """``"elu:32x32x32"`` -> ``{"activation": "elu", "hidden": (32, 32, 32)}``; ``"default"``
    -> ``{}`` (the SCM's own defaults: with ``--mechanisms auto``, the per-node choice among
    ``scm.auto.AUTO_CONDITIONERS``, which a given activation or widths turn off)."""
    if text == "default":
        return {}
    activation, _, widths = text.partition(":")
    return {"activation": activation, "hidden": tuple(int(w) for w in widths.split("x"))}


def make_case(name: str, seed: int) -> sq.Case:
    """The benchmark's case for a zoo name, or for ``g{d}_{s}`` a random DAG of its own."""
    if name.startswith("g") and name not in zoo.ZOO:
        d, s = (int(x) for x in name[1:].split("_"))
        zoo.ZOO[name] = lambda: zoo.random_dag(d, seed=s)
    return sq.make_case(name, sq.Settings(), seed)


def score(case: sq.Case, model: SCM) -> tuple[float, float]:
    """``(CF RMSE, MMD²)`` of a fitted model on ``case``."""
    intervened = model.do({case.target: case.value})
    draws = [intervened.sample(sq.Settings().n_int, seed=sq.sample_seed(case.seed, k))
             for k in range(len(case.truth_int))]
    _, mmd, _ = sq.score_interventional(case, draws)
    cf = model.counterfactual(case.factual, {case.target: case.cf_values})
    return sq.score_counterfactual(case, cf), mmd


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["relu:32x32", "elu:32x32x32"],
                        help="activation:widths per configuration, or 'default'")
    parser.add_argument("--cases", default=DEFAULT_CASES, help="comma-separated cases")
    parser.add_argument("--seeds", type=int, nargs="+", default=[20, 21, 22],
                        help="replicates (bench/scm_queries.py uses 0, 1, 2, ...)")
    parser.add_argument("--mechanisms", default="auto", choices=["auto", "flow"])
    parser.add_argument("--peer", default=None, choices=["causalflows", "dowhy"])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    methods = list(args.configs) + ([args.peer] if args.peer else [])
    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for seed in args.seeds:
        for name in args.cases.split(","):
            case = make_case(name, seed)
            for method in methods:
                if method == args.peer:
                    with tempfile.TemporaryDirectory() as tmp:
                        row = sq.run_peer(method, case, sq.Settings(repeat=1), Path(tmp))
                    got = (row.cf_rmse, row.mmd2, row.fit_s)
                else:
                    t0 = time.perf_counter()
                    model = SCM(case.graph, args.mechanisms, **parse_config(method))
                    model.fit(case.train, seed=seed, progress=False)
                    fit_s = time.perf_counter() - t0
                    got = (*score(case, model), fit_s)
                results.setdefault((name, method), []).append(got)
                print(f"{name} seed {seed} {method}: CF RMSE {got[0]:.4f} MMD² {got[1]:.2e} "
                      f"fit {got[2]:.1f} s", flush=True)
    print(f"\nMeans over seeds {args.seeds} (mechanisms={args.mechanisms}): "
          "CF RMSE / MMD² / fit s\n")
    print("| case | " + " | ".join(methods) + " |")
    print("|---" * (len(methods) + 1) + "|")
    for name in args.cases.split(","):
        cells = []
        for method in methods:
            cf, mmd, fit_s = np.mean(results[(name, method)], axis=0)
            cells.append(f"{cf:.4f} / {mmd:.1e} / {fit_s:.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
