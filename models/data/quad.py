"""The "quad" concept images of Markham et al. (arXiv 2507.04754), rendered from the quad SCM.

Eight latents (``scm.zoo.QUAD_NODES``) are drawn from :func:`scm.zoo.quad` in a *context*:
observational, or with hard interventions (:func:`scm.zoo.quad_intervention`) on a set of
concepts. Each latent is standardised by its exact observational std (the mean is 0) and
mapped through the normal CDF to ``phi in [0, 1]``; the 64x64 picture is

* four flat quadrants, quad1 bottom-left, quad2 bottom-right, quad3 top-left, quad4 top-right,
  each of hue ``(5/6) phi`` (red -> yellow -> green -> cyan -> blue -> magenta) at full
  saturation and value;
* on top, a shape centred at (32, 32): ``round(3 phi_shape)`` clipped to 0..3 picks a circle
  (diameter ``s``), square (side ``s``), equilateral triangle (circumradius ``s/2``, a vertex
  up before rotation) or ellipse (axes ``s x s/2``, the long one horizontal before rotation),
  with ``s = 48 (0.2 + 0.8 phi_size)``, rotated counter-clockwise by ``2 pi phi_orientation``
  and filled with the hue ``(5/6) phi_color``.

Pixels are exact shape coverage estimated on a ``2x2`` sub-pixel grid per 64-px pixel; smaller
images (32, 16) are area averages of that grid. :func:`load_quad` draws the training contexts,
their test images and held-out pair contexts, seeded, and caches them as ``.npz``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.colors import hsv_to_rgb
from scipy.special import ndtr
from tqdm.auto import tqdm

from scm.zoo import QUAD_NODES, quad, quad_intervention, quad_observational_std

from . import _cache

Context = tuple[str, ...]

QUAD_TRAIN_CONTEXTS: tuple[Context, ...] = (
    (), ("quad1",), ("quad2",), ("quad3",), ("quad4",), ("size",), ("orientation",),
)
"""Observational plus single interventions: the contexts seen in training."""

QUAD_HELDOUT_CONTEXTS: tuple[Context, ...] = (
    ("quad1", "quad2"), ("quad1", "size"), ("quad2", "orientation"),
)
"""Pairs of interventions never seen together: out-of-distribution compositions."""

QUAD_CACHE_VERSION = 1
"""Bump when the drawing changes, so old cache files are rebuilt."""

CANVAS = 64
SUPERSAMPLE = 2
SHAPES = ("circle", "square", "triangle", "ellipse")


def context_name(context: Sequence[str]) -> str:
    """``"obs"`` for the observational context, else the targets joined by ``+``."""
    return "+".join(context) if context else "obs"


def parse_context(text: str) -> Context:
    """``"quad1,size"`` (or ``"quad1+size"``, ``"obs"``, ``""``) -> ``("quad1", "size")``.

    Raises ``ValueError`` naming an unknown concept.
    """
    parts = [p.strip() for p in text.replace("+", ",").split(",") if p.strip()]
    if parts == ["obs"]:
        return ()
    for p in parts:
        if p not in QUAD_NODES:
            raise ValueError(f"context concept must be one of {QUAD_NODES} (or 'obs'); got {p!r}")
    if len(set(parts)) != len(parts):
        raise ValueError(f"context names a concept twice: {text!r}")
    return tuple(sorted(parts, key=QUAD_NODES.index))


def to_unit(latents: np.ndarray, *, independent: bool = False) -> np.ndarray:
    """Raw latents ``(n, 8)`` -> ``Phi(x / std_obs)`` in [0, 1], ``(n, 8)`` float64."""
    latents = np.asarray(latents, dtype=np.float64)
    if latents.ndim != 2 or latents.shape[1] != len(QUAD_NODES):
        raise ValueError(f"latents must have shape (n, {len(QUAD_NODES)}); got {latents.shape}")
    return ndtr(latents / quad_observational_std(independent=independent))


def hue_rgb(phi: np.ndarray) -> np.ndarray:
    """Hue ``(5/6) phi`` at full saturation and value -> RGB in [0, 1], ``phi.shape + (3,)``."""
    phi = np.asarray(phi, dtype=np.float64)
    hsv = np.stack([5.0 / 6.0 * phi, np.ones_like(phi), np.ones_like(phi)], axis=-1)
    return hsv_to_rgb(hsv)


def shape_index(phi_shape: np.ndarray) -> np.ndarray:
    """``round(3 phi)`` clipped to 0..3: 0 circle, 1 square, 2 triangle, 3 ellipse."""
    return np.clip(np.rint(3.0 * np.asarray(phi_shape)), 0, 3).astype(np.int64)


def _shape_mask(phi: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Whether each sample point ``(xs, ys)`` (y up, centre 0) lies in each image's shape.

    ``phi`` is ``(n, 8)``; returns bool ``(n, P)``.
    """
    col = {name: i for i, name in enumerate(QUAD_NODES)}
    s = 48.0 * (0.2 + 0.8 * phi[:, col["size"]])[:, None]
    theta = 2.0 * np.pi * phi[:, col["orientation"]][:, None]
    kind = shape_index(phi[:, col["shape"]])[:, None]
    # local coordinates: rotate the sample points by -theta
    lx = np.cos(theta) * xs + np.sin(theta) * ys
    ly = -np.sin(theta) * xs + np.cos(theta) * ys
    half = s / 2.0
    circle = lx**2 + ly**2 <= half**2
    square = (np.abs(lx) <= half) & (np.abs(ly) <= half)
    # equilateral triangle, circumradius R = s/2, vertex up: inside all three edges, whose
    # outward normals point at -90, 30 and 150 degrees, each at the inradius R/2
    triangle = np.ones_like(circle)
    for angle in (-np.pi / 2, np.pi / 6, 5 * np.pi / 6):
        triangle &= np.cos(angle) * lx + np.sin(angle) * ly <= half / 2.0
    ellipse = (lx / half) ** 2 + (ly / (half / 2.0)) ** 2 <= 1.0
    return np.select([kind == 0, kind == 1, kind == 2], [circle, square, triangle], ellipse)


