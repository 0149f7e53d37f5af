"""Fit one peer library on an SCM's data and answer interventional and counterfactual queries.

This script runs in the peers' own environment (``bench/.venv-peers``, made by
``bench/setup_peers.sh``), never in the project's: DoWhy pins an older scipy than cauflow
uses. It imports nothing from the project; ``bench/scm_queries.py`` drives it through a
subprocess and scores what it writes.

Peers:

* ``dowhy``: ``gcm.InvertibleStructuralCausalModel`` with
  ``gcm.auto.assign_causal_mechanisms`` (default quality) and ``gcm.fit``; interventions with
  ``gcm.interventional_samples``, counterfactuals with ``gcm.counterfactual_samples``.
* ``causalflows``: a causal normalizing flow (Javaloy et al., NeurIPS 2023) from the
  ``causalflows`` package: one ``CausalMAF`` layer masked by the graph's adjacency, trained
  by maximum likelihood with the paper's configuration (see :func:`fit_causalflows`);
  interventions and counterfactuals with the flow's ``intervene`` context manager.

Job file (JSON)::

    {
      "graph": {"x1": [], "x2": ["x1"], "x3": ["x1", "x2"]},   # child -> parents, topological
      "train_csv": "/path/train.csv",                          # a column per node
      "seed": 0,
      "queries": [
        {"name": "int0", "do": {"x1": 1.0}, "n": 5000, "seed": 0},
        {"name": "cf0", "factual_csv": "/path/factual.csv", "do": {"x1": [0.3, 1.2, ...]}}
      ]
    }

A query with ``factual_csv`` is a counterfactual; its ``do`` values are a number or a list
with one value per factual row. Any other query draws ``n`` interventional samples.

Output (``--out DIR``): ``DIR/<name>.csv`` per query (a column per node, in the graph's
order) and ``DIR/result.json`` with versions, wall times in seconds (``fit_s``; per query
``time_s``) and per-query status. A failing query records its error and the others go on;
a failing fit records its error and exits with status 1.

Threads are pinned to one (``OMP_NUM_THREADS`` and friends before numpy is imported,
``torch.set_num_threads(1)``) so the timings compare single-thread work.

Usage::

    bench/.venv-peers/bin/python bench/peers_runner.py --peer dowhy --job job.json --out outdir
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable, Iterator, Mapping, Sequence  # noqa: E402
from contextlib import ExitStack  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any, Literal, Protocol  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

if TYPE_CHECKING:  # imported lazily at run time, so --help and DoWhy runs skip them
    from causalflows.distributions import CausalNormalizingFlow
    from causalflows.flows import CausalFlow
    from torch import Tensor

PeerName = Literal["dowhy", "causalflows"]
PEERS: tuple[PeerName, ...] = ("dowhy", "causalflows")

Graph = dict[str, list[str]]
DoSpec = dict[str, float | list[float]]


# --------------------------------------------------------------------------- job


@dataclass(frozen=True)
class Query:
    """One query of a job: interventional if ``factual_csv`` is None, else counterfactual."""

    name: str
    do: DoSpec
    n: int = 0
    seed: int = 0
    factual_csv: str | None = None

    @property
    def kind(self) -> Literal["interventional", "counterfactual"]:
        return "interventional" if self.factual_csv is None else "counterfactual"


@dataclass(frozen=True)
class Job:
    graph: Graph
    train_csv: str
    seed: int
    queries: list[Query] = field(default_factory=list)

    @property
    def nodes(self) -> list[str]:
        return list(self.graph)


def load_job(path: Path) -> Job:
    """Parse and check a job file; raise ``ValueError`` naming the offending field."""
    raw = json.loads(path.read_text())
    for key in ("graph", "train_csv", "queries"):
        if key not in raw:
            raise ValueError(f"job {path}: missing field {key!r}")
    graph: Graph = {str(k): [str(p) for p in v] for k, v in raw["graph"].items()}
    seen: set[str] = set()
    for node, parents in graph.items():
        late = [p for p in parents if p not in seen]
        if late:
            raise ValueError(
                f"job {path}: graph must list nodes in topological order; "
                f"parents {late} of {node!r} come after it or are undeclared"
            )
        seen.add(node)
    queries = []
    for i, q in enumerate(raw["queries"]):
        unknown = [k for k in q.get("do", {}) if k not in graph]
        if not q.get("do") or unknown:
            raise ValueError(
                f"job {path}: query {i} needs a non-empty 'do' over graph nodes; "
                f"unknown nodes {unknown}"
            )
        if "factual_csv" not in q and int(q.get("n", 0)) <= 0:
            raise ValueError(f"job {path}: interventional query {i} needs 'n' > 0")
        queries.append(
            Query(
                name=str(q.get("name", f"q{i}")),
                do=q["do"],
                n=int(q.get("n", 0)),
                seed=int(q.get("seed", 0)),
                factual_csv=q.get("factual_csv"),
            )
        )
    return Job(graph, str(raw["train_csv"]), int(raw.get("seed", 0)), queries)


def read_frame(path: str, nodes: Sequence[str]) -> pd.DataFrame:
    """Read a CSV and keep the node columns, in graph order, as float64."""
    df = pd.read_csv(path)
    missing = [n for n in nodes if n not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    return df[list(nodes)].astype(np.float64)


def per_row(value: float | Sequence[float], n: int, node: str) -> np.ndarray:
    """Broadcast an intervention value to ``(n,)``; a list must have one value per row."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"do[{node!r}] has {arr.shape[0]} values for {n} rows")
    return arr


