"""Action retrieval on held-out pairs: CT-VAE vs a plain VAE's nearest latent difference.

For each data set (shapes, pendulum, flow) and variant (balanced, imbalanced factor values):
train a CT-VAE (models/ctvae) on ``--n-pairs`` train pairs, and a plain VAE on the same pairs'
images for the same number of epochs (``--vq-epochs + --epochs`` passes over the 2 x n_pairs
images); score both on ``--n-test`` held-out pairs (starting from test-split scenes). Prints one
table: accuracy and undirected accuracy (+/- merged) of both, chance, training images/s of
both (one thread; a pair counts as two images), and for pendulum/flow the SHD of the CT-VAE's
factor-aggregated graph to the true graph.

    python bench/ctvae.py --quick                      # smoke run (~3 min)
    python bench/ctvae.py                              # the table (~20 min on one thread)
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

from guides.encoder import as_image_batch  # noqa: E402
from models.ctvae import factor_grid, retrieval_accuracy, retrieve, run_pairs, train_ctvae  # noqa: E402
from models.ctvae.baseline import latent_difference_retrieval, train_vae  # noqa: E402
from models.ctvae.structure import assign_slots, compare_graphs, factor_graph  # noqa: E402


def one(dataset: str, imbalanced: bool, args: argparse.Namespace) -> dict:
    """Train and score both models on one data set and variant; returns the table row."""
    grid = factor_grid(dataset)
    images = grid.images(size=args.image_size)
    tag = f"{dataset}-{'imb' if imbalanced else 'bal'}"
    out = args.out / tag
    if (out / "run.json").exists():
        import shutil

        shutil.rmtree(out)
    start = time.perf_counter()
    result = train_ctvae(
        out, dataset=dataset, imbalanced=imbalanced, image_size=args.image_size,
        n_pairs=args.n_pairs, vq_epochs=args.vq_epochs, epochs=args.epochs,
        batch_size=args.batch_size, seed=args.seed, progress=False, images=images,
    )
    ct_seconds = sum(h["seconds"] for h in result.history)
    ct_images = sum(h["images_per_s"] * h["seconds"] for h in result.history)
    cfg = json.loads((out / "run.json").read_text())["train"]
    train, test = run_pairs(cfg, "train"), run_pairs(cfg, "test", args.n_test)
    best, _ = retrieve(result.model, as_image_batch(images[test.x]), as_image_batch(images[test.y]))
    ct = retrieval_accuracy(best, test.action)
    n_actions = len(result.model.actions) - 1
    vae, vae_rate = train_vae(images, train, epochs=args.vq_epochs + args.epochs,
                              batch_size=args.batch_size, seed=args.seed)
    base = retrieval_accuracy(
        latent_difference_retrieval(vae, images, train, test, n_actions), test.action
    )
    row = {
        "dataset": dataset, "variant": "imbalanced" if imbalanced else "balanced",
        "ctvae_acc": ct["accuracy"], "ctvae_undir": ct["undirected"],
        "vae_acc": base["accuracy"], "vae_undir": base["undirected"],
        "chance": 1.0 / n_actions, "chance_undir": 2.0 / n_actions,
        "ctvae_img_s": ct_images / max(ct_seconds, 1e-9), "vae_img_s": vae_rate,
        "perplexity": next(h["perplexity"] for h in reversed(result.history) if "perplexity" in h),
        "wall_s": time.perf_counter() - start,
    }
    if dataset != "shapes":
        scenes = grid.scenes()
        pick = np.random.default_rng(0).choice(len(scenes), 2000, replace=False)
        codes = result.model.vq.codes(as_image_batch(images[pick])).numpy()
        assignment = assign_slots(codes, grid.factors(scenes[pick]))
        found = factor_graph(result.model, assignment, grid.factor_names)
        row["shd"] = compare_graphs(found, grid.graph)["shd"]
        row["edges"] = sorted(f"{u}->{v}" for u, v in found.edges)
    print(json.dumps(row), flush=True)
    return row


def table(rows: list[dict]) -> str:
    """Markdown table of the rows."""
    head = ("| data | variant | CT-VAE acc | CT-VAE undir | VAE-diff acc | VAE-diff undir | "
            "chance (undir) | CT-VAE img/s | VAE img/s | ratio | perplexity | SHD |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['variant']} | {r['ctvae_acc']:.3f} | {r['ctvae_undir']:.3f} "
            f"| {r['vae_acc']:.3f} | {r['vae_undir']:.3f} | {r['chance']:.3f} "
            f"({r['chance_undir']:.3f}) | {r['ctvae_img_s']:.0f} | {r['vae_img_s']:.0f} | "
            f"{r['ctvae_img_s'] / r['vae_img_s']:.2f} | {r['perplexity']:.1f} | "
            f"{r.get('shd', '-')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="shapes,pendulum,flow")
    p.add_argument("--variants", default="balanced,imbalanced")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--n-pairs", type=int, default=2500)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--vq-epochs", type=int, default=3)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/bench-ctvae"))
    p.add_argument("--quick", action="store_true", help="1,000 pairs, 1 + 2 epochs")
    args = p.parse_args(argv)
    if args.quick:
        args.n_pairs, args.n_test, args.vq_epochs, args.epochs = 1000, 300, 1, 2
    torch.set_num_threads(1)
    rows = [one(d, v == "imbalanced", args) for d in args.datasets.split(",")
            for v in args.variants.split(",")]
    print(table(rows))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
