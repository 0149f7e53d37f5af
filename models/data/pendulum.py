"""The Pendulum image set of CausalVAE (Yang et al., CVPR 2021), rendered from its factors.

A pendulum hangs from the pivot (10, 10.5) of a canvas x in [0, 20], y in [-1, 21]; a sun at
height 20.5 shines along the light angle and the rod casts a shadow on the ground line y = -0.5.
Four factors, in this column order (angles in radians, shadow in canvas units):

========== =================================================================================
pendulum   theta, the rod's angle from the vertical (positive: bob to the right)
light      phi, the light's angle from the ground, in (0, pi); the sun sits at 10 + 10/tan(phi)
shadow_len max(3, |p(tip) - p(pivot)|), where p projects a point onto y = -0.5 along slope tan(phi)
shadow_pos (p(pivot) + p(tip)) / 2; the rod tip is (10 + 9.5 sin theta, 10.5 - 9.5 cos theta)
========== =================================================================================

Graph: pendulum -> shadow_len, pendulum -> shadow_pos, light -> shadow_len, light -> shadow_pos.
The data set enumerates theta = i pi/200, i in range(-40, 44) and phi = j pi/200, j in
range(60, 148), j != 100: 84 x 87 = 7,308 scenes (theta-major order).

The drawing follows the original generator: a black rod (3 pt) from the pivot to the bob centre
(10 + 8 sin theta, 10.5 - 8 cos theta), a firebrick bob of radius 1.5, an orange sun of radius 3
at y = 20.5 (cut by the axes box to about a half disc) and a black shadow segment (3 pt), drawn
in that order inside matplotlib's default axes box of a 1-inch figure at 96 dpi (about 74 x 74 of
the 96 x 96 pixels, unequal x/y scale; smaller images are area-averaged reductions of it). Our
drawing reproduces the original script's pixels exactly on the same matplotlib. It takes all four
factors, so a shadow that disagrees with theta and phi (an intervention on a shadow factor) is
drawn as given.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.patches import Circle, Polygon
from numpy.typing import ArrayLike
from tqdm import tqdm

from ._canvas import SceneCanvas, check_size, default_style
from .counterfactual import Equation, as_factor_matrix, counterfactual_factors

PENDULUM_FACTORS: tuple[str, ...] = ("pendulum", "light", "shadow_len", "shadow_pos")
"""Factor names, in the column order of every pendulum factor array."""

PENDULUM_GRAPH: dict[str, tuple[str, ...]] = {
    "pendulum": (),
    "light": (),
    "shadow_len": ("pendulum", "light"),
    "shadow_pos": ("pendulum", "light"),
}
"""The true causal graph, child -> parents."""

_PIVOT = (10.0, 10.5)
_BOB_ARM = 8.0  # pivot to bob centre
_BOB_RADIUS = 1.5
_TIP_ARM = 9.5  # pivot to the rod tip that casts the shadow (bob included)
_SUN_Y = 20.5
_SUN_RADIUS = 3.0
_GROUND_Y = -0.5
_MIN_SHADOW = 3.0
_XLIM = (0.0, 20.0)
_YLIM = (-1.0, 21.0)


def pendulum_scenes() -> np.ndarray:
    """The (theta, phi) of all 7,308 data-set scenes, float64, shape ``(7308, 2)``.

    theta = i pi/200 for i in range(-40, 44) (outer loop), phi = j pi/200 for j in
    range(60, 148) except 100 (inner loop), the original generator's order.
    """
    i = np.arange(-40, 44)
    j = np.array([j for j in range(60, 148) if j != 100])
    ii, jj = np.meshgrid(i, j, indexing="ij")
    return np.stack([ii.ravel(), jj.ravel()], axis=1) * (np.pi / 200.0)


def pendulum_test_mask(n_scenes: int) -> np.ndarray:
    """Deterministic 1-in-4 test split over scenes in enumeration order: scene ``k`` is a test
    scene iff ``k % 4 == 3``. Boolean, shape ``(n_scenes,)``; 1,827 of the 7,308 scenes."""
    return np.arange(n_scenes) % 4 == 3


def _cot_light(phi: np.ndarray) -> np.ndarray:
    """1 / tan(phi) for light angles in (0, pi); ``ValueError`` outside."""
    sin = np.sin(phi)
    if np.any(sin <= 0):
        bad = phi[sin <= 0][0]
        raise ValueError(
            f"light angle phi must lie in (0, pi) radians (light from above the ground); "
            f"got {bad!r}"
        )
    return np.cos(phi) / sin


def _project(x: np.ndarray, y: np.ndarray, cot: np.ndarray) -> np.ndarray:
    """Where the light ray through (x, y), slope tan(phi), meets the ground y = -0.5."""
    return x - (y - _GROUND_Y) * cot


def _shadow(theta: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(shadow_len, shadow_pos) of the rod, each of shape of the broadcast inputs."""
    cot = _cot_light(phi)
    pivot = _project(np.full_like(theta, _PIVOT[0]), np.full_like(theta, _PIVOT[1]), cot)
    tip = _project(
        _PIVOT[0] + _TIP_ARM * np.sin(theta), _PIVOT[1] - _TIP_ARM * np.cos(theta), cot
    )
    return np.maximum(_MIN_SHADOW, np.abs(tip - pivot)), (pivot + tip) / 2.0


