"""Benchmark: fit flow SCMs on the zoo and answer do-queries and counterfactuals, beside peers.

For each zoo SCM (chain, collider, triangle, pendulum, random DAGs with 10 and 20 nodes)
this draws 5,000 training rows and 500 held-out factual rows from the true equations, fits
cauflow's ``SCM(graph, mechanisms="flow").fit(df, seed=s)`` with its defaults (``--mechanisms
auto`` for the per-node flow-or-linear choice; ``s`` the replicate, ``--seeds``), and fits the
peers on the same rows in the same run through ``bench/peers_runner.py`` in their own
environment (``bench/.venv-peers``; ``bash bench/setup_peers.sh`` makes it): DoWhy's ``gcm``
(invertible SCM, auto-assigned mechanisms) and ``causalflows`` (causal normalizing flows).

Queries, per SCM, inside the data's support (where the data identify the answer):
``do(t = 0.8 quantile of t)`` on the node ``t`` with the most descendants (ties: earliest in
topological order, so usually a root), 5,000 samples; counterfactuals of the 500 factual rows
under ``do(t = t of another factual row)`` (a seeded permutation), one value per row:
"had this scene's t been that scene's t".

Scores (truth from the zoo's equations):

* interventional mean error: ``max over nodes of |mean - true mean| / true std``, over the
  nodes that are not intervened on, the means over every draw scored for MMD² (15,000 rows);
  the true moments from 200,000 interventional rows;
* MMD²: unbiased squared MMD between 5,000 model samples and 5,000 true interventional
  samples, averaged over 3 independent pairs of such draws (``Settings.n_mmd_draws``; one
  draw of each is as noisy as the gaps between methods); RBF kernel whose bandwidth comes
  from the truth's first draw by the median heuristic (one kernel per SCM and replicate, the
  same for every method), columns standardized by the observational training data;
* counterfactual RMSE: over the descendants of ``t`` (the nodes a counterfactual changes),
  each in units of its observational std;
* wall times: fit, 5,000 interventional samples, 500 counterfactuals (best of 3 calls),
  each with threads pinned to 1; and cauflow's batched counterfactual throughput on the
  10-node DAG (100,000 rows in one call).

A "truth (2nd draw)" row per SCM scores an independent sample of the true model: the noise
floor of the interventional metrics.

Usage (the project venv)::

    .venv/bin/python bench/scm_queries.py            # full run, writes bench/results/scm_queries.md
    .venv/bin/python bench/scm_queries.py --quick    # smoke run: 2 SCMs, fewer rows
    .venv/bin/python bench/scm_queries.py --peers dowhy --scms chain,triangle
    .venv/bin/python bench/scm_queries.py --mechanisms auto --seeds 0 1 2   # 3 replicates
    .venv/bin/python bench/scm_queries.py --merge a.json b.json   # one report over several runs
    .venv/bin/python bench/scm_queries.py --scms causal-nf --mechanisms auto   # the causal NF
        # paper's 16 SCMs (scm/zoo_causal_nf.py): ground truths made for another method
    .venv/bin/python bench/scm_queries.py --scms random30-5,random12-3-uniform-deg3
        # zoo.random_dag(30, seed=5), random_dag(12, seed=3, noise="uniform", expected_degree=3)
    .venv/bin/python bench/scm_queries.py --scms random10:x5,random10:x0
        # one mechanism and its inputs: random10's SCM over x5 and its ancestors (x4), ...

The report (rows, mean ± sd, target checks) is ``bench/scm_queries_report.py``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # run from a checkout without installing

from kernel_mmd import RBF  # noqa: E402
from scm_queries_report import ALL_PEERS, Row, fmt, report  # noqa: E402

from scm import SCM, zoo  # noqa: E402
from scm.known_scm import KnownSCM  # noqa: E402
from scm.zoo_causal_nf import CAUSAL_NF  # noqa: E402

PEERS_PYTHON = BENCH / ".venv-peers" / "bin" / "python"
PEERS_RUNNER = BENCH / "peers_runner.py"
TRUTH_ROW = "truth (2nd draw)"


@dataclass(frozen=True)
class Settings:
    """Sizes of one run; ``--quick`` shrinks them for a smoke test."""

    scms: tuple[str, ...] = ("chain", "collider", "triangle", "pendulum", "random10", "random20")
    n_train: int = 5_000
    n_int: int = 5_000
    n_cf: int = 500
    n_truth_moments: int = 200_000
    n_throughput: int = 100_000
    repeat: int = 3
    n_mmd_draws: int = 3


QUICK = Settings(
    scms=("triangle", "random10"),
    n_train=1_000,
    n_int=1_000,
    n_cf=100,
    n_truth_moments=50_000,
    n_throughput=10_000,
    repeat=1,
    n_mmd_draws=2,
)


@dataclass
class Case:
    """One zoo SCM's data and exact answers."""

    name: str
    graph: dict[str, list[str]]
    train: pd.DataFrame
    factual: pd.DataFrame
    target: str
    value: float
    cf_values: np.ndarray
    truth_int: list[pd.DataFrame]
    """Independent draws of ``n_int`` true interventional rows (``Settings.n_mmd_draws``)."""
    true_mean: pd.Series
    true_std: pd.Series
    truth_cf: pd.DataFrame
    descendants: list[str]
    seed: int = 0
    obs_mean: pd.Series = field(init=False)
    obs_std: pd.Series = field(init=False)
    kernel: RBF = field(init=False)
    truth_self: list[float] = field(init=False)
    """Each truth draw's mean kernel value over distinct pairs, shared by every method."""

    def __post_init__(self) -> None:
        self.obs_mean = self.train.mean()
        self.obs_std = self.train.std()
        first = self.standardized(self.truth_int[0])
        self.kernel = RBF.median_heuristic(first, seed=self.seed)
        self.truth_self = [self.kernel.mean_within(self.standardized(d)) for d in self.truth_int]

    def standardized(self, df: pd.DataFrame) -> np.ndarray:
        """``df``'s node columns in units of the observational training data, ``(n, D)``."""
        cols = list(self.graph)
        return ((df[cols] - self.obs_mean[cols]) / self.obs_std[cols]).to_numpy(np.float64)


