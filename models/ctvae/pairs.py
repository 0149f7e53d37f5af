"""Action pairs ``(x, action, y)``: ``y`` is ``x`` moved one grid step along one axis.

Actions are numbered ``1..2k`` for a grid with ``k`` axes: ``2i + 1`` is ``f"{axis_i}+"`` and
``2i + 2`` is ``f"{axis_i}-"``; ``0`` is ``"none"`` (y = x), the no-action transition of
Gendron et al. (IJCAI 2023). Train pairs have both scenes outside the test split; held-out
pairs start from a test scene (their ``y`` may be any scene).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.data.shapes import imbalanced_probs

from .grids import FactorGrid

NONE = "none"


def action_names(grid: FactorGrid) -> tuple[str, ...]:
    """``("none", "a0+", "a0-", "a1+", ...)``: index ``i`` is action ``i``."""
    return (NONE, *(f"{axis}{sign}" for axis in grid.axes for sign in "+-"))


def parse_action(grid: FactorGrid, name: str) -> int:
    """The index of action ``name`` (e.g. ``"light+"``) on ``grid``; ``ValueError`` if unknown."""
    names = action_names(grid)
    if name not in names[1:]:
        raise ValueError(f"action must be one of {names[1:]} for {grid.name}; got {name!r}")
    return names.index(name)


def undirected(actions: np.ndarray) -> np.ndarray:
    """The axis of each action (``+`` and ``-`` merged): ``(a - 1) // 2``; -1 for none."""
    a = np.asarray(actions)
    return np.where(a > 0, (a - 1) // 2, -1)


def step(grid: FactorGrid, index: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Grid indices after each action, int64 ``(n, k)``; entries may leave the grid (check
    with :func:`valid`)."""
    out = np.array(index, dtype=np.int64, copy=True)
    a = np.asarray(actions, dtype=np.int64)
    moved = a > 0
    axis = (a[moved] - 1) // 2
    sign = np.where((a[moved] - 1) % 2 == 0, 1, -1)
    out[np.flatnonzero(moved), axis] += sign
    return out


def valid(grid: FactorGrid, index: np.ndarray) -> np.ndarray:
    """Bool ``(n,)``: grid indices ``(n, k)`` inside the grid."""
    idx = np.asarray(index)
    return ((idx >= 0) & (idx < np.asarray(grid.sizes))).all(axis=1)


@dataclass(frozen=True)
class PairSet:
    """Scene numbers of ``n`` pairs: ``x`` and ``y`` ``(n,)`` int64, ``action`` ``(n,)`` int64
    in ``1..2k``. Images are ``grid.images(size=...)[x]`` and ``[y]``."""

    x: np.ndarray
    action: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def build_pairs(
    grid: FactorGrid,
    n: int,
    *,
    split: str = "train",
    imbalanced: bool = False,
    ratio: float = 10.0,
    seed: int = 0,
) -> PairSet:
    """Draw ``n`` pairs: ``x`` from the split's scenes (uniformly, or with geometrically
    imbalanced factor values, see :func:`models.data.shapes.imbalanced_probs`), then an action
    uniformly among those that stay on the grid (and, for train, off the test split).

    Returns:
        A :class:`PairSet` of scene numbers.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int; got {n!r}")
    rng = np.random.default_rng(seed)
    test = grid.test_mask()
    scenes = grid.scenes()
    pool = np.flatnonzero(test if split == "test" else ~test)
    probs = imbalanced_probs(grid.sizes, ratio=ratio) if imbalanced else None
    if probs is not None:
        probs = probs[np.ravel_multi_index(tuple(scenes.T), grid.sizes)]  # by scene number
    p = None if probs is None else probs[pool] / probs[pool].sum()
    x = rng.choice(pool, size=n, p=p)
    n_actions = 2 * len(grid.axes)
    # allowed[s, a]: action a + 1 from scene s stays on the grid (and off test for train)
    allowed = np.zeros((len(pool), n_actions), dtype=bool)
    for a in range(n_actions):
        moved = step(grid, scenes[pool], np.full(len(pool), a + 1))
        ok = valid(grid, moved)
        if split == "train":
            ok[ok] = ~test[grid.scene_number(moved[ok])]
        allowed[:, a] = ok
    row = np.searchsorted(pool, x)
    choice = np.empty(n, dtype=np.int64)
    u = rng.random(n)
    for i in range(n):
        options = np.flatnonzero(allowed[row[i]])
        choice[i] = options[int(u[i] * len(options))] + 1 if len(options) else 0
    keep = choice > 0
    x, choice = x[keep], choice[keep]
    y = grid.scene_number(step(grid, scenes[x], choice))
    return PairSet(x=x.astype(np.int64), action=choice, y=y.astype(np.int64))
