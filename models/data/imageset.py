"""Rendered image sets with their ground-truth factors and graph, cached on disk.

:func:`load_dataset` enumerates a set's scenes, picks the split (and an optional evenly spaced
subset), and returns the images from the cache (see :mod:`models.data._cache`) or renders them
with a progress bar and caches them. Factors are stored as float32, and the images are rendered
from exactly those float32 factors, so ``draw_pendulum(ds.factors)`` reproduces ``ds.images``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike

from . import _cache
from ._canvas import check_size
from .flow import (
    FLOW_FACTORS,
    FLOW_GRAPH,
    counterfactual_flow,
    draw_flow,
    flow_factors,
    flow_jet_noise,
    flow_scenes,
    flow_test_mask,
)
from .pendulum import (
    PENDULUM_FACTORS,
    PENDULUM_GRAPH,
    counterfactual_pendulum,
    draw_pendulum,
    pendulum_factors,
    pendulum_scenes,
    pendulum_test_mask,
)

logger = logging.getLogger(__name__)

DatasetName = Literal["pendulum", "flow"]
Split = Literal["train", "test", "all"]

CACHE_VERSION = 1
"""Bump when the drawing changes, so old cache files are rebuilt."""


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Images of one split of a data set with their ground-truth factors.

    Attributes:
        images: RGB, uint8, shape ``(N, H, W, 3)``.
        factors: float32 ``(N, k)``, columns in ``factor_names`` order (raw units: radians,
            canvas units).
        factor_names: the ``k`` factor names.
        graph: the true causal graph, child -> parents, for every factor.
        split: ``"train"``, ``"test"`` or ``"all"``.
        name: ``"pendulum"`` or ``"flow"``.
        index: int64 ``(N,)``, each image's scene number in the full enumeration.
        noise: float32 ``(N,)`` exogenous image noise (the flow jet's eps), None for pendulum.
        built_in: rendered by :func:`load_dataset` (so a run on it can reload it by ``name``);
            ``False`` for images a user supplies (:mod:`models.data.run_data`).
    """

    images: np.ndarray
    factors: np.ndarray
    factor_names: tuple[str, ...]
    graph: dict[str, tuple[str, ...]]
    split: Split
    name: DatasetName
    index: np.ndarray
    noise: np.ndarray | None = None
    built_in: bool = False

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[3] != 3:
            raise ValueError(
                f"images must be uint8 (N, H, W, 3); got {self.images.dtype} {self.images.shape}"
            )
        if self.factors.shape != (n, len(self.factor_names)):
            raise ValueError(
                f"factors must have shape ({n}, {len(self.factor_names)}); "
                f"got {self.factors.shape}"
            )
        if not np.isfinite(self.factors).all():
            bad = sorted({self.factor_names[j] for j in np.nonzero(~np.isfinite(self.factors))[1]})
            raise ValueError(f"factors {bad} hold NaN or infinite values")
        if self.images.shape[1] != self.images.shape[2]:
            raise ValueError(f"images must be square; got {self.images.shape[1:3]}")
        if self.index.shape != (n,) or (self.noise is not None and self.noise.shape != (n,)):
            raise ValueError(f"index and noise must have shape ({n},)")
        if set(self.graph) != set(self.factor_names):
            raise ValueError(f"graph must list every factor {self.factor_names} as a child")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def adjacency(self) -> np.ndarray:
        """``(k, k)`` 0/1 int matrix, ``A[i, j] = 1`` iff factor i is a parent of factor j."""
        column = {name: i for i, name in enumerate(self.factor_names)}
        matrix = np.zeros((len(column), len(column)), dtype=np.int64)
        for child, parents in self.graph.items():
            for parent in parents:
                matrix[column[parent], column[child]] = 1
        return matrix

    def counterfactual(
        self,
        interventions: Mapping[str, ArrayLike],
        *,
        rows: ArrayLike | None = None,
        size: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ground-truth counterfactual renders of this set's images ``rows`` (default: all)
        under ``do(interventions)``, with each scene's own noise held fixed.

        Equivalent to ``counterfactual_pendulum(factors[rows], interventions, size=size)``, or
        ``counterfactual_flow`` with ``jet_noise=noise[rows]``.

        Returns:
            ``(images, factors)``: uint8 ``(n, size, size, 3)`` and float64 ``(n, k)``; ``size``
            defaults to this set's image size.
        """
        picked = np.arange(len(self)) if rows is None else np.asarray(rows)
        side = self.images.shape[1] if size is None else size
        factors = self.factors[picked]
        if self.name == "pendulum":
            return counterfactual_pendulum(factors, interventions, size=side)
        noise = None if self.noise is None else self.noise[picked]
        return counterfactual_flow(factors, interventions, jet_noise=noise, size=side)


@dataclass(frozen=True)
class _Recipe:
    """How to enumerate, split and draw one data set."""

    factor_names: tuple[str, ...]
    graph: dict[str, tuple[str, ...]]
    scenes: Callable[[], tuple[np.ndarray, np.ndarray | None]]  # factors (S, k), noise (S,)
    test_mask: Callable[[int], np.ndarray]
    draw: Callable[[np.ndarray, np.ndarray | None, int, bool], np.ndarray]


def _pendulum_scenes() -> tuple[np.ndarray, None]:
    roots = pendulum_scenes()
    return pendulum_factors(roots[:, 0], roots[:, 1]).astype(np.float32), None


def _flow_scenes() -> tuple[np.ndarray, np.ndarray]:
    roots = flow_scenes()
    factors = flow_factors(roots[:, 0], roots[:, 1], roots[:, 2]).astype(np.float32)
    return factors, flow_jet_noise(len(roots)).astype(np.float32)


_RECIPES: dict[str, _Recipe] = {
    "pendulum": _Recipe(
        PENDULUM_FACTORS,
        PENDULUM_GRAPH,
        _pendulum_scenes,
        pendulum_test_mask,
        lambda f, _noise, size, progress: draw_pendulum(f, size=size, progress=progress),
    ),
    "flow": _Recipe(
        FLOW_FACTORS,
        FLOW_GRAPH,
        _flow_scenes,
        flow_test_mask,
        lambda f, noise, size, progress: draw_flow(
            f, jet_noise=noise, size=size, progress=progress
        ),
    ),
}


def _select(mask: np.ndarray, split: Split, n: int | None) -> np.ndarray:
    """Scene numbers of ``split`` (``mask`` marks test scenes), thinned to ``n`` evenly spaced."""
    index = {"train": np.flatnonzero(~mask), "test": np.flatnonzero(mask)}.get(
        split, np.arange(len(mask))
    )
    if n is None:
        return index
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"n must be an int or None; got {type(n).__name__}")
    if not 1 <= n <= len(index):
        raise ValueError(f"n must be between 1 and {len(index)} (the {split} split); got {n}")
    return index[np.floor(np.linspace(0, len(index) - 1, n) + 0.5).astype(np.int64)]


def load_dataset(
    name: DatasetName,
    *,
    size: int = 64,
    split: Split = "train",
    n: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> ImageSet:
    """Load (rendering and caching on first use) one split of the Pendulum or Flow image set.

    Splits: pendulum puts every 4th scene in enumeration order in test (1,827 of 7,308); flow a
    seeded 1 in 5 (1,620 of 8,100). ``n`` keeps ``n`` scenes evenly spaced over the split (for
    quick tests). Rendered images are cached in ``cache_dir`` (else ``$CAUFLOW_CACHE``, else
    ``~/.cache/cauflow``) as ``{name}-{size}px-{split}[-n{n}]-v{CACHE_VERSION}.npz`` and rebuilt
    when missing, unreadable or not matching.

    Args:
        name: ``"pendulum"`` or ``"flow"``.
        size: image side in pixels (96 is the original resolution; 64 and 32 for speed).
        split: ``"train"``, ``"test"`` or ``"all"``.
        n: keep only this many scenes of the split, or None for all.
        cache_dir: cache directory override.
        progress: show a tqdm progress bar while rendering.

    Returns:
        An :class:`ImageSet`, images ``(N, size, size, 3)`` uint8, factors ``(N, 4)`` float32.

    Example:
        >>> ds = load_dataset("pendulum", size=32, split="test", n=4, progress=False)
        >>> ds.images.shape, ds.factor_names
        ((4, 32, 32, 3), ('pendulum', 'light', 'shadow_len', 'shadow_pos'))
    """
    if name not in _RECIPES:
        raise ValueError(f"name must be one of {tuple(_RECIPES)}; got {name!r}")
    if split not in get_args(Split):
        raise ValueError(f"split must be one of {get_args(Split)}; got {split!r}")
    check_size(size)
    recipe = _RECIPES[name]
    all_factors, all_noise = recipe.scenes()
    index = _select(recipe.test_mask(len(all_factors)), split, n)
    factors = all_factors[index]
    noise = None if all_noise is None else all_noise[index]

    subset = "" if n is None else f"-n{n}"
    path = _cache.cache_root(cache_dir) / f"{name}-{size}px-{split}{subset}-v{CACHE_VERSION}.npz"
    stored = _cache.load_arrays(path)
    expected = {"index": index, "factors": factors, "version": np.array(CACHE_VERSION)}
    if noise is not None:
        expected["noise"] = noise
    if stored is not None and _matches(stored, expected, (len(index), size, size, 3)):
        images = stored["images"]
    else:
        if stored is not None:
            logger.warning("cache file %s does not match the requested set; rebuilding it", path)
        start = time.perf_counter()
        images = recipe.draw(factors, noise, size, progress)
        seconds = time.perf_counter() - start
        logger.info(
            "rendered %d %s images at %dpx in %.1f s (%.0f images/s)",
            len(images), name, size, seconds, len(images) / max(seconds, 1e-9),
        )
        _cache.save_arrays(path, {"images": images, **expected})
    return ImageSet(
        images=images,
        factors=factors,
        factor_names=recipe.factor_names,
        graph=dict(recipe.graph),
        split=split,
        name=name,
        index=index.astype(np.int64),
        noise=noise,
        built_in=True,
    )


def _matches(
    stored: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray],
    image_shape: tuple[int, ...],
) -> bool:
    """Whether a loaded cache file holds the images of exactly the expected scenes."""
    images = stored.get("images")
    if images is None or images.dtype != np.uint8 or images.shape != image_shape:
        return False
    return set(stored) == {"images", *expected} and all(
        np.array_equal(stored[key], value) for key, value in expected.items()
    )
