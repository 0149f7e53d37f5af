"""Factor grids: the renderable data sets as grids of scenes that an action steps along.

A :class:`FactorGrid` names its axes (what actions move), their sizes, the factor columns it
reports, the true factor graph, a test split over scenes and a renderer from grid indices.

=========  ===========================================  ============================================
data set   axes (sizes)                                 scene
=========  ===========================================  ============================================
shapes     shape 3, scale 4, orientation 4, x 5, y 5,   :func:`models.data.shapes.render_shapes`
           colour 4
pendulum   theta 84, light 87                           theta = i pi/200, phi = j pi/200 of the
                                                        data set's enumeration; factors by the
                                                        true equations (shadows follow)
flow       ball 30, hole 9, water 30                    ball = r/30, hole = h/3, u_water = w/10;
                                                        water and flow follow; jet noise at its
                                                        floor 0.01 so pairs differ only by the
                                                        action and its descendants
=========  ===========================================  ============================================

Pendulum and flow scene numbers match :func:`models.data.pendulum_scenes` and
:func:`models.data.flow_scenes`, so their test splits are the data sets' own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from models.data import (
    FLOW_FACTORS,
    FLOW_GRAPH,
    PENDULUM_FACTORS,
    PENDULUM_GRAPH,
    _cache,
    cache_root,
    flow_factors,
    flow_test_mask,
    pendulum_factors,
    pendulum_scenes,
    pendulum_test_mask,
    render_flow,
    render_pendulum,
)
from models.data.shapes import (
    SHAPES_FACTORS,
    SHAPES_GRAPH,
    render_shapes,
    shapes_factors,
    shapes_sizes,
    shapes_test_mask,
)

GridName = Literal["shapes", "pendulum", "flow"]
GRID_NAMES: tuple[str, ...] = get_args(GridName)
CACHE_VERSION = 1


@dataclass(frozen=True)
class FactorGrid:
    """A data set as a grid of scenes.

    Attributes:
        name: ``"shapes"``, ``"pendulum"`` or ``"flow"``.
        axes: the grid axes (action names are ``f"{axis}+"`` / ``f"{axis}-"``).
        sizes: number of values along each axis.
        axis_factor: the factor column each axis moves (e.g. ``theta -> pendulum``).
        factor_names: factor columns of :meth:`factors`.
        graph: the true factor graph, child -> parents.
    """

    name: str
    axes: tuple[str, ...]
    sizes: tuple[int, ...]
    axis_factor: dict[str, str]
    factor_names: tuple[str, ...]
    graph: dict[str, tuple[str, ...]]
    _factors: Callable[[np.ndarray], np.ndarray]
    _render: Callable[[np.ndarray, int], np.ndarray]
    _test_mask: Callable[[int], np.ndarray]
    _scene_order: tuple[int, ...]  # axes permutation giving the data set's scene numbering

    @property
    def n_scenes(self) -> int:
        """Number of scenes on the grid."""
        return int(np.prod(self.sizes))

    def scenes(self) -> np.ndarray:
        """Grid indices of every scene, int64 ``(n_scenes, k)``, in scene-number order."""
        sizes = tuple(self.sizes[a] for a in self._scene_order)
        grids = np.meshgrid(*(np.arange(m) for m in sizes), indexing="ij")
        ordered = np.stack([g.ravel() for g in grids], axis=1)
        out = np.empty_like(ordered)
        out[:, list(self._scene_order)] = ordered
        return out.astype(np.int64)

    def scene_number(self, index: np.ndarray) -> np.ndarray:
        """Scene numbers ``(n,)`` of grid indices ``(n, k)``."""
        idx = np.asarray(index, dtype=np.int64)
        sizes = tuple(self.sizes[a] for a in self._scene_order)
        return np.ravel_multi_index(tuple(idx[:, list(self._scene_order)].T), sizes)

    def test_mask(self) -> np.ndarray:
        """Bool ``(n_scenes,)``: the data set's test scenes, by scene number."""
        return self._test_mask(self.n_scenes)

    def factors(self, index: np.ndarray) -> np.ndarray:
        """Raw factor values ``(n, len(factor_names))`` of grid indices ``(n, k)``."""
        return self._factors(np.asarray(index, dtype=np.int64))

    def render(self, index: np.ndarray, *, size: int) -> np.ndarray:
        """Render grid indices ``(n, k)``: uint8 ``(n, size, size, 3)``."""
        idx = np.asarray(index, dtype=np.int64)
        if idx.ndim != 2 or idx.shape[1] != len(self.axes):
            raise ValueError(f"index must have shape (n, {len(self.axes)}); got {idx.shape}")
        if (idx < 0).any() or (idx >= np.asarray(self.sizes)).any():
            raise ValueError(f"grid indices must lie in 0..size-1 for sizes {self.sizes}")
        return self._render(idx, size)

    def images(
        self, *, size: int, cache_dir: str | os.PathLike[str] | None = None
    ) -> np.ndarray:
        """All scenes rendered, uint8 ``(n_scenes, size, size, 3)`` in scene-number order,
        cached as ``ctvae-{name}-{size}px-v{CACHE_VERSION}.npz`` under the image cache."""
        path = cache_root(cache_dir) / f"ctvae-{self.name}-{size}px-v{CACHE_VERSION}.npz"
        stored = _cache.load_arrays(path)
        if stored is not None and stored["images"].shape == (self.n_scenes, size, size, 3):
            return stored["images"]
        images = self.render(self.scenes(), size=size)
        _cache.save_arrays(path, {"images": images})
        return images