# ----------------------------------------------------------------------------- metrics


def score_interventional(
    case: Case, draws: Sequence[pd.DataFrame]
) -> tuple[float, float, dict[str, float]]:
    """Return ``(mean error in true stds, MMD², per-node errors)`` of interventional sample
    ``draws`` (as many as ``case.truth_int``): the largest of the per-node errors
    (:func:`node_errors`), and the unbiased squared MMD averaged over the pairs (draw k, the
    truth's draw k)."""
    if len(draws) != len(case.truth_int):
        raise ValueError(f"{len(draws)} sample draws for {len(case.truth_int)} truth draws")
    per_node = node_errors(case, draws)
    err = max(abs(e) for e in per_node.values())
    k = case.kernel
    mmd2 = []
    for draw, truth, truth_self in zip(draws, case.truth_int, case.truth_self, strict=True):
        x, y = case.standardized(draw), case.standardized(truth)
        mmd2.append(k.mean_within(x) + truth_self - 2.0 * k.mean_between(x, y))
    return float(err), float(np.mean(mmd2)), per_node


def node_errors(case: Case, draws: Sequence[pd.DataFrame]) -> dict[str, float]:
    """``{node: (mean - true mean) / true std}`` over all rows of ``draws``, for the nodes that
    are not intervened on (the terms of the interventional mean error's max)."""
    rows = pd.concat(list(draws), ignore_index=True)
    nodes = [n for n in case.graph if n != case.target and case.true_std[n] > 0]
    return {n: float((rows[n].mean() - case.true_mean[n]) / case.true_std[n]) for n in nodes}