def draw_quad(
    latents: np.ndarray,
    *,
    size: int = 64,
    independent: bool = False,
    chunk: int = 256,
    progress: bool = False,
) -> np.ndarray:
    """Render raw quad latents ``(n, 8)`` (``QUAD_NODES`` order) as uint8 ``(n, size, size, 3)``.

    ``size`` must divide 128 (the 64-px canvas at 2x2 sub-pixels): 16, 32, 64 or 128.
    """
    fine = CANVAS * SUPERSAMPLE
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or fine % size:
        raise ValueError(f"size must be one of 16, 32, 64, 128 (divides {fine}); got {size!r}")
    phi = to_unit(latents, independent=independent)
    centres = (np.arange(fine) + 0.5) / SUPERSAMPLE  # canvas units, 0..64
    gx, gy = np.meshgrid(centres, centres)  # gy grows downwards (row index)
    xs, ys = (gx - 32.0).reshape(1, -1), (32.0 - gy).reshape(1, -1)
    top, left = (gy < 32.0).reshape(-1), (gx < 32.0).reshape(-1)
    quadrant = np.select([~top & left, ~top & ~left, top & left], [0, 1, 2], 3)  # quad1..4
    col = {name: i for i, name in enumerate(QUAD_NODES)}
    out = np.empty((len(phi), size, size, 3), dtype=np.uint8)
    factor = fine // size
    starts = range(0, len(phi), chunk)
    for start in tqdm(starts, desc="quad", disable=not progress, leave=False):
        p = phi[start : start + chunk]
        quad_rgb = hue_rgb(p[:, :4])  # (m, 4, 3)
        pixels = quad_rgb[:, quadrant]  # (m, P, 3)
        mask = _shape_mask(p, xs, ys)
        shape_rgb = hue_rgb(p[:, col["color"]])[:, None, :]
        pixels = np.where(mask[..., None], shape_rgb, pixels)
        grid = pixels.reshape(len(p), size, factor, size, factor, 3).mean(axis=(2, 4))
        out[start : start + chunk] = np.clip(np.rint(255.0 * grid), 0, 255).astype(np.uint8)
    return out


def sample_latents(
    context: Sequence[str], n: int, *, seed: int, independent: bool = False
) -> np.ndarray:
    """``n`` raw latents ``(n, 8)`` in ``QUAD_NODES`` order from the quad SCM in ``context``."""
    scm = quad(independent=independent).do(quad_intervention(context))
    return scm.sample(n, seed=seed)[list(QUAD_NODES)].to_numpy(dtype=np.float64)