# --------------------------------------------------------------------------- peers


class Peer(Protocol):
    """A fitted peer model that answers the two kinds of query."""

    def interventional(self, do: DoSpec, n: int, seed: int) -> pd.DataFrame: ...

    def counterfactual(self, factual: pd.DataFrame, do: DoSpec) -> pd.DataFrame: ...


class DoWhyPeer:
    """DoWhy's graphical causal model with auto-assigned, invertible mechanisms."""

    def __init__(self, graph: Graph, data: pd.DataFrame, seed: int) -> None:
        import networkx as nx
        from dowhy import gcm
        from dowhy.gcm.util.general import set_random_seed

        self.gcm = gcm
        self.nodes = list(graph)
        set_random_seed(seed)
        dag = nx.DiGraph()
        dag.add_nodes_from(self.nodes)
        dag.add_edges_from((p, child) for child, parents in graph.items() for p in parents)
        self.model = gcm.InvertibleStructuralCausalModel(dag)
        # Default quality (AssignmentQuality.GOOD): model selection among a few regressors
        # per node is part of fitting, so both calls count towards the fit time.
        gcm.auto.assign_causal_mechanisms(self.model, data)
        gcm.fit(self.model, data)

    def interventional(self, do: DoSpec, n: int, seed: int) -> pd.DataFrame:
        from dowhy.gcm.util.general import set_random_seed

        set_random_seed(seed)
        fns = {node: _RowValues(per_row(v, n, node)) for node, v in do.items()}
        out = self.gcm.interventional_samples(self.model, fns, num_samples_to_draw=n)
        return _checked(out[self.nodes], do, fns)

    def counterfactual(self, factual: pd.DataFrame, do: DoSpec) -> pd.DataFrame:
        fns = {node: _RowValues(per_row(v, len(factual), node)) for node, v in do.items()}
        out = self.gcm.counterfactual_samples(self.model, fns, observed_data=factual)
        return _checked(out[self.nodes], do, fns)


class _RowValues:
    """A DoWhy intervention function that returns one given value per row, in row order.

    DoWhy applies an intervention function to the node's values one row at a time, in row
    order (``map`` over the column). Its public API takes only such functions, so a per-row
    hard intervention is this iterator; :func:`_checked` verifies afterwards that each row
    got its own value, so a change in that order would fail loudly, not silently.
    """

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self._it: Iterator[float] = iter(values.tolist())
        self.calls = 0

    def __call__(self, _: float) -> float:
        self.calls += 1
        return next(self._it)


