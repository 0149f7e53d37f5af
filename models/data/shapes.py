"""A procedural shapes image set (in the spirit of dSprites / 3D Shapes), rendered in numpy.

Six factors on small grids; every combination is one scene (3 x 4 x 4 x 5 x 5 x 4 = 4,800):

=========== ===================================================================================
shape       0 square, 1 ellipse (axes 1 : 0.55), 2 equilateral triangle
scale       half-size of the shape as a fraction of the image side: 0.08, 0.11, 0.14, 0.17
orientation rotation in degrees: 0, 20, 40, 60 (all distinct for the three shapes)
x           centre column as a fraction of the side: 0.25 .. 0.75 in 5 steps
y           centre row (from the top) as a fraction of the side: 0.25 .. 0.75 in 5 steps
colour      0 red, 1 green, 2 blue, 3 yellow (on a black background)
=========== ===================================================================================

The factors are independent (no causal edges). A pixel's value is the shape's colour times its
coverage, measured on a 4 x 4 supersampling grid, so small moves change the image smoothly.
Same scenes, same pixels; nothing is random at render time.

The *imbalanced* variant (:func:`imbalanced_probs`) draws scenes with factor values weighted
geometrically, the most common value of every factor ``ratio`` times as likely as the rarest,
to test the robustness to imbalance claimed by Gendron et al. (IJCAI 2023, Sec. 5).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from . import _cache
from ._canvas import check_size

SHAPES_FACTORS: tuple[str, ...] = ("shape", "scale", "orientation", "x", "y", "colour")
"""Factor names, in the column order of every shapes factor array."""

SHAPES_VALUES: dict[str, tuple[float, ...]] = {
    "shape": (0.0, 1.0, 2.0),
    "scale": (0.08, 0.11, 0.14, 0.17),
    "orientation": (0.0, 20.0, 40.0, 60.0),
    "x": tuple(np.linspace(0.25, 0.75, 5).round(4)),
    "y": tuple(np.linspace(0.25, 0.75, 5).round(4)),
    "colour": (0.0, 1.0, 2.0, 3.0),
}
"""The grid of each factor's values (raw units: index, fraction of side, degrees, index)."""

SHAPES_GRAPH: dict[str, tuple[str, ...]] = {name: () for name in SHAPES_FACTORS}
"""The true causal graph (child -> parents): independent factors."""

SHAPES_SPLIT_SEED = 20_230_201
"""Seed of the 1-in-5 test split over scenes (:func:`shapes_test_mask`)."""

_COLOURS = np.array([[230, 40, 40], [40, 200, 60], [50, 90, 235], [235, 215, 40]], np.float64)
_SUPERSAMPLE = 4
_CHUNK = 256
CACHE_VERSION = 1


def shapes_sizes() -> tuple[int, ...]:
    """Number of grid values of each factor, in :data:`SHAPES_FACTORS` order."""
    return tuple(len(SHAPES_VALUES[name]) for name in SHAPES_FACTORS)


def shapes_scenes() -> np.ndarray:
    """Grid indices of all scenes, int64 ``(4800, 6)``, first factor outermost."""
    grids = np.meshgrid(*(np.arange(k) for k in shapes_sizes()), indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)


def shapes_factors(index: ArrayLike) -> np.ndarray:
    """Raw factor values of grid indices ``(n, 6)``: float64 ``(n, 6)``."""
    idx = _as_index(index)
    return np.stack(
        [np.asarray(SHAPES_VALUES[name])[idx[:, k]] for k, name in enumerate(SHAPES_FACTORS)],
        axis=1,
    )