@dataclass(frozen=True, eq=False)
class QuadSet:
    """Context-labelled quad images.

    Attributes:
        images: uint8 ``(N, H, W, 3)``.
        latents: float32 ``(N, 8)`` raw latents, ``QUAD_NODES`` order.
        context: int64 ``(N,)``, each image's index into ``contexts``.
        contexts: the contexts, each a tuple of intervened concepts (``()`` observational).
    """

    images: np.ndarray
    latents: np.ndarray
    context: np.ndarray
    contexts: tuple[Context, ...]

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.latents.shape != (n, len(QUAD_NODES)) or self.context.shape != (n,):
            raise ValueError(f"latents must be ({n}, 8) and context ({n},)")

    def __len__(self) -> int:
        return len(self.images)

    def of(self, context: Sequence[str]) -> np.ndarray:
        """The images of one context, uint8 ``(n_c, H, W, 3)``."""
        key = tuple(context)
        if key not in self.contexts:
            raise ValueError(
                f"context {context_name(key)!r} is not in this set; it has "
                f"{[context_name(c) for c in self.contexts]}"
            )
        return self.images[self.context == self.contexts.index(key)]


@dataclass(frozen=True, eq=False)
class QuadData:
    """Training images, test images of the training contexts, held-out pair contexts."""

    train: QuadSet
    test: QuadSet
    heldout: QuadSet
    independent: bool


def _split(
    contexts: Sequence[Context], n: int, *, seed: int, split: int, independent: bool
) -> tuple[np.ndarray, np.ndarray]:
    latents, labels = [], []
    for i, ctx in enumerate(contexts):
        sub = int(np.random.SeedSequence([seed, split, i]).generate_state(1)[0])
        latents.append(sample_latents(ctx, n, seed=sub, independent=independent))
        labels.append(np.full(n, i, dtype=np.int64))
    return np.concatenate(latents).astype(np.float32), np.concatenate(labels)


def load_quad(
    *,
    independent: bool = False,
    size: int = 32,
    n_train: int = 1000,
    n_test: int = 200,
    seed: int = 0,
    train_contexts: Sequence[Context] = QUAD_TRAIN_CONTEXTS,
    heldout_contexts: Sequence[Context] = QUAD_HELDOUT_CONTEXTS,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> QuadData:
    """Draw (or load from the cache) the quad images of every context, seeded.

    ``n_train`` images per training context, ``n_test`` per training context for testing and
    ``n_test`` per held-out context; each (split, context) has its own seed derived from
    ``seed``. Images are rendered from the float32 latents they are stored with. Cached under
    :func:`models.data.cache_root` as ``quad[-indep]-{size}px-...-v{QUAD_CACHE_VERSION}.npz``.

    Returns:
        A :class:`QuadData`; images ``(N, size, size, 3)`` uint8.
    """
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int; got {value!r}")
    train_contexts = tuple(parse_context(",".join(c)) for c in train_contexts)
    heldout_contexts = tuple(parse_context(",".join(c)) for c in heldout_contexts)
    tag = "-indep" if independent else ""
    names = ";".join(context_name(c) for c in train_contexts) + "|" + ";".join(
        context_name(c) for c in heldout_contexts
    )
    ctx_tag = hashlib.sha256(names.encode()).hexdigest()[:10]
    path = _cache.cache_root(cache_dir) / (
        f"quad{tag}-{size}px-n{n_train}-t{n_test}-s{seed}-c{ctx_tag}-v{QUAD_CACHE_VERSION}.npz"
    )
    plan = {
        "train": (train_contexts, n_train, 0),
        "test": (train_contexts, n_test, 1),
        "heldout": (heldout_contexts, n_test, 2),
    }
    stored = _cache.load_arrays(path)
    arrays: dict[str, np.ndarray] = {}
    sets: dict[str, QuadSet] = {}
    for split, (contexts, n, code) in plan.items():
        latents, labels = _split(contexts, n, seed=seed, split=code, independent=independent)
        key = f"{split}_images"
        good = (
            stored is not None
            and key in stored
            and stored[key].shape == (len(latents), size, size, 3)
            and np.array_equal(stored.get(f"{split}_latents"), latents)
        )
        images = stored[key] if good else draw_quad(
            latents, size=size, independent=independent, progress=progress
        )
        arrays.update({key: images, f"{split}_latents": latents})
        sets[split] = QuadSet(images, latents, labels, contexts)
    if stored is None or any(
        not np.array_equal(stored.get(k), v) for k, v in arrays.items()
    ):
        _cache.save_arrays(path, arrays)
    return QuadData(sets["train"], sets["test"], sets["heldout"], independent)
