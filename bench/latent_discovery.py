"""Latent-DAG recovery on Pendulum: structure search over a trained CauF-VAE's encoded factors
versus over the true factors, scored against the true factor graph.

    OMP_NUM_THREADS=1 python bench/latent_discovery.py --run runs/caufvae   # an existing run
    OMP_NUM_THREADS=1 python bench/latent_discovery.py --epochs 3           # trains one first
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from models.checkpoint import load_model  # noqa: E402
from models.data import load_dataset  # noqa: E402
from models.latents import encode_factors  # noqa: E402
from models.train_vae import train_run  # noqa: E402
from scm.discovery import compare, discover  # noqa: E402

torch.set_num_threads(1)
METHODS = {"pc": {"alpha": 0.01}, "ges": {}, "boss": {}, "direct_lingam": {}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", type=Path, help="run directory of a trained CauF-VAE")
    parser.add_argument("--epochs", type=int, default=3, help="epochs when training a new run")
    args = parser.parse_args()
    run = args.run
    if run is None:
        run = Path(tempfile.mkdtemp(prefix="latent-bench-")) / "run"
        train_run(run, dataset="pendulum", epochs=args.epochs, image_size=64, seed=0)
    vae, record = load_model(run)
    cfg = record["train"]
    test = load_dataset(cfg["dataset"], size=cfg["image_size"], split="test", progress=False)
    truth = {k: list(v) for k, v in test.graph.items()}
    tables = {
        "true factors": pd.DataFrame(test.factors, columns=list(test.factor_names)),
        f"CauF-VAE latents (epoch {record['epoch']})": encode_factors(vae, test.images),
    }
    print(f"Pendulum test split, {len(test)} images; true graph {truth}\n")
    print("| input | method | SHD (DAG) | SHD (CPDAG) | skeleton F1 | arrow F1 | s |")
    print("|---|---|---|---|---|---|---|")
    for label, table in tables.items():
        for method, options in METHODS.items():
            t0 = time.perf_counter()
            found = discover(table, method=method, **options)
            s = compare(found, truth).as_dict()
            print(
                f"| {label} | {method} | {s['shd_dag']} | {s['shd_cpdag']} | "
                f"{s['skeleton_f1']:.2f} | {s['arrow_f1']:.2f} | "
                f"{time.perf_counter() - t0:.2f} |"
            )


if __name__ == "__main__":
    main()