def shapes_test_mask(n_scenes: int = 4800, *, seed: int = SHAPES_SPLIT_SEED) -> np.ndarray:
    """Seeded 1-in-5 test split over scene numbers: bool ``(n_scenes,)``."""
    mask = np.zeros(n_scenes, dtype=bool)
    mask[np.random.default_rng(seed).permutation(n_scenes)[: n_scenes // 5]] = True
    return mask


def scene_number(index: ArrayLike, sizes: Sequence[int]) -> np.ndarray:
    """Row-major scene numbers of grid indices ``(n, k)`` on a grid of ``sizes``: ``(n,)``."""
    return np.ravel_multi_index(tuple(np.asarray(index, dtype=np.int64).T), tuple(sizes))


def imbalanced_probs(sizes: Sequence[int], *, ratio: float = 10.0) -> np.ndarray:
    """Scene probabilities on a grid with geometrically imbalanced, independent factor values.

    Value ``v`` of a factor with ``m`` values has weight ``ratio ** (-v / (m - 1))``, so the
    first value is ``ratio`` times as likely as the last; a scene's probability is the product
    over factors. Returns float64 ``(prod(sizes),)`` in row-major scene order, summing to 1.

    Example:
        >>> imbalanced_probs([2], ratio=3.0)
        array([0.75, 0.25])
    """
    if not ratio >= 1.0:
        raise ValueError(f"ratio must be >= 1 (1 is balanced); got {ratio!r}")
    probs = np.ones(1)
    for m in sizes:
        w = ratio ** (-np.arange(m) / max(m - 1, 1))
        probs = np.outer(probs, w / w.sum()).ravel()
    return probs


def render_shapes(index: ArrayLike, *, size: int = 64) -> np.ndarray:
    """Render scenes given by grid indices.

    Args:
        index: int ``(n, 6)`` (or ``(6,)``) grid indices in :data:`SHAPES_FACTORS` order.
        size: image side in pixels (16..1024).

    Returns:
        RGB images, uint8 ``(n, size, size, 3)``.

    Example:
        >>> render_shapes([0, 3, 0, 2, 2, 0], size=32)[0, 16, 16].tolist()
        [230, 40, 40]
    """
    idx = _as_index(index)
    check_size(size)
    f = shapes_factors(idx)
    side = size * _SUPERSAMPLE
    centres = (np.arange(side) + 0.5) / side  # fraction-of-side coordinates of subpixels
    images = np.empty((len(idx), size, size, 3), dtype=np.uint8)
    for start in range(0, len(idx), _CHUNK):
        part = f[start : start + _CHUNK]
        cover = _coverage(part, centres)  # (m, side, side) in {0, 1}
        alpha = cover.reshape(len(part), size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean((2, 4))
        rgb = alpha[..., None] * _COLOURS[part[:, 5].astype(np.int64)][:, None, None, :]
        images[start : start + _CHUNK] = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return images


def _coverage(f: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Inside-the-shape indicator of each subpixel, float64 ``(m, side, side)``."""
    rows = centres[None, :, None]
    cols = centres[None, None, :]
    theta = np.deg2rad(f[:, 2])[:, None, None]
    scale = f[:, 1][:, None, None]
    dx, dy = cols - f[:, 3][:, None, None], -(rows - f[:, 4][:, None, None])  # y up
    u = (np.cos(theta) * dx + np.sin(theta) * dy) / scale  # rotate by -theta
    v = (-np.sin(theta) * dx + np.cos(theta) * dy) / scale
    shape = f[:, 0][:, None, None]
    square = np.maximum(np.abs(u), np.abs(v)) <= 1.0
    ellipse = u**2 + (v / 0.55) ** 2 <= 1.0
    r3 = np.sqrt(3.0)
    triangle = (v >= -0.5) & (r3 * u + v <= 1.0) & (-r3 * u + v <= 1.0)
    return np.where(shape == 0, square, np.where(shape == 1, ellipse, triangle)).astype(float)


def _as_index(index: ArrayLike) -> np.ndarray:
    idx = np.atleast_2d(np.asarray(index))
    if idx.ndim != 2 or idx.shape[1] != len(SHAPES_FACTORS):
        raise ValueError(
            f"index must have shape (n, {len(SHAPES_FACTORS)}) in {SHAPES_FACTORS} order; "
            f"got {idx.shape}"
        )
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"index must hold integer grid indices; got dtype {idx.dtype}")
    sizes = np.asarray(shapes_sizes())
    if (idx < 0).any() or (idx >= sizes).any():
        raise ValueError(f"grid indices must lie in 0..size-1 with sizes {tuple(sizes)}")
    return idx.astype(np.int64)


@dataclass(frozen=True, eq=False)
class ShapesSet:
    """Rendered shapes scenes with their factors (duck-compatible with ``ImageSet`` for
    readers: ``images``, ``factors``, ``factor_names``, ``len``).

    Attributes:
        images: uint8 ``(N, H, W, 3)``.
        factors: float32 ``(N, 6)`` raw factor values.
        factor_names: :data:`SHAPES_FACTORS`.
        grid: int64 ``(N, 6)`` grid indices.
        index: int64 ``(N,)`` scene numbers.
    """

    images: np.ndarray
    factors: np.ndarray
    factor_names: tuple[str, ...]
    grid: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


def load_shapes(
    *,
    size: int = 64,
    split: str = "train",
    n: int | None = None,
    imbalanced: bool = False,
    ratio: float = 10.0,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ShapesSet:
    """Load (rendering and caching on first use) the shapes scenes of one split.

    Balanced: all scenes of the split (``n`` keeps ``n`` evenly spaced). Imbalanced: ``n``
    scenes (default: the split's size) drawn with replacement by :func:`imbalanced_probs`
    with ``ratio``, seeded. Cached as ``shapes-{size}px-...npz`` like the other sets.

    Returns:
        A :class:`ShapesSet`.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be one of ('train', 'test', 'all'); got {split!r}")
    scenes = shapes_scenes()
    mask = shapes_test_mask(len(scenes))
    pool = {"train": np.flatnonzero(~mask), "test": np.flatnonzero(mask)}.get(
        split, np.arange(len(scenes))
    )
    if imbalanced:
        p = imbalanced_probs(shapes_sizes(), ratio=ratio)[pool]
        rng = np.random.default_rng(seed)
        index = np.sort(rng.choice(pool, size=n or len(pool), p=p / p.sum()))
    elif n is not None:
        index = pool[np.floor(np.linspace(0, len(pool) - 1, n) + 0.5).astype(np.int64)]
    else:
        index = pool
    variant = f"imb{ratio:g}-s{seed}" if imbalanced else "bal"
    tag = f"{split}-{variant}-n{len(index)}"
    path = _cache.cache_root(cache_dir) / f"shapes-{size}px-{tag}-v{CACHE_VERSION}.npz"
    stored = _cache.load_arrays(path)
    if stored is not None and np.array_equal(stored.get("index"), index):
        images = stored["images"]
    else:
        images = render_shapes(scenes[index], size=size)
        _cache.save_arrays(path, {"images": images, "index": index})
    return ShapesSet(
        images=images,
        factors=shapes_factors(scenes[index]).astype(np.float32),
        factor_names=SHAPES_FACTORS,
        grid=scenes[index],
        index=index.astype(np.int64),
    )
