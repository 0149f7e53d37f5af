"""CauF-VAE vs beta-VAE vs CausalVAE-style linear prior on Pendulum (or Flow), same budget.

Trains the three models with the same encoder, decoder, data, seed and number of optimiser
steps, scores them on the test split (factor recovery; intervention fidelity against the
renderer's ground-truth counterfactuals, factors read back by one shared regressor trained on
real renders) and prints one table plus training images/s on this CPU (one thread).

    python bench/caufvae_pendulum.py --epochs 2                 # quick check
    python bench/caufvae_pendulum.py --epochs 30 --out runs/bench  # the comparison
    python bench/caufvae_pendulum.py --image-size 32 --epochs 6 --prior-conditional  # p(eps|u)
    python bench/caufvae_pendulum.py --image-size 32 --epochs 6 --dataset flow  # Flow instead

Columns: r2 / spearman (posterior mean vs standardised label, mean over factors), mig,
dci_d / dci_c / dci_i (DCI disentanglement, completeness, informativeness with boosted-tree
importances; the "ceiling" line gives MIG and DCI of the true factors themselves, which on
Pendulum's causally related factors is below 1 for MIG), recon_mse (pixels in [0, 1]),
cf_mse / cf_ssim (decoded counterfactual vs ground-truth render), cf_target_mae /
cf_descendant_mae / cf_nondescendant_mae (read-back factors vs true counterfactual factors,
standardised units; lower is better), img/s (training throughput).

``--plain-vae`` adds the row ``vae``: the beta-VAE's fixed N(0, I) prior at beta = 1, the same
KL weight as CauF-VAE and CausalVAE-linear, so that "causal prior vs independent prior" is not
confounded with beta-VAE's beta = 4 (on Pendulum with 3% labels beta = 4 delays the escape from
the mean-image plateau by about three epochs).

A second table is the downstream sample-efficiency experiment (models/downstream.py): test
accuracy of logistic regression for "shadow_len > its training median" on n labelled training
images, on each model's learned factor means and on raw pixels (the baseline), mean of
--downstream-repeats seeded draws per n.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.caufvae import MODEL_NAMES  # noqa: E402
from models.data import load_dataset  # noqa: E402
from models.distributed import Context, pick_device  # noqa: E402
from models.downstream import format_curves, sample_efficiency  # noqa: E402
from models.metrics import dci, evaluate_model, format_table, mig, train_reader  # noqa: E402
from models.train_vae import train_run  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=("pendulum", "flow"), default="pendulum",
                   help="image set (both render their ground-truth counterfactuals)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=None, help="optimiser steps per model")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--n-train", type=int, default=None, help="training images (default all)")
    p.add_argument("--n-test", type=int, default=None, help="test images (default all)")
    p.add_argument("--n-interventions", type=int, default=256)
    p.add_argument("--labelled-fraction", type=float, default=1.0)
    p.add_argument("--reader-steps", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                   help="where the models train (scoring runs on the CPU either way; the img/s "
                        "column is then that device's)")
    p.add_argument("--models", nargs="*", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    p.add_argument("--plain-vae", action="store_true",
                   help="also train row 'vae': the beta-VAE's independent N(0, I) prior at "
                        "beta = 1, the control that separates the prior's shape (CauF-VAE and "
                        "CausalVAE-linear run at beta = 1) from beta-VAE's beta = 4")
    p.add_argument("--out", type=Path, default=None,
                   help="run folder (default runs/bench-caufvae-DATASET)")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--learn-graph", action="store_true",
                   help="also train CauF-VAE learning its factor graph (row caufvae-learned, "
                        "with the learned graph's SHD); --graph-epochs of search")
    p.add_argument("--graph-epochs", type=int, default=None)
    p.add_argument("--prior-conditional", action=argparse.BooleanOptionalAction, default=False,
                   help="label-conditioned noise prior p(eps | u) (iVAE-style) for every model "
                        "alike (not for the caufvae-learned row)")
    p.add_argument("--downstream-sizes", type=int, nargs="+", default=[10, 20, 50, 100, 500],
                   help="labelled training images for the downstream classifier")
    p.add_argument("--downstream-repeats", type=int, default=5)
    p.add_argument("--downstream-target", default=None,
                   help="factor thresholded at its training median (default: shadow_len on "
                        "pendulum, flow on flow)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.out is None:
        args.out = Path(f"runs/bench-caufvae-{args.dataset}")
    if args.downstream_target is None:
        args.downstream_target = {"pendulum": "shadow_len", "flow": "flow"}[args.dataset]

    train = load_dataset(args.dataset, size=args.image_size, split="train", n=args.n_train,
                         progress=args.progress)
    test = load_dataset(args.dataset, size=args.image_size, split="test", n=args.n_test,
                        progress=args.progress)
    print(f"{args.dataset} {args.image_size}px: {len(train)} train, {len(test)} test images; "
          f"budget {args.epochs} epochs"
          + (f", at most {args.max_steps} steps" if args.max_steps else "")
          + f", batch {args.batch_size}, labelled fraction {args.labelled_fraction}, "
          f"prior {'p(eps | u)' if args.prior_conditional else 'N(0, I)'}, "
          f"{args.threads} thread(s), training on {args.device}", flush=True)
    ctx = Context(device=pick_device(args.device))
    start = time.perf_counter()
    reader = train_reader(train, steps=args.reader_steps, seed=args.seed, progress=args.progress)
    read = reader.read(test.images)
    reader_r2 = 1 - ((read - test.factors) ** 2).mean(0) / test.factors.var(0)
    print(f"reader: {args.reader_steps} steps in {time.perf_counter() - start:.0f} s; test R^2 "
          + ", ".join(f"{n} {r:.4f}" for n, r in zip(test.factor_names, reader_r2, strict=True)),
          flush=True)

    ceiling = {"mig": mig(test.factors, test.factors), **dci(test.factors, test.factors)}
    print("ceiling (true factors as codes): " + ", ".join(f"{k} {v:.3f}"
                                                          for k, v in ceiling.items()), flush=True)
    sizes = [n for n in args.downstream_sizes if n <= len(train)]
    rows, full, curves = {}, {}, {}
    same = {"prior_conditional": args.prior_conditional}  # identical options for all three
    variants = [(name, name, dict(same)) for name in args.models]
    if args.plain_vae:
        variants.append(("vae", "betavae", {**same, "beta": 1.0}))
    if args.learn_graph:
        variants.append(("caufvae-learned", "caufvae",
                         {"learn_graph": True, "graph_epochs": args.graph_epochs}))
    if not variants:
        p.error("nothing to train: give --models, --plain-vae or --learn-graph")
    for name, kind, extra in variants:
        out = args.out / name
        resume = (out / "run.json").exists()
        result = train_run(out, model=kind, data=train, epochs=args.epochs,
                           image_size=args.image_size, batch_size=args.batch_size, lr=args.lr,
                           labelled_fraction=args.labelled_fraction, seed=args.seed,
                           max_steps=args.max_steps, resume=resume, progress=args.progress,
                           ctx=ctx, **extra)
        result.model.to("cpu")  # scored on the CPU, wherever it trained
        hist = result.history
        learned = [h for h in hist if "learned_graph" in h]
        if learned:
            print(f"{name}: learned graph {learned[-1]['learned_graph']} (SHD "
                  f"{learned[-1]['shd']} to the true graph)", flush=True)
        seconds = sum(h["seconds"] for h in hist)
        ips = sum(h["images_per_s"] * h["seconds"] for h in hist) / seconds
        metrics = evaluate_model(result.model, test, reader, n_interventions=args.n_interventions,
                                 seed=args.seed)
        rows[name] = {**metrics["summary"], "img/s": ips}
        if learned:
            rows[name]["shd"] = float(learned[-1]["shd"])
        full[name] = {**metrics, "history": hist}
        print(f"{name} metrics: " + json.dumps(rows[name]), flush=True)  # survives a later kill
        print(f"{name}: {hist[-1]['step']} steps, final loss {hist[-1]['loss']:.1f}/image, "
              f"{ips:.0f} training images/s", flush=True)
        if sizes:
            start = time.perf_counter()
            down = sample_efficiency(result.model, train, test, target=args.downstream_target,
                                     sizes=sizes, seed=args.seed,
                                     repeats=args.downstream_repeats,
                                     baseline="pixels" not in curves)
            curves[name] = down["factors"]
            if "pixels" in down:
                curves["pixels"], chance = down["pixels"], down["chance"]
            full[name]["downstream"] = down
            print(f"{name}: downstream curve in {time.perf_counter() - start:.0f} s", flush=True)
    print()
    print(format_table(rows))
    if curves:
        print()
        print(f"downstream: accuracy of '{args.downstream_target} > training median' vs "
              f"labelled images n (majority class: {chance:.3f})")
        print(format_curves({**{k: v for k, v in curves.items() if k != "pixels"},
                             "pixels": curves["pixels"]}))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "table": rows, "full": full,
         "downstream": {"sizes": sizes, "curves": curves}, "ceiling": ceiling,
         "reader_r2": dict(zip(test.factor_names, map(float, reader_r2), strict=True))},
        indent=2, default=lambda o: float(o) if isinstance(o, np.floating) else str(o)))
    return rows


if __name__ == "__main__":
    main()