def _checked(out: pd.DataFrame, do: DoSpec, fns: Mapping[str, _RowValues]) -> pd.DataFrame:
    for node, fn in fns.items():
        if fn.calls != len(fn.values) or not np.allclose(out[node].to_numpy(), fn.values):
            raise RuntimeError(
                f"DoWhy did not apply the per-row values of do[{node!r}] row by row "
                f"({fn.calls} calls for {len(fn.values)} rows)"
            )
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class FlowConfig:
    """Training configuration of the causal NF, from the paper's released config.

    Javaloy et al. (NeurIPS 2023), ``causal_nf/configs/causal_nf.yaml``: one MAF layer
    with the graph's adjacency, a 3x32 ELU conditioner, a fixed standard-normal base,
    Adam at lr 1e-3, batch 4096, 1000 epochs, ReduceLROnPlateau (factor 0.95, patience 60),
    standardized data, a validation split (0.1) that selects the best weights.
    """

    hidden: tuple[int, ...] = (32, 32, 32)
    epochs: int = 1000
    batch_size: int = 4096
    lr: float = 1e-3
    plateau_factor: float = 0.95
    plateau_patience: int = 60
    val_fraction: float = 0.1


class CausalFlowsPeer:
    """A causal normalizing flow (``causalflows.flows.CausalMAF``) over standardized nodes."""

    def __init__(
        self, graph: Graph, data: pd.DataFrame, seed: int, config: FlowConfig | None = None
    ) -> None:
        import torch
        from causalflows.flows import CausalMAF

        self.torch = torch
        self.nodes = list(graph)
        self.index = {node: i for i, node in enumerate(self.nodes)}
        x = data.to_numpy(np.float64)
        self.mean = x.mean(axis=0)
        self.std = x.std(axis=0)
        d = len(self.nodes)
        # adjacency[i, j]: node j is a parent of node i; causalflows requires the diagonal.
        adjacency = torch.eye(d, dtype=torch.bool)
        for child, parents in graph.items():
            for p in parents:
                adjacency[self.index[child], self.index[p]] = True
        torch.manual_seed(seed)
        cfg = config or FlowConfig()
        self.flow = CausalMAF(
            d, 0, adjacency=adjacency, hidden_features=list(cfg.hidden), activation=torch.nn.ELU
        )
        self.epochs_run = fit_causalflows(self.flow, self._to_z(x), cfg, seed)

    def _to_z(self, x: np.ndarray) -> Tensor:
        return self.torch.as_tensor((x - self.mean) / self.std, dtype=self.torch.float32)

    def _from_z(self, z: Tensor) -> pd.DataFrame:
        return pd.DataFrame(z.double().numpy() * self.std + self.mean, columns=self.nodes)

    def _intervened(
        self, stack: ExitStack, dist: CausalNormalizingFlow, do: DoSpec, n: int
    ) -> CausalNormalizingFlow:
        # One ``intervene`` per node: causalflows concatenates the indices and stacks the
        # values on the last axis, so scalars and per-row values both come out right.
        # causalflows stacks the values, so all are scalars or all are per-row.
        rows = any(np.ndim(v) > 0 for v in do.values())
        for node, v in do.items():
            i = self.index[node]
            value = (per_row(v, n, node) - self.mean[i]) / self.std[i]
            if not rows:
                value = value[0]
            dist = stack.enter_context(
                dist.intervene(index=i, value=self.torch.tensor(value, dtype=self.torch.float32))
            )
        return dist

    def interventional(self, do: DoSpec, n: int, seed: int) -> pd.DataFrame:
        torch = self.torch
        torch.manual_seed(seed)
        with torch.no_grad(), ExitStack() as stack:
            dist = self._intervened(stack, self.flow(), do, n)
            z = dist.sample((n,))
        return self._from_z(z)

    def counterfactual(self, factual: pd.DataFrame, do: DoSpec) -> pd.DataFrame:
        # Same three steps as ``CausalNormalizingFlow.compute_counterfactual`` (abduct
        # u = T(x), intervene, invert), written out so several nodes can be intervened.
        with self.torch.no_grad(), ExitStack() as stack:
            dist = self.flow()
            u = dist.transform(self._to_z(factual.to_numpy(np.float64)))
            dist = self._intervened(stack, dist, do, len(factual))
            z = dist.transform.inv(u)
        return self._from_z(z)


