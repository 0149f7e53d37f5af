"""The Flow image set of CausalVAE (Yang et al., CVPR 2021), rendered from its factors.

A cup (walls at x = 3 and x = 8, canvas [0, 20] x [0, 20]) holds water and a ball; water jets
out of a hole in the right wall and lands on the ground. Four factors, in this column order:

===== ================================================================================
ball  ball radius r/30 (drawn at (5.5, 0.5 + radius), firebrick)
water water height h = ball**3 + u_water, u_water = h_raw/10 (drawn as a rectangle 5 + h high)
hole  height of the hole in the right wall, hole/3 (the wall has a 0.4 gap there)
flow  landing distance of the jet, sqrt(2 * 0.98 * h * (hole - 0.5))
===== ================================================================================

The drawing follows the original generator (water, cup walls (2 pt), ball, jet, ground line at
y = 0.2, in that order, in matplotlib's default axes box of a 1-inch figure at 96 dpi; smaller
images are area-averaged reductions) and reproduces its pixels exactly on the same matplotlib.

Graph: ball -> water -> flow <- hole. The data set enumerates r in 5..34, h_raw in 10..39 and
hole in 6..14 (r-major, the original order): 30 x 30 x 9 = 8,100 scenes.

**Jet noise.** The original generator draws the jet with gravity 0.98 + eps, where
eps = 0.01 * max(|z|, 1), z ~ N(0, 1), so eps is never below 0.01 while the ``flow`` factor uses
0.98. We keep eps as a per-scene exogenous variable of the image, ``jet_noise``: the data set
draws it once for all 8,100 scenes in enumeration order from
``numpy.random.default_rng(FLOW_JET_SEED)`` (:func:`flow_jet_noise`), so a scene's noise does not
depend on the split or subset, and a counterfactual render holds it fixed. Renderers given no
noise use the floor 0.01 (its most likely value, P = 0.68). The jet is drawn as the original's
parabola, rescaled to land at ``flow * sqrt(1 + eps / 0.98)`` from the wall, which is the original
curve exactly when ``flow`` follows its equation and is how an intervened ``flow`` is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.patches import Circle, Polygon, Rectangle
from numpy.typing import ArrayLike
from tqdm import tqdm

from ._canvas import SceneCanvas, check_size, default_style
from .counterfactual import Equation, as_factor_matrix, counterfactual_factors

FLOW_FACTORS: tuple[str, ...] = ("ball", "water", "hole", "flow")
"""Factor names, in the column order of every flow factor array."""

FLOW_GRAPH: dict[str, tuple[str, ...]] = {
    "ball": (),
    "water": ("ball",),
    "hole": (),
    "flow": ("water", "hole"),
}
"""The true causal graph, child -> parents."""

FLOW_JET_SEED = 20_210_601
"""Seed of the data set's per-scene jet noise (:func:`flow_jet_noise`)."""

FLOW_SPLIT_SEED = 20_210_602
"""Seed of the flow train/test split (:func:`flow_test_mask`)."""

_GRAVITY = 0.98
_JET_FLOOR = 0.01
_LAND_Y = 0.5  # the jet's end height (the flow factor is its distance from the wall there)
_CUP_LEFT, _CUP_RIGHT, _CUP_TOP = 3.0, 8.0, 19.0
_BALL_X = 5.5
_BALL_LIFT = 0.5  # the ball's centre sits at 0.5 + radius
_HOLE_GAP = 0.4
_WATER_BASE = 5.0  # the water rectangle is 5 + h high
_GROUND_Y = 0.2
_JET_POINTS = 50
_LIM = (0.0, 20.0)


def flow_scenes() -> np.ndarray:
    """Roots of all 8,100 data-set scenes: columns (ball, hole, u_water), float64 ``(8100, 3)``.

    ball = r/30 for r in 5..34, u_water = h_raw/10 for h_raw in 10..39, hole = hole/3 for hole
    in 6..14, nested in that order (r outermost).
    """
    r, h_raw, hole = np.meshgrid(
        np.arange(5, 35), np.arange(10, 40), np.arange(6, 15), indexing="ij"
    )
    return np.stack([r.ravel() / 30.0, hole.ravel() / 3.0, h_raw.ravel() / 10.0], axis=1)


def flow_jet_noise(n_scenes: int, *, seed: int = FLOW_JET_SEED) -> np.ndarray:
    """The jet's gravity noise eps = 0.01 * max(|z|, 1), z ~ N(0, 1), for ``n_scenes`` scenes in
    order from ``numpy.random.default_rng(seed)``. float64 ``(n_scenes,)``, all >= 0.01."""
    z = np.random.default_rng(seed).standard_normal(n_scenes)
    return _JET_FLOOR * np.maximum(np.abs(z), 1.0)