def pendulum_factors(theta: ArrayLike, phi: ArrayLike) -> np.ndarray:
    """All four factors from the roots, by the true equations.

    Args:
        theta: pendulum angle(s) in radians, scalar or shape ``(n,)``.
        phi: light angle(s) in radians, in (0, pi), scalar or shape ``(n,)``.

    Returns:
        float64 array ``(n, 4)``: pendulum, light, shadow_len, shadow_pos.

    Example:
        >>> pendulum_factors(0.0, np.pi / 4).round(6)
        array([[0.      , 0.785398, 9.5     , 3.75    ]])
    """
    theta_a, phi_a = np.broadcast_arrays(
        np.atleast_1d(np.asarray(theta, dtype=np.float64)),
        np.atleast_1d(np.asarray(phi, dtype=np.float64)),
    )
    if theta_a.ndim != 1:
        raise ValueError(f"theta and phi must be scalars or 1-d; got shape {theta_a.shape}")
    length, position = _shadow(theta_a, phi_a)
    return np.stack([theta_a, phi_a, length, position], axis=1)


def draw_pendulum(factors: ArrayLike, *, size: int = 96, progress: bool = False) -> np.ndarray:
    """Draw scenes from all four factors (the shadow as given, not recomputed).

    Args:
        factors: shape ``(n, 4)`` (or ``(4,)``) in :data:`PENDULUM_FACTORS` order.
        size: image side in pixels. 96 is the original drawing; below 96 it is reduced by
            area averaging (32 is exactly its 3 x 3 block mean); above, drawn at dpi=size.
        progress: show a tqdm progress bar (it reports images/s).

    Returns:
        RGB images, uint8, shape ``(n, size, size, 3)``. Same factors, same pixels.
    """
    f = as_factor_matrix(factors, PENDULUM_FACTORS)
    check_size(size)
    cot = _cot_light(f[:, 1])
    images = np.empty((len(f), size, size, 3), dtype=np.uint8)
    with default_style():
        canvas = SceneCanvas(size, xlim=_XLIM, ylim=_YLIM)
        rod = Polygon([_PIVOT, _PIVOT], closed=True, color="black", linewidth=3)
        bob = Circle(_PIVOT, _BOB_RADIUS, color="firebrick")
        sun = Circle((_PIVOT[0], _SUN_Y), _SUN_RADIUS, color="orange")
        shadow = Polygon([(0, _GROUND_Y), (0, _GROUND_Y)], closed=True, color="black", linewidth=3)
        for artist in (rod, bob, sun, shadow):  # the draw order
            canvas.ax.add_artist(artist)
        rows = tqdm(
            range(len(f)), desc=f"pendulum {size}px", unit="img", disable=not progress
        )
        for k in rows:
            theta, _, length, position = f[k]
            bob_xy = (_PIVOT[0] + _BOB_ARM * np.sin(theta), _PIVOT[1] - _BOB_ARM * np.cos(theta))
            rod.set_xy([_PIVOT, bob_xy])
            bob.set_center(bob_xy)
            sun.set_center((_PIVOT[0] + (_SUN_Y - _PIVOT[1]) * cot[k], _SUN_Y))
            half = length / 2.0
            shadow.set_xy([(position - half, _GROUND_Y), (position + half, _GROUND_Y)])
            images[k] = canvas.pixels()
    return images


def render_pendulum(theta: ArrayLike, phi: ArrayLike, *, size: int = 96) -> np.ndarray:
    """Render scenes from their roots: ``draw_pendulum(pendulum_factors(theta, phi), size=size)``.

    Args:
        theta: pendulum angle(s) in radians, scalar or ``(n,)``.
        phi: light angle(s) in radians in (0, pi), scalar or ``(n,)``.
        size: image side in pixels.

    Returns:
        uint8 array ``(n, size, size, 3)``.
    """
    return draw_pendulum(pendulum_factors(theta, phi), size=size)


_EQUATIONS: dict[str, Equation] = {
    "shadow_len": lambda pa: _shadow(pa["pendulum"], pa["light"])[0],
    "shadow_pos": lambda pa: _shadow(pa["pendulum"], pa["light"])[1],
}


def counterfactual_pendulum(
    factors: ArrayLike, interventions: Mapping[str, ArrayLike], *, size: int = 96
) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth counterfactual images of the given scenes under ``do(interventions)``.

    Intervened factors are set; their descendants are recomputed by the true equations (see
    :func:`counterfactual_factors`); everything else keeps its factual value. An intervention on
    a shadow factor draws that shadow as given, with theta and phi kept.

    Args:
        factors: factual factors ``(n, 4)`` in :data:`PENDULUM_FACTORS` order.
        interventions: e.g. ``{"light": 0.9}`` or ``{"shadow_len": lengths_of_shape_n}``.
        size: image side in pixels.

    Returns:
        ``(images, new_factors)``: uint8 ``(n, size, size, 3)`` and float64 ``(n, 4)``.

    Example:
        >>> f = pendulum_factors(0.0, np.pi / 4)
        >>> _, new = counterfactual_pendulum(f, {"light": 3 * np.pi / 4}, size=32)
        >>> new.round(4)
        array([[ 0.    ,  2.3562,  9.5   , 16.25  ]])
    """
    new = counterfactual_factors(
        factors,
        interventions,
        names=PENDULUM_FACTORS,
        graph=PENDULUM_GRAPH,
        equations=_EQUATIONS,
    )
    return draw_pendulum(new, size=size), new

