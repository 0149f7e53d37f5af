"""What the context module's Concept / Compo scores are made of, and how much the switch adds.

For one seed of quad (dependent unless ``--independent``) prints, per split (the training
contexts' test images = Concept, the held-out pairs = Compo), the mean over contexts of the
sliced Wasserstein distance ``SW_2`` (``models.context.metrics.sliced_wasserstein``) between the
real test images of a context and

* ``floor``: as many real images of the same context drawn with another data seed (the
  metric's sampling floor);
* ``pooled real``: as many real *training* images pooled over contexts (context ignored);

and, for each trained method,

* ``recon``: the model's reconstructions of the second draw (what a perfect concept prior
  could reach with this encoder and decoder);
* ``in context``: images generated in that context (what the bench scores);
* ``in obs``: images generated in the observational context, i.e. with the switch off.

``in obs - in context`` is what switching the module to the context buys.

    python bench/context_switch.py                        # end-to-end, no-labels, base-pooled
    python bench/context_switch.py --steps 1800 --methods end-to-end no-labels
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.context import METHODS, DataConfig, TrainConfig, build_model, fit  # noqa: E402
from models.context.metrics import sliced_wasserstein  # noqa: E402
from models.data.quad import QuadSet  # noqa: E402
from scm.zoo import QUAD_NODES  # noqa: E402


def as_float(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(n, H, W, 3)`` -> float ``(n, 3, H, W)`` in [0, 1]."""
    return torch.as_tensor(images).permute(0, 3, 1, 2).float() / 255.0


def mean_swd(split: QuadSet, images_for: dict[tuple[str, ...], torch.Tensor]) -> float:
    """Mean over ``split``'s contexts of ``SW_2(real images of it, images_for[it])``."""
    return float(np.mean([sliced_wasserstein(as_float(split.of(c)), images_for[c])
                          for c in split.contexts]))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", nargs="+", default=["end-to-end", "no-labels", "base-pooled"],
                   choices=[m for m in METHODS if m not in ("fine-tune", "frozen")])
    p.add_argument("--independent", action="store_true")
    p.add_argument("--n-train", type=int, default=500)
    p.add_argument("--n-test", type=int, default=200)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    draw = {"independent": args.independent, "n_train": args.n_train, "n_test": args.n_test}
    data = DataConfig(seed=args.seed, **draw).load(progress=False)
    again = DataConfig(seed=args.seed + 7919, **draw).load(progress=False)  # fresh images
    gen = np.random.default_rng(args.seed)
    pooled = as_float(data.train.images)
    splits = {"Concept": (data.test, again.test), "Compo": (data.heldout, again.heldout)}
    rows: list[tuple[str, dict[str, float]]] = []
    for label, make in (
        ("floor", lambda s2, c: as_float(s2.of(c))),
        ("pooled real", lambda s2, c: pooled[gen.choice(len(pooled), len(s2.of(c)),
                                                        replace=False)]),
    ):
        rows.append((label, {name: mean_swd(s1, {c: make(s2, c) for c in s1.contexts})
                             for name, (s1, s2) in splits.items()}))
    for method in args.methods:
        config = TrainConfig(method=method, steps=args.steps, seed=args.seed)
        model = build_model(config, list(QUAD_NODES), image_size=data.train.images.shape[1])
        start = time.perf_counter()
        fit(model, data.train, config, progress=False)
        print(f"{method}: {args.steps} steps in {time.perf_counter() - start:.0f} s", flush=True)
        model.eval()
        for what in ("recon", "in context", "in obs"):
            scores = {}
            for name, (s1, s2) in splits.items():
                images = {}
                for i, c in enumerate(s1.contexts):
                    n = len(s1.of(c))
                    images[c] = (model.reconstruct(as_float(s2.of(c))) if what == "recon" else
                                 model.generate(n, c if what == "in context" else (),
                                                seed=1000 * i))
                scores[name] = mean_swd(s1, images)
            rows.append((f"{method} {what}", scores))
    kind = "independent" if args.independent else "dependent"
    print(f"\nquad ({kind}), seed {args.seed}, {args.steps} steps; SW_2, mean over contexts\n")
    print("| images | Concept | Compo |\n|---|---|---|")
    for label, scores in rows:
        print(f"| {label} | {scores['Concept']:.3f} | {scores['Compo']:.3f} |")


if __name__ == "__main__":
    main()
