"""Action retrieval on held-out pairs: CT-VAE vs a plain VAE's nearest latent difference.

For each data set (shapes, pendulum, flow) and variant (balanced, imbalanced factor values):
train a CT-VAE (models/ctvae) on ``--n-pairs`` train pairs, and a plain VAE on the same pairs'
images for the same number of epochs (``--vq-epochs + --epochs`` passes over the 2 x n_pairs
images); score both on ``--n-test`` held-out pairs (starting from test-split scenes). Prints one
table: accuracy and undirected accuracy (+/- merged) of both, chance, training images/s of
both (one thread; a pair counts as two images), and for pendulum/flow the interventional
structure read-out of the CT-VAE (:mod:`models.ctvae.readback`: each action applied to held-out
scenes, factors read back from the decoded images by a regressor trained on real renders): SHD
of its factor graph to the true graph at relative thresholds 0.1 / 0.25 / 0.5
(:mod:`models.ctvae.graphscore`), the threshold-free AUROC of its edge scores against the true
edges with the exact chance that random scores rank as well, and references: the same
measurement on real pairs, the slot-based read-out (:mod:`models.ctvae.effects`; in brackets on
the data's own codes) and the learned adjacency aggregated to factors.

    python bench/ctvae.py --quick                      # smoke run (~3 min)
    python bench/ctvae.py                              # the table (~20 min on one thread)
    python bench/ctvae.py --structure-only             # re-score the saved runs' structure
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
from models.ctvae.effects import (  # noqa: E402
    action_factors,
    factor_effects,
    model_probs,
    observed_shifts,
    slot_shifts,
)
from models.ctvae.graphscore import (  # noqa: E402
    edge_auroc,
    edge_scores,
    effect_graph,
    random_auroc_pvalue,
    true_edges,
)
from models.ctvae.readback import (  # noqa: E402
    action_effects,
    factor_shifts,
    grid_reader,
    observed_factor_shifts,
)
from models.ctvae.structure import adjacency_effects, assign_slots, compare_graphs  # noqa: E402

THRESHOLDS = (0.1, 0.25, 0.5)


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
        row.update(structure(result.model, grid, images, args.seed))
    print(json.dumps(row), flush=True)
    return row


def structure(model, grid, images: np.ndarray, seed: int) -> dict:  # noqa: ANN001
    """The structure read-outs of a trained CT-VAE (module docstring): the reader-based one
    (graph at each threshold, AUROC and its random p-value), and the AUROCs of the same
    measurement on real pairs, of the slot-based read-out and of the learned adjacency."""
    model.eval()
    scenes, names = grid.scenes(), list(grid.factor_names)
    rng = np.random.default_rng(seed)
    test = np.flatnonzero(grid.test_mask())
    test = rng.choice(test, min(1000, len(test)), replace=False)
    codes = model.vq.codes(as_image_batch(images[test]))
    afac, n_actions = action_factors(model, grid), len(model.actions) - 1
    reader = grid_reader(grid, images, seed=seed)
    effects = action_effects(factor_shifts(model, reader, codes), afac, len(names))
    real = action_effects(observed_factor_shifts(reader, grid, images, test, n_actions), afac,
                          len(names))
    pick = rng.choice(len(scenes), 2000, replace=False)
    assignment = assign_slots(model.vq.codes(as_image_batch(images[pick])).numpy(),
                              grid.factors(scenes[pick]))
    slots = factor_effects(slot_shifts(model_probs(model), codes, n_actions), assignment, afac,
                           len(names))
    slots_real = factor_effects(observed_shifts(model, grid, images, test), assignment, afac,
                                len(names))
    adjacency = adjacency_effects(model, assignment, afac, len(names))
    truth = true_edges(grid.graph)
    scores = edge_scores(effects, names)
    auroc = edge_auroc(scores, truth)
    n_pos = sum(e in truth for e in scores)
    out = {
        "effects": np.round(effects, 4).tolist(), "effects_real": np.round(real, 4).tolist(),
        "auroc": auroc, "auroc_p_random": random_auroc_pvalue(n_pos, len(scores) - n_pos, auroc),
        "auroc_ancestral": edge_auroc(scores, true_edges(grid.graph, ancestral=True)),
        "auroc_raw": edge_auroc(edge_scores(effects, names, relative=False), truth),
        "auroc_real": edge_auroc(edge_scores(real, names), truth),
        "slots_per_factor": {f: int((assignment == k).sum()) for k, f in enumerate(names)},
        "auroc_slots": edge_auroc(edge_scores(slots, names), truth),
        "auroc_slots_real": edge_auroc(edge_scores(slots_real, names), truth),
        "auroc_adjacency": edge_auroc(edge_scores(adjacency, names, relative=False), truth),
        "true_edges": len(truth), "candidates": len(scores),
    }
    for t in THRESHOLDS:
        found = effect_graph(effects, names, rel_threshold=t)
        out[f"shd@{t}"] = compare_graphs(found, grid.graph)["shd"]
        out[f"edges@{t}"] = sorted(f"{u}->{v}" for u, v in found.edges)
    return out


def table(rows: list[dict]) -> str:
    """Markdown table of the rows."""
    head = ("| data | variant | CT-VAE acc | CT-VAE undir | VAE-diff acc | VAE-diff undir | "
            "chance (undir) | CT-VAE img/s | VAE img/s | ratio | perplexity | "
            "SHD @0.1/0.25/0.5 (empty) | edge AUROC rel / raw (p random) | AUROC real pairs | "
            "AUROC slots (real) | AUROC adjacency |")
    lines = [head, "|" + "---|" * 16]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['variant']} | {r['ctvae_acc']:.3f} | {r['ctvae_undir']:.3f} "
            f"| {r['vae_acc']:.3f} | {r['vae_undir']:.3f} | {r['chance']:.3f} "
            f"({r['chance_undir']:.3f}) | {r['ctvae_img_s']:.0f} | {r['vae_img_s']:.0f} | "
            f"{r['ctvae_img_s'] / r['vae_img_s']:.2f} | {r['perplexity']:.1f} | "
            + (f"{'/'.join(str(r[f'shd@{t}']) for t in THRESHOLDS)} ({r['true_edges']}) | "
               f"{r['auroc']:.2f} / {r['auroc_raw']:.2f} ({r['auroc_p_random']:.3f}) | "
               f"{r['auroc_real']:.2f} | "
               f"{r['auroc_slots']:.2f} ({r['auroc_slots_real']:.2f}) | "
               f"{r['auroc_adjacency']:.2f} |" if "auroc" in r else "- | - | - | - | - |")
        )
    return "\n".join(lines)


def rescore(args: argparse.Namespace) -> list[dict]:
    """Recompute the structure columns of the rows in ``--out/results.json`` from the saved
    CT-VAE runs beside it (retrieval and timing columns kept)."""
    from models.ctvae import load_run

    torch.set_num_threads(1)
    rows = json.loads((args.out / "results.json").read_text())
    for row in rows:
        if row["dataset"] == "shapes":
            continue
        tag = f"{row['dataset']}-{'imb' if row['variant'] == 'imbalanced' else 'bal'}"
        model, _ = load_run(args.out / tag)
        grid = factor_grid(row["dataset"])
        row.update(structure(model, grid, grid.images(size=args.image_size), args.seed))
        print(json.dumps(row), flush=True)
    print(table(rows))
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))
    return rows


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
    p.add_argument("--structure-only", action="store_true",
                   help="re-score the saved runs and results.json in --out (no training)")
    args = p.parse_args(argv)
    if args.structure_only:
        return rescore(args)
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