def fit_causalflows(flow: CausalFlow, z: Tensor, cfg: FlowConfig, seed: int) -> int:
    """Maximum-likelihood training of ``flow`` on standardized rows ``z``; returns epochs run.

    Keeps the weights with the best validation log-likelihood.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(z), generator=gen)
    n_val = max(1, int(cfg.val_fraction * len(z)))
    val, train = z[perm[:n_val]], z[perm[n_val:]]
    opt = torch.optim.Adam(flow.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience
    )
    best, best_state = float("inf"), None
    for _ in range(cfg.epochs):
        flow.train()
        order = torch.randperm(len(train), generator=gen)
        for start in range(0, len(train), cfg.batch_size):
            batch = train[order[start : start + cfg.batch_size]]
            loss = -flow().log_prob(batch).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        flow.eval()
        with torch.no_grad():
            val_loss = float(-flow().log_prob(val).mean())
        sched.step(val_loss)
        if val_loss < best:
            best = val_loss
            best_state = {k: v.detach().clone() for k, v in flow.state_dict().items()}
    if best_state is not None:
        flow.load_state_dict(best_state)
    return cfg.epochs


FACTORIES: dict[PeerName, Callable[[Graph, pd.DataFrame, int], Peer]] = {
    "dowhy": DoWhyPeer,
    "causalflows": CausalFlowsPeer,
}


def versions(peer: PeerName) -> dict[str, str]:
    import importlib.metadata as md

    names = {"dowhy": ["dowhy", "scipy", "scikit-learn"], "causalflows": ["causalflows", "zuko"]}
    out = {"python": sys.version.split()[0], "numpy": np.__version__, "pandas": pd.__version__}
    for name in [*names[peer], "torch"]:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


# --------------------------------------------------------------------------- main


def run(peer_name: PeerName, job: Job, out_dir: Path) -> int:
    """Fit ``peer_name``, answer every query, write the outputs; return an exit status."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"peer": peer_name, "versions": {}, "queries": []}

    def dump() -> None:
        (out_dir / "result.json").write_text(json.dumps(result, indent=2))

    try:
        import torch

        torch.set_num_threads(1)
        result["versions"] = versions(peer_name)
        train = read_frame(job.train_csv, job.nodes)
        t0 = time.perf_counter()
        peer = FACTORIES[peer_name](job.graph, train, job.seed)
        result["fit_s"] = time.perf_counter() - t0
    except Exception as err:  # a peer failure is a result to report, not a crash
        result["error"] = f"fit failed: {type(err).__name__}: {err}"
        result["traceback"] = traceback.format_exc()
        dump()
        print(result["error"], file=sys.stderr)
        return 1

    for q in job.queries:
        entry: dict[str, Any] = {"name": q.name, "kind": q.kind}
        try:
            if q.factual_csv is None:
                t0 = time.perf_counter()
                samples = peer.interventional(q.do, q.n, q.seed)
            else:
                factual = read_frame(q.factual_csv, job.nodes)
                t0 = time.perf_counter()
                samples = peer.counterfactual(factual, q.do)
            entry["time_s"] = time.perf_counter() - t0
            entry["rows"] = len(samples)
            entry["file"] = f"{q.name}.csv"
            samples[job.nodes].to_csv(out_dir / entry["file"], index=False)
        except Exception as err:
            entry["error"] = f"{type(err).__name__}: {err}"
            entry["traceback"] = traceback.format_exc()
            print(f"query {q.name} failed: {entry['error']}", file=sys.stderr)
        result["queries"].append(entry)
    dump()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer", required=True, choices=PEERS, help="which peer to fit")
    parser.add_argument("--job", required=True, type=Path, help="job JSON (see module doc)")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    args = parser.parse_args(argv)
    try:
        job = load_job(args.job)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    return run(args.peer, job, args.out)


if __name__ == "__main__":
    sys.exit(main())