def flow_test_mask(n_scenes: int, *, seed: int = FLOW_SPLIT_SEED) -> np.ndarray:
    """Seeded 1-in-5 test split: ``n_scenes // 5`` scenes chosen by a permutation from
    ``numpy.random.default_rng(seed)``. Boolean ``(n_scenes,)``; 1,620 of the 8,100 scenes."""
    mask = np.zeros(n_scenes, dtype=bool)
    mask[np.random.default_rng(seed).permutation(n_scenes)[: n_scenes // 5]] = True
    return mask


def _flow_distance(water: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """sqrt(2 * 0.98 * water * (hole - 0.5)), 0 where the radicand is negative."""
    return np.sqrt(np.maximum(2.0 * _GRAVITY * water * (hole - _LAND_Y), 0.0))


def flow_factors(ball: ArrayLike, hole: ArrayLike, water_noise: ArrayLike) -> np.ndarray:
    """All four factors from the roots and the water noise, by the true equations.

    Args:
        ball: ball radius, scalar or ``(n,)``.
        hole: hole height, scalar or ``(n,)``.
        water_noise: u_water in ``water = ball**3 + u_water``, scalar or ``(n,)``.

    Returns:
        float64 ``(n, 4)``: ball, water, hole, flow.

    Example:
        >>> flow_factors(0.5, 2.5, 1.0)
        array([[0.5  , 1.125, 2.5  , 2.1  ]])
    """
    ball_a, hole_a, u_a = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (ball, hole, water_noise))
    )
    if ball_a.ndim != 1:
        raise ValueError(f"ball, hole and water_noise must be scalars or 1-d; got {ball_a.shape}")
    water = ball_a**3 + u_a
    return np.stack([ball_a, water, hole_a, _flow_distance(water, hole_a)], axis=1)


def _jet_noise_array(jet_noise: ArrayLike | None, n: int) -> np.ndarray:
    if jet_noise is None:
        return np.full(n, _JET_FLOOR)
    eps = np.asarray(jet_noise, dtype=np.float64)
    try:
        eps = np.broadcast_to(eps, (n,))
    except ValueError:
        raise ValueError(
            f"jet_noise must be None, a scalar or shape ({n},); got shape {eps.shape}"
        ) from None
    if not np.all(np.isfinite(eps) & (eps >= 0)):
        raise ValueError("jet_noise must be finite and >= 0 (the data set's is >= 0.01)")
    return eps


def draw_flow(
    factors: ArrayLike,
    *,
    jet_noise: ArrayLike | None = None,
    size: int = 96,
    progress: bool = False,
) -> np.ndarray:
    """Draw scenes from all four factors (water and flow as given, not recomputed).

    Args:
        factors: shape ``(n, 4)`` (or ``(4,)``) in :data:`FLOW_FACTORS` order; ball >= 0,
            hole > 0.5, flow >= 0.
        jet_noise: the jet's eps per scene, scalar or ``(n,)``; None means 0.01.
        size: image side in pixels. 96 is the original drawing; below 96 it is reduced by
            area averaging (32 is exactly its 3 x 3 block mean); above, drawn at dpi=size.
        progress: show a tqdm progress bar (it reports images/s).

    Returns:
        RGB images, uint8, shape ``(n, size, size, 3)``. Same inputs, same pixels.
    """
    f = as_factor_matrix(factors, FLOW_FACTORS)
    check_size(size)
    for column, limit, bad in ((0, ">= 0", f[:, 0] < 0), (2, "> 0.5", f[:, 2] <= _LAND_Y),
                               (3, ">= 0", f[:, 3] < 0)):
        if bad.any():
            name = FLOW_FACTORS[column]
            raise ValueError(f"flow factor {name!r} must be {limit}; got {f[bad, column][0]!r}")
    eps = _jet_noise_array(jet_noise, len(f))
    jet_shape = np.sqrt(np.linspace(0.0, 1.0, _JET_POINTS))
    images = np.empty((len(f), size, size, 3), dtype=np.uint8)
    with default_style():
        canvas = SceneCanvas(size, xlim=_LIM, ylim=_LIM)
        ax = canvas.ax
        water = Rectangle(
            (_CUP_LEFT, 0.0), _CUP_RIGHT - _CUP_LEFT, _WATER_BASE, color="lightskyblue"
        )
        wall = {"color": "black", "linewidth": 2, "closed": True}
        left = Polygon([(_CUP_LEFT, 0.0), (_CUP_LEFT, _CUP_TOP)], **wall)
        right_low = Polygon([(_CUP_RIGHT, 0.0), (_CUP_RIGHT, 1.0)], **wall)
        right_high = Polygon([(_CUP_RIGHT, 1.0), (_CUP_RIGHT, _CUP_TOP)], **wall)
        ball = Circle((_BALL_X, 1.0), 0.5, color="firebrick")
        for artist in (water, left, right_low, right_high, ball):  # the original's order
            ax.add_artist(artist)
        (jet,) = ax.plot([], [], color="lightskyblue", linewidth=2)
        ax.plot(np.linspace(*_LIM, num=50), np.full(50, _GROUND_Y), color="black", linewidth=2)
        rows = tqdm(range(len(f)), desc=f"flow {size}px", unit="img", disable=not progress)
        for k in rows:
            radius, height, hole, flow = f[k]
            water.set_height(_WATER_BASE + height)
            right_low.set_xy([(_CUP_RIGHT, 0.0), (_CUP_RIGHT, hole)])
            right_high.set_xy([(_CUP_RIGHT, hole + _HOLE_GAP), (_CUP_RIGHT, _CUP_TOP)])
            ball.set_center((_BALL_X, radius + _BALL_LIFT))
            ball.set_radius(radius)
            # The original's y = linspace(hole, 0.5) and x = 8 + sqrt(2 (0.98 + eps) h (hole - y)),
            # i.e. x = 8 + reach * sqrt(t) at y = hole - t (hole - 0.5), t = 0 .. 1.
            reach = flow * np.sqrt(1.0 + eps[k] / _GRAVITY)
            jet.set_data(_CUP_RIGHT + reach * jet_shape, np.linspace(hole, _LAND_Y, _JET_POINTS))
            images[k] = canvas.pixels()
    return images


def render_flow(
    ball: ArrayLike,
    hole: ArrayLike,
    water_noise: ArrayLike,
    *,
    jet_noise: ArrayLike | None = None,
    size: int = 96,
) -> np.ndarray:
    """Render scenes from their roots:
    ``draw_flow(flow_factors(ball, hole, water_noise), jet_noise=jet_noise, size=size)``.

    Args:
        ball, hole, water_noise: as in :func:`flow_factors`, scalars or ``(n,)``.
        jet_noise: the jet's eps, scalar or ``(n,)``; None means 0.01.
        size: image side in pixels.

    Returns:
        uint8 array ``(n, size, size, 3)``.
    """
    return draw_flow(flow_factors(ball, hole, water_noise), jet_noise=jet_noise, size=size)


_EQUATIONS: dict[str, Equation] = {
    "water": lambda pa: pa["ball"] ** 3,  # + u_water, abducted from the factual water height
    "flow": lambda pa: _flow_distance(pa["water"], pa["hole"]),
}


def counterfactual_flow(
    factors: ArrayLike,
    interventions: Mapping[str, ArrayLike],
    *,
    jet_noise: ArrayLike | None = None,
    size: int = 96,
) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth counterfactual images of the given scenes under ``do(interventions)``.

    Intervened factors are set; descendants are recomputed by the true equations with the
    scene's own noise held fixed: ``do(ball := b)`` gives water ``b**3 + (water - ball**3)`` and
    the flow of that water; an intervention on ``flow`` draws that jet, parents kept. Pass the
    scenes' ``jet_noise`` (``ImageSet.noise``) to hold the image noise fixed too.

    Args:
        factors: factual factors ``(n, 4)`` in :data:`FLOW_FACTORS` order.
        interventions: e.g. ``{"ball": 0.9}`` or ``{"hole": holes_of_shape_n}``.
        jet_noise: the scenes' jet eps, scalar or ``(n,)``; None means 0.01.
        size: image side in pixels.

    Returns:
        ``(images, new_factors)``: uint8 ``(n, size, size, 3)`` and float64 ``(n, 4)``.

    Example:
        >>> f = flow_factors(0.5, 2.5, 1.0)
        >>> _, new = counterfactual_flow(f, {"ball": 1.0}, size=32)
        >>> new.round(4)
        array([[1. , 2. , 2.5, 2.8]])
    """
    new = counterfactual_factors(
        factors, interventions, names=FLOW_FACTORS, graph=FLOW_GRAPH, equations=_EQUATIONS
    )
    return draw_flow(new, jet_noise=jet_noise, size=size), new