def score_counterfactual(case: Case, cf: pd.DataFrame) -> float:
    """RMSE over the target's descendants and all rows, each node in its observational std."""
    nodes = case.descendants
    if not nodes:
        return 0.0
    err = cf[nodes].to_numpy(np.float64) - case.truth_cf[nodes].to_numpy(np.float64)
    err /= case.obs_std[nodes].to_numpy()
    return float(np.sqrt(np.mean(err**2)))


# ----------------------------------------------------------------------------- cases


def descendants_of(graph: dict[str, list[str]], node: str) -> list[str]:
    """Descendants of ``node`` in topological order."""
    out: set[str] = set()
    for child, parents in graph.items():  # topological order: parents come first
        if node in parents or out.intersection(parents):
            out.add(child)
    return [n for n in graph if n in out]


RANDOM_DAG = re.compile(r"random(\d+)-(\d+)(?:-(gaussian|laplace|uniform))?(?:-deg([\d.]+))?")
"""``random{d}-{seed}[-{noise}][-deg{k}]``: ``zoo.random_dag(d, seed=seed, noise=noise,
expected_degree=k)``, a random DAG the zoo does not name (e.g. ``random30-5``,
``random12-3-uniform-deg3``)."""


def known_scm(name: str) -> KnownSCM:
    """The ground truth called ``name``: a zoo SCM, or a :data:`RANDOM_DAG` name; ``name:node``
    is its SCM over ``node`` and ``node``'s ancestors alone (one mechanism and its inputs,
    e.g. ``random10:x5``)."""
    if ":" in name:
        whole, node = name.rsplit(":", 1)
        truth = known_scm(whole)
        if node not in truth.graph:
            raise KeyError(name)
        return truth.restrict([node, *nx.ancestors(truth.to_networkx(), node)])
    if name in zoo.ZOO:
        return zoo.ZOO[name]()
    match = RANDOM_DAG.fullmatch(name)
    if match is None:
        raise KeyError(name)
    d, seed, noise, degree = match.groups()
    return zoo.random_dag(int(d), seed=int(seed), noise=noise or "gaussian",
                          expected_degree=float(degree or 2.0))


def make_case(name: str, s: Settings, seed: int = 0) -> Case:
    """Draw the data of zoo SCM ``name`` and its exact interventional and counterfactual answers.

    ``seed`` picks an independent replicate: every draw of it (training rows, factual rows,
    the permutation, the true interventional samples) and the fits use their own seeds, and
    seed 0 is the single run of earlier reports."""
    truth = known_scm(name)
    graph = truth.graph
    target = max(graph, key=lambda n: (len(descendants_of(graph, n)), -list(graph).index(n)))
    train = truth.sample(s.n_train, seed=10 * seed)
    factual = truth.sample(s.n_cf, seed=10 * seed + 1)
    value = float(train[target].quantile(0.8))
    cf_values = np.random.default_rng(seed).permutation(factual[target].to_numpy(np.float64))
    big = truth.do({target: value}).sample(s.n_truth_moments, seed=10 * seed + 2)
    return Case(
        name=name,
        graph=graph,
        train=train,
        factual=factual,
        target=target,
        value=value,
        cf_values=cf_values,
        truth_int=[truth.do({target: value}).sample(s.n_int, seed=truth_seed(seed, k))
                   for k in range(s.n_mmd_draws)],
        true_mean=big.mean(),
        true_std=big.std(),
        truth_cf=truth.counterfactual(factual, {target: cf_values}),
        descendants=descendants_of(graph, target),
        seed=seed,
    )


def truth_seed(seed: int, k: int, *, again: bool = False) -> int:
    """Seed of the truth's ``k``-th interventional draw of replicate ``seed`` (``again``: of the
    2nd-draw row's); draw 0 keeps the seed of the reports that scored one draw."""
    if k == 0:
        return 10 * seed + (4 if again else 3)
    return 100_000 + 1_000 * seed + 2 * k + again