_PEND_THETA = np.arange(-40, 44) * (np.pi / 200.0)
_PEND_PHI = np.array([j for j in range(60, 148) if j != 100]) * (np.pi / 200.0)


def _pendulum_factors(idx: np.ndarray) -> np.ndarray:
    return pendulum_factors(_PEND_THETA[idx[:, 0]], _PEND_PHI[idx[:, 1]])


def _flow_roots(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (idx[:, 0] + 5) / 30.0, (idx[:, 1] + 6) / 3.0, (idx[:, 2] + 10) / 10.0


def _shapes_grid() -> FactorGrid:
    return FactorGrid(
        name="shapes",
        axes=SHAPES_FACTORS,
        sizes=shapes_sizes(),
        axis_factor={a: a for a in SHAPES_FACTORS},
        factor_names=SHAPES_FACTORS,
        graph=dict(SHAPES_GRAPH),
        _factors=shapes_factors,
        _render=lambda idx, size: render_shapes(idx, size=size),
        _test_mask=lambda n: shapes_test_mask(n),
        _scene_order=tuple(range(len(SHAPES_FACTORS))),
    )


def _pendulum_grid() -> FactorGrid:
    assert len(pendulum_scenes()) == len(_PEND_THETA) * len(_PEND_PHI)
    return FactorGrid(
        name="pendulum",
        axes=("theta", "light"),
        sizes=(len(_PEND_THETA), len(_PEND_PHI)),
        axis_factor={"theta": "pendulum", "light": "light"},
        factor_names=PENDULUM_FACTORS,
        graph=dict(PENDULUM_GRAPH),
        _factors=_pendulum_factors,
        _render=lambda idx, size: render_pendulum(
            _PEND_THETA[idx[:, 0]], _PEND_PHI[idx[:, 1]], size=size
        ),
        _test_mask=pendulum_test_mask,
        _scene_order=(0, 1),
    )


def _flow_grid() -> FactorGrid:
    return FactorGrid(
        name="flow",
        axes=("ball", "hole", "water"),
        sizes=(30, 9, 30),
        axis_factor={"ball": "ball", "hole": "hole", "water": "water"},
        factor_names=FLOW_FACTORS,
        graph=dict(FLOW_GRAPH),
        _factors=lambda idx: flow_factors(*_flow_roots(idx)),
        _render=lambda idx, size: render_flow(*_flow_roots(idx), size=size),
        _test_mask=flow_test_mask,
        _scene_order=(0, 2, 1),  # the data set enumerates (r, h_raw, hole)
    )


_GRIDS: dict[str, Callable[[], FactorGrid]] = {
    "shapes": _shapes_grid,
    "pendulum": _pendulum_grid,
    "flow": _flow_grid,
}


def factor_grid(name: GridName) -> FactorGrid:
    """The :class:`FactorGrid` of ``"shapes"``, ``"pendulum"`` or ``"flow"``."""
    if name not in _GRIDS:
        raise ValueError(f"dataset must be one of {GRID_NAMES}; got {name!r}")
    return _GRIDS[name]()
