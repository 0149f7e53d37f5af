"""Training throughput: CauF-VAE images/s and SCM-fit rows/s at 1 and N processes (torchrun + DDP).

Each CauF-VAE configuration trains the same global batch for the same steps through
``cauflow train caufvae`` (``--nproc N`` launches torchrun; gloo on CPU, NCCL on CUDA) and
reads the images/s the run recorded (all ranks, wall time of the training steps). Every
process runs one torch thread. On a machine with a CUDA device, a ``--device cuda`` row is
added; otherwise the table says the GPU was not measured.

SCM fitting (flow mechanisms, random 10-node DAG, global batch 1024) is measured three ways:
``SCM.fit`` (Pyro SVI) and ``models.scm_fit.fit_scm`` (the shared loop) in this process, whole
call, no held-out split; and ``cauflow fit --nproc N`` (the shared loop under torchrun, which
re-launches itself for N > 1), reading the rows/s of the training steps the run recorded.

    python bench/throughput.py                      # 1 and 2 CPU processes, 32px
    python bench/throughput.py --nprocs 1 2 4 --image-size 64 --steps 40
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402


def train_images_per_s(nproc: int, device: str, args: argparse.Namespace, scratch: Path) -> float:
    out = scratch / f"run-{device}-{nproc}"
    cmd = [sys.executable, "-m", "cli", "train", "caufvae", "--out", str(out),
           "--image-size", str(args.image_size), "--n-train", str(args.n_train),
           "--batch-size", str(args.batch_size), "--epochs", "100",
           "--max-steps", str(args.steps), "--device", device, "--nproc", str(nproc)]
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=not args.verbose,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    history = json.loads((out / "run.json").read_text())["history"]
    # The first epoch pays for process start-up and warm-up: drop it when there are more.
    timed = history[1:] if len(history) > 1 else history
    seconds = sum(h["seconds"] for h in timed)
    return sum(h["images_per_s"] * h["seconds"] for h in timed) / seconds


def scm_rows_per_s(rows: int, epochs: int, *, loop: bool = False) -> float:
    """Rows/s of one in-process SCM fit (flow mechanisms, random 10-node DAG, batch 1024, no
    held-out split, so every epoch passes over all rows once), whole call: ``SCM.fit`` or,
    with ``loop``, :func:`models.scm_fit.fit_scm` on the shared training loop."""
    from models.scm_fit import fit_scm
    from scm import SCM, zoo

    torch.set_num_threads(1)
    truth = zoo.random_dag(10, seed=0)
    df = truth.sample(rows, seed=0)
    model = SCM(truth.graph, "flow", seed=0)
    options = {"epochs": epochs, "batch_size": 1024, "seed": 0, "val_fraction": 0.0,
               "progress": False}
    start = time.perf_counter()
    if loop:
        fit_scm(model, df, **options)
    else:
        model.fit(df, **options)
    seconds = time.perf_counter() - start
    return len(model.history) * rows / seconds


def scm_loop_rows_per_s(nproc: int, device: str, args: argparse.Namespace,
                        scratch: Path) -> float:
    """Rows/s of the training steps of ``cauflow fit --nproc N --device D`` on the same table
    (all ranks; the first epoch, which pays for start-up, left out)."""
    from scm import zoo

    table, graph = scratch / "scm.csv", scratch / "scm-graph.json"
    if not table.exists():
        truth = zoo.random_dag(10, seed=0)
        truth.sample(args.scm_rows, seed=0).to_csv(table, index=False)
        graph.write_text(json.dumps(truth.graph))
    out = scratch / f"scm-{device}-{nproc}"
    cmd = [sys.executable, "-m", "cli", "fit", str(table), "--graph", str(graph), "--out",
           str(out), "--epochs", str(args.scm_epochs), "--device", device, "--nproc", str(nproc)]
    if device == "cpu" and nproc == 1:
        cmd.append("--resume")  # the loop path for one CPU process (a fresh run here)
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=not args.verbose,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    history = json.loads((out / "run.json").read_text())["history"]
    timed = history[1:] if len(history) > 1 else history
    return sum(h["rows_per_s"] * h["seconds"] for h in timed) / sum(h["seconds"] for h in timed)


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nprocs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--n-train", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=64, help="global batch")
    p.add_argument("--steps", type=int, default=48, help="optimiser steps per configuration")
    p.add_argument("--scm-rows", type=int, default=5000)
    p.add_argument("--scm-epochs", type=int, default=20)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)

    rows: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for nproc in args.nprocs:
            rows[f"caufvae train, cpu x{nproc} (images/s)"] = train_images_per_s(
                nproc, "cpu", args, Path(tmp))
        if torch.cuda.is_available():
            name = torch.cuda.get_device_name()
            rows[f"caufvae train, cuda x1 {name} (images/s)"] = train_images_per_s(
                1, "cuda", args, Path(tmp))
        scm_base = "scm fit, SCM.fit (Pyro SVI), cpu x1 (rows/s)"
        rows[scm_base] = scm_rows_per_s(args.scm_rows, args.scm_epochs)
        rows["scm fit, loop in-process, cpu x1 (rows/s)"] = scm_rows_per_s(
            args.scm_rows, args.scm_epochs, loop=True)
        for nproc in args.nprocs:
            rows[f"scm fit, loop via cli, cpu x{nproc} (rows/s, steps)"] = scm_loop_rows_per_s(
                nproc, "cpu", args, Path(tmp))
        if torch.cuda.is_available():
            rows["scm fit, loop via cli, cuda x1 (rows/s, steps)"] = scm_loop_rows_per_s(
                1, "cuda", args, Path(tmp))

    base = rows[f"caufvae train, cpu x{args.nprocs[0]} (images/s)"]
    print(f"CauF-VAE {args.image_size}px, global batch {args.batch_size}, {args.steps} steps; "
          f"SCM random10 flow, {args.scm_rows} rows, {args.scm_epochs} epochs, batch 1024; "
          f"one torch thread per process; {os.cpu_count()} CPU cores")
    for name, value in rows.items():
        ref, ref_name = ((base, f"cpu x{args.nprocs[0]}") if name.startswith("caufvae")
                         else (rows[scm_base], "SCM.fit"))
        print(f"{name:60s} {value:10.0f}  ({value / ref:.2f}x {ref_name})")
    if not torch.cuda.is_available():
        print("GPU: not measured (no CUDA device on this machine)")
    return rows


if __name__ == "__main__":
    main()