def sample_seed(seed: int, k: int) -> int:
    """Seed of a fitted model's ``k``-th interventional draw in replicate ``seed``; draw 0 is
    the timed one."""
    return seed + 1_000 * k


def truth_row(case: Case, name: str, s: Settings) -> Row:
    """Score independent draws of the true model: the metrics' sampling-noise floor."""
    truth = known_scm(name).do({case.target: case.value})
    again = [truth.sample(s.n_int, seed=truth_seed(case.seed, k, again=True))
             for k in range(s.n_mmd_draws)]
    err, mmd, per_node = score_interventional(case, again)
    return Row(case.name, TRUTH_ROW, mean_err=err, mmd2=mmd, cf_rmse=0.0, seed=case.seed,
               node_err=per_node)


# ----------------------------------------------------------------------------- cauflow


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """Call ``fn`` ``repeat`` times; return the shortest wall time and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


MECHANISMS = "flow"
"""cauflow's mechanisms for the run (``--mechanisms``): ``flow`` or ``auto``."""


def fit_cauflow(case: Case) -> SCM:
    """``SCM(graph, mechanisms=MECHANISMS).fit(train, seed=case.seed)``, defaults, no progress
    bar."""
    model = SCM(case.graph, mechanisms=MECHANISMS)
    quiet = {"progress": False} if "progress" in inspect.signature(model.fit).parameters else {}
    fitted = model.fit(case.train, seed=case.seed, **quiet)
    return fitted if isinstance(fitted, SCM) else model


def run_cauflow(case: Case, s: Settings) -> tuple[Row, SCM | None]:
    row = Row(case.name, "cauflow", seed=case.seed)
    try:
        t0 = time.perf_counter()
        model = fit_cauflow(case)
        row.fit_s = time.perf_counter() - t0
        row.int_s, samples = best_of(
            s.repeat,
            lambda: model.do({case.target: case.value}).sample(s.n_int, seed=case.seed),
        )
        intervened = model.do({case.target: case.value})
        more = [intervened.sample(s.n_int, seed=sample_seed(case.seed, k))
                for k in range(1, s.n_mmd_draws)]
        row.mean_err, row.mmd2, row.node_err = score_interventional(case, [samples, *more])
        row.cf_s, cf = best_of(
            s.repeat, lambda: model.counterfactual(case.factual, {case.target: case.cf_values})
        )
        row.cf_rmse = score_counterfactual(case, cf)
        return row, model
    except Exception as err:  # report and go on with the other methods
        row.note = f"failed: {type(err).__name__}: {err}"
        traceback.print_exc()
        return row, None


def throughput(model: SCM, name: str, s: Settings) -> float:
    """Rows/s of one batched counterfactual call on ``s.n_throughput`` rows (one thread)."""
    truth = known_scm(name)
    graph = truth.graph
    target = max(graph, key=lambda n: (len(descendants_of(graph, n)), -list(graph).index(n)))
    factual = truth.sample(s.n_throughput, seed=5)
    values = np.random.default_rng(0).permutation(factual[target].to_numpy(np.float64))
    model.counterfactual(factual.head(1000), {target: values[:1000]})  # warm-up
    t, _ = best_of(s.repeat, lambda: model.counterfactual(factual, {target: values}))
    return s.n_throughput / t


# ----------------------------------------------------------------------------- peers


def run_peer(peer: str, case: Case, s: Settings, work: Path) -> Row:
    """Fit ``peer`` in its own venv through ``peers_runner.py`` and score its answers."""
    row = Row(case.name, peer, seed=case.seed)
    job_dir = work / f"{case.name}-{case.seed}"
    job_dir.mkdir(parents=True, exist_ok=True)
    case.train.to_csv(job_dir / "train.csv", index=False)
    case.factual.to_csv(job_dir / "factual.csv", index=False)
    queries: list[dict[str, Any]] = []
    for i in range(s.repeat):  # repeated calls; the best time counts, as for cauflow
        queries.append(
            {"name": f"int{i}", "do": {case.target: case.value}, "n": s.n_int,
             "seed": case.seed}
        )
        queries.append(
            {
                "name": f"cf{i}",
                "factual_csv": str(job_dir / "factual.csv"),
                "do": {case.target: case.cf_values.tolist()},
            }
        )
    for k in range(1, s.n_mmd_draws):  # untimed draws, scored with the timed one
        queries.append({"name": f"draw{k}", "do": {case.target: case.value}, "n": s.n_int,
                        "seed": sample_seed(case.seed, k)})
    job = {
        "graph": case.graph,
        "train_csv": str(job_dir / "train.csv"),
        "seed": case.seed,
        "queries": queries,
    }
    (job_dir / "job.json").write_text(json.dumps(job))
    out = job_dir / f"out_{peer}"
    cmd = [
        str(PEERS_PYTHON),
        str(PEERS_RUNNER),
        "--peer",
        peer,
        "--job",
        str(job_dir / "job.json"),
        "--out",
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    result_file = out / "result.json"
    if not result_file.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        row.note = f"failed (exit {proc.returncode}): {' | '.join(tail)}"
        return row
    result = json.loads(result_file.read_text())
    PEER_VERSIONS[peer] = result.get("versions", {})
    if "error" in result:
        row.note = result["error"]
        return row
    row.fit_s = result["fit_s"]
    errors = [f"{q['name']}: {q['error']}" for q in result["queries"] if "error" in q]
    done = {q["name"]: q for q in result["queries"] if "error" not in q}
    ints = [q for n, q in done.items() if n.startswith("int")]
    cfs = [q for n, q in done.items() if n.startswith("cf")]
    draws = [done.get(f"draw{k}") for k in range(1, s.n_mmd_draws)]
    if ints and all(draws):
        row.int_s = min(q["time_s"] for q in ints)
        samples = [pd.read_csv(out / q["file"]) for q in (ints[-1], *draws)]
        row.mean_err, row.mmd2, row.node_err = score_interventional(case, samples)
    if cfs:
        row.cf_s = min(q["time_s"] for q in cfs)
        cf = pd.read_csv(out / cfs[-1]["file"])
        row.cf_rmse = score_counterfactual(case, cf)
    if errors:
        row.note = "failed: " + errors[0]
    return row


PEER_VERSIONS: dict[str, dict[str, str]] = {}


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: triangle and random10, 1,000 rows, no repeats",
    )
    parser.add_argument(
        "--peers",
        default=",".join(ALL_PEERS),
        help="comma-separated peers to run (dowhy, causalflows) or 'none'",
    )
    parser.add_argument(
        "--scms",
        default=None,
        help=f"comma-separated zoo SCMs (default: {', '.join(Settings.scms)}); 'causal-nf' "
        "stands for the causal NF paper's SCMs (scm/zoo_causal_nf.py, cnf_...); "
        "random{d}-{seed}[-{noise}][-deg{k}] for zoo.random_dag(d, seed=seed, noise=noise, "
        "expected_degree=k); SCM:node for SCM over node and its ancestors alone",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=BENCH / "results" / "scm_queries.md",
        help="where to write the markdown table",
    )
    parser.add_argument(
        "--mechanisms",
        default="flow",
        choices=["flow", "auto"],
        help="cauflow's mechanisms: flow everywhere, or auto (linear where it is not worse)",
    )
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        help="report on the rows of earlier runs' .json files (e.g. seeds run in parallel "
        "processes) instead of running anything",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="replicates: each redraws the data and refits every method (default: seed 0 only)",
    )
    args = parser.parse_args(argv)
    global MECHANISMS
    MECHANISMS = args.mechanisms

    s = QUICK if args.quick else Settings()
    if args.merge:
        return merge(args.merge, args.out, s, args.quick)
    if args.scms:
        scms = tuple(x.strip() for x in args.scms.split(",") if x.strip())
        scms = tuple(n for x in scms for n in (CAUSAL_NF if x == "causal-nf" else [x]))
        unknown = []
        for x in scms:
            try:
                known_scm(x)
            except KeyError:
                unknown.append(x)
        if unknown:
            parser.error(f"--scms: unknown {unknown}; choose from {list(zoo.ZOO)} or "
                         "random{d}-{seed}[-{noise}][-deg{k}], each optionally :node")
        s = Settings(**{**s.__dict__, "scms": scms})
    peers = (
        []
        if args.peers.strip() in ("", "none")
        else [p.strip() for p in args.peers.split(",") if p.strip()]
    )
    bad = [p for p in peers if p not in ALL_PEERS]
    if bad:
        parser.error(f"--peers: unknown {bad}; choose from {list(ALL_PEERS)} or 'none'")
    skipped = []
    if peers and not PEERS_PYTHON.exists():
        reason = (
            f"peers {', '.join(peers)}: {PEERS_PYTHON} not "
            "found; run `bash bench/setup_peers.sh` to make it"
        )
        print(f"skipping {reason}", flush=True)
        skipped.append(reason)
        peers = []

    torch.set_num_threads(1)
    start = time.perf_counter()
    rows: list[Row] = []
    rate: float | None = None
    with tempfile.TemporaryDirectory(prefix="scm_queries_") as tmp:
        for seed in args.seeds:
            for name in s.scms:
                print(f"== {name} (seed {seed})", flush=True)
                case = make_case(name, s, seed)
                rows.append(truth_row(case, name, s))
                row, model = run_cauflow(case, s)
                rows.append(row)
                print(f"   cauflow: fit {fmt(row.fit_s, 2)} s {row.note}", flush=True)
                if name == "random10" and model is not None and rate is None:
                    rate = throughput(model, name, s)
                    print(f"   cauflow CF throughput: {rate:,.0f} rows/s", flush=True)
                for peer in peers:
                    prow = run_peer(peer, case, s, Path(tmp))
                    rows.append(prow)
                    print(f"   {peer}: fit {fmt(prow.fit_s, 2)} s {prow.note}", flush=True)
    text = report(rows, rate, s, args.quick, skipped, time.perf_counter() - start, args.seeds,
                  MECHANISMS, PEER_VERSIONS)
    print()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    run = {"mechanisms": MECHANISMS, "peer_versions": PEER_VERSIONS, "skipped": skipped,
           "seconds": time.perf_counter() - start}
    args.out.with_suffix(".json").write_text(
        json.dumps([r.__dict__ for r in rows] + [{"cf_throughput_rows_s": rate}, {"run": run}],
                   indent=2)
    )
    print(f"wrote {args.out}")
    return 0


def merge(files: Sequence[Path], out: Path, s: Settings, quick: bool) -> int:
    """Write the report over the rows of several runs' ``.json`` files (replicates run in
    separate processes); the run time is the sum of theirs."""
    rows: list[Row] = []
    rate, runs = None, []
    for f in files:
        for item in json.loads(f.read_text()):
            if "scm" in item:
                rows.append(Row(**item))
            elif item.get("cf_throughput_rows_s") is not None and rate is None:
                rate = item["cf_throughput_rows_s"]
            elif "run" in item:
                runs.append(item["run"])
    mechanisms = {r["mechanisms"] for r in runs}
    if len(runs) != len(files) or len(mechanisms) != 1:
        raise SystemExit(f"--merge: need runs with one --mechanisms each, got {mechanisms}")
    seeds = sorted({r.seed for r in rows})
    text = report(rows, rate, s, quick, sorted({x for r in runs for x in r["skipped"]}),
                  sum(r["seconds"] for r in runs), seeds, mechanisms.pop(),
                  {k: v for r in runs for k, v in r["peer_versions"].items()})
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
