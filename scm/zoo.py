"""Known SCMs with their exact structural equations: ground truth for tests and benchmarks.

Each is a :class:`~scm.known_scm.KnownSCM` (location-scale equations in numpy, with exact
sampling, interventions and counterfactuals); :data:`ZOO` names them, with the synthetic SCMs
of the causal normalizing flows paper (:mod:`scm.zoo_causal_nf`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np

from scm.known_scm import (  # noqa: F401  (re-exported: the zoo's building blocks)
    Equation,
    KnownSCM,
    Noise,
    NoiseName,
    Parents,
    Redraw,
    unit_noise,
)
from scm.zoo_causal_nf import CAUSAL_NF


def _linear_loc(w: Mapping[str, float]) -> Callable[[Parents], np.ndarray]:
    """``sum_q w_q x_q`` over the parents ``q`` in ``w`` (0 for a root)."""
    return lambda pa: sum((c * pa[q] for q, c in w.items()), start=0.0)


def _tanh_loc(
    a: Mapping[str, float], b: Mapping[str, float], c: Mapping[str, float]
) -> Callable[[Parents], np.ndarray]:
    """``sum_q a_q tanh(b_q x_q) + c_q x_q`` over the parents ``q``."""
    return lambda pa: sum((a[q] * np.tanh(b[q] * pa[q]) + c[q] * pa[q] for q in a), start=0.0)


def _const(c: float) -> Callable[[Parents], float]:
    return lambda pa: c


def linear_gaussian(
    weights: np.ndarray, noise_std: np.ndarray, names: list[str], *, name: str = "linear"
) -> KnownSCM:
    """A linear-Gaussian SCM ``x = W^T x + noise`` with ``W[i, j]`` the weight of edge i -> j.

    ``names`` must be listed in a topological order of ``W``.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(names), len(names)):
        raise ValueError(f"weights must be {len(names)}x{len(names)}, got {w.shape}")
    eqs = {}
    for j, node in enumerate(names):
        idx = [i for i in range(len(names)) if w[i, j] != 0.0]
        if any(i >= j for i in idx):
            raise ValueError("names must be in a topological order of the weight matrix")
        pars = tuple(names[i] for i in idx)
        coef = {names[i]: w[i, j] for i in idx}
        eqs[node] = Equation(
            parents=pars,
            loc=_linear_loc(coef),
            scale=_const(float(noise_std[j])),
            noise=unit_noise("gaussian"),
        )
    return KnownSCM(name, eqs)


def chain() -> KnownSCM:
    """Linear-Gaussian chain ``x1 -> x2 -> x3``: x2 = 1.5 x1 + u2, x3 = -1.2 x2 + u3."""
    w = np.zeros((3, 3))
    w[0, 1], w[1, 2] = 1.5, -1.2
    return linear_gaussian(w, np.ones(3), ["x1", "x2", "x3"], name="chain")


def collider() -> KnownSCM:
    """Linear-Gaussian collider ``x1 -> x3 <- x2``: x3 = x1 - 1.5 x2 + 0.5 u3."""
    w = np.zeros((3, 3))
    w[0, 2], w[1, 2] = 1.0, -1.5
    return linear_gaussian(w, np.array([1.0, 1.0, 0.5]), ["x1", "x2", "x3"], name="collider")


def triangle() -> KnownSCM:
    """Nonlinear triangle x1 -> x2 -> x3, x1 -> x3 with heteroscedastic noise on x3.

    x1 = u1;  x2 = 2 tanh(x1) + 0.5 u2;  x3 = 0.5 x1 x2 + sin(x2) + (0.3 + 0.2 |x1|) u3,
    in the spirit of the nonlinear triangle of Javaloy et al., "Causal normalizing flows"
    (NeurIPS 2023); the noise scale of x3 depends on x1, which an additive-noise model misses.
    """
    gauss = unit_noise("gaussian")
    eqs = {
        "x1": Equation((), _const(0.0), _const(1.0), gauss),
        "x2": Equation(("x1",), lambda pa: 2.0 * np.tanh(pa["x1"]), _const(0.5), gauss),
        "x3": Equation(
            ("x1", "x2"),
            lambda pa: 0.5 * pa["x1"] * pa["x2"] + np.sin(pa["x2"]),
            lambda pa: 0.3 + 0.2 * np.abs(pa["x1"]),
            gauss,
        ),
    }
    return KnownSCM("triangle", eqs)


# Pendulum geometry of the CausalVAE pendulum data (Yang et al., CVPR 2021): pivot (10, 10.5),
# rod tip at distance 9.5, ground line y = -0.5; light rays have slope tan(light).
PIVOT = (10.0, 10.5)
ROD = 9.5
GROUND = -0.5


def shadow_geometry(pendulum: np.ndarray, light: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(shadow_length, shadow_position)`` of the rod for angles in radians, ``(n,)``.

    Each end of the rod is projected onto the ground along the light's slope,
    ``x_ground = x - (y - GROUND) / tan(light)``; the shadow spans the two projections,
    its length floored at 3 as in the original generator.
    """
    tan = np.tan(light)
    tip_x = PIVOT[0] + ROD * np.sin(pendulum)
    tip_y = PIVOT[1] - ROD * np.cos(pendulum)
    a = PIVOT[0] - (PIVOT[1] - GROUND) / tan
    b = tip_x - (tip_y - GROUND) / tan
    return np.maximum(3.0, np.abs(a - b)), (a + b) / 2.0


def pendulum(noise_std: float = 0.2) -> KnownSCM:
    """The 4-factor pendulum SCM: pendulum angle, light angle -> shadow length, shadow position.

    Angles are uniform over the CausalVAE ranges (radians): pendulum in [-40, 43]·pi/200,
    light in [60, 147]·pi/200. Shadows follow :func:`shadow_geometry` plus Gaussian
    noise of std ``noise_std`` (canvas units), which keeps the mechanisms invertible.
    """
    lo_p, hi_p = -40 * np.pi / 200, 43 * np.pi / 200
    lo_l, hi_l = 60 * np.pi / 200, 147 * np.pi / 200
    unif = unit_noise("uniform")  # on [-sqrt 3, sqrt 3]
    half = np.sqrt(3.0)
    gauss = unit_noise("gaussian")
    eqs = {
        "pendulum": Equation(
            (), _const((lo_p + hi_p) / 2), _const((hi_p - lo_p) / (2 * half)), unif
        ),
        "light": Equation((), _const((lo_l + hi_l) / 2), _const((hi_l - lo_l) / (2 * half)), unif),
        "shadow_len": Equation(
            ("pendulum", "light"),
            lambda pa: shadow_geometry(pa["pendulum"], pa["light"])[0],
            _const(noise_std),
            gauss,
        ),
        "shadow_pos": Equation(
            ("pendulum", "light"),
            lambda pa: shadow_geometry(pa["pendulum"], pa["light"])[1],
            _const(noise_std),
            gauss,
        ),
    }
    return KnownSCM("pendulum", eqs)


def random_dag(
    d: int,
    *,
    seed: int = 0,
    expected_degree: float = 2.0,
    kind: Literal["nonlinear", "linear"] = "nonlinear",
    noise: NoiseName = "gaussian",
) -> KnownSCM:
    """A seeded Erdős–Rényi DAG over ``x0..x{d-1}`` with additive noise.

    Edge i -> j (i before j in a random order) with probability ``expected_degree / (d - 1)``.
    Linear: ``x_j = sum_i w_ij x_i + s_j u_j`` with ``|w| in [0.5, 2]``. Nonlinear:
    ``x_j = sum_i a_ij tanh(b_ij x_i) + c_ij x_i + s_j u_j``; noise scales ``s_j in [0.5, 1]``.
    """
    if d < 2:
        raise ValueError(f"random_dag needs d >= 2 nodes, got {d}")
    rng = np.random.default_rng(seed)
    p = min(1.0, expected_degree / (d - 1))
    names = [f"x{i}" for i in rng.permutation(d)]
    sample_noise = unit_noise(noise)
    eqs: dict[str, Equation] = {}
    for j, node in enumerate(names):
        parents = tuple(names[i] for i in range(j) if rng.random() < p)
        sign = rng.choice([-1.0, 1.0], size=len(parents))
        s = float(rng.uniform(0.5, 1.0))
        if kind == "linear":
            w = dict(zip(parents, sign * rng.uniform(0.5, 2.0, len(parents)), strict=True))
            loc = _linear_loc(w)
        elif kind == "nonlinear":
            a = dict(zip(parents, sign * rng.uniform(1.0, 2.0, len(parents)), strict=True))
            b = dict(zip(parents, rng.uniform(0.5, 2.0, len(parents)), strict=True))
            c = dict(zip(parents, rng.uniform(-0.5, 0.5, len(parents)), strict=True))
            loc = _tanh_loc(a, b, c)
        else:
            raise ValueError(f"kind must be 'linear' or 'nonlinear', got {kind!r}")
        eqs[node] = Equation(parents, loc, _const(s), sample_noise)
    return KnownSCM(f"random{d}_{kind}", eqs)


# The "quad" concept SCM of Markham et al., "Intervening to Learn and Compose Causally
# Disentangled Representations" (arXiv 2507.04754): 8 latents rendered as four coloured
# quadrants and a coloured, sized, rotated shape (models/data/quad.py draws it).
QUAD_NODES = ("quad1", "quad2", "quad3", "quad4", "size", "color", "shape", "orientation")
QUAD_EDGES = {  # (i, j): weight of the edge QUAD_NODES[i] -> QUAD_NODES[j]
    (1, 0): -1.23, (2, 1): 1.56, (3, 0): 1.34, (3, 2): -0.72, (5, 0): -0.95, (5, 4): 1.67,
    (6, 1): 0.58, (6, 5): -1.34, (7, 0): 1.12, (7, 4): -0.81, (7, 6): 1.45,
}
QUAD_NOISE_VAR = (1.3855, 1.1643, 1.0050, 1.9565, 1.2748, 1.42, 1.31, 1.18)
QUAD_INT_MEAN = (1.169, 1.475, -1.606, -1.966, 1.012, -0.85, 1.23, -0.67)
QUAD_INT_VAR = (1.949, 1.359, 1.573, 1.102, 1.305, 1.52, 1.41, 1.26)


def quad_weights(*, independent: bool = False) -> np.ndarray:
    """The quad SCM's ``(8, 8)`` weights in ``QUAD_NODES`` order, ``W[i, j]`` for edge i -> j
    (all zero for the independent variant)."""
    w = np.zeros((len(QUAD_NODES), len(QUAD_NODES)))
    if not independent:
        for (i, j), value in QUAD_EDGES.items():
            w[i, j] = value
    return w


def quad(*, independent: bool = False) -> KnownSCM:
    """The quad concept SCM ``x = W^T x + noise`` (see ``QUAD_EDGES``, ``QUAD_NOISE_VAR``).

    Every edge points from a later to an earlier latent of ``QUAD_NODES`` (orientation and
    quad4 are roots), so the equations are listed in reverse ``QUAD_NODES`` order, a
    topological order; reorder a sample's columns with ``df[list(QUAD_NODES)]``. The paper's
    interventions are :func:`quad_intervention`.
    """
    order = list(reversed(range(len(QUAD_NODES))))
    w = quad_weights(independent=independent)[np.ix_(order, order)]
    std = np.sqrt(np.asarray(QUAD_NOISE_VAR))[order]
    name = "quad_independent" if independent else "quad"
    return linear_gaussian(w, std, [QUAD_NODES[i] for i in order], name=name)


def quad_independent() -> KnownSCM:
    """The quad SCM with ``W = 0``: eight independent Gaussian latents, same noise variances."""
    return quad(independent=True)


def quad_intervention(targets: Sequence[str]) -> dict[str, Redraw]:
    """The paper's hard intervention on each of ``targets``: parents cut, drawn from
    ``N(QUAD_INT_MEAN[k], QUAD_INT_VAR[k])``; pass it to ``KnownSCM.do``."""
    out = {}
    for name in targets:
        if name not in QUAD_NODES:
            raise ValueError(f"quad intervention target must be one of {QUAD_NODES}; got {name!r}")
        k = QUAD_NODES.index(name)
        out[name] = Redraw(QUAD_INT_MEAN[k], float(np.sqrt(QUAD_INT_VAR[k])))
    return out


def quad_observational_std(*, independent: bool = False) -> np.ndarray:
    """Exact observational std of each quad latent, ``(8,)`` in ``QUAD_NODES`` order:
    ``sqrt(diag(B D B^T))`` with ``B = (I - W^T)^{-1}`` and ``D`` the noise variances.
    (Every observational mean is 0.)"""
    w = quad_weights(independent=independent)
    b = np.linalg.inv(np.eye(len(QUAD_NODES)) - w.T)
    return np.sqrt(np.diag(b @ np.diag(QUAD_NOISE_VAR) @ b.T))


ZOO: dict[str, Callable[[], KnownSCM]] = {
    "chain": chain,
    "collider": collider,
    "triangle": triangle,
    "pendulum": pendulum,
    "random10": lambda: random_dag(10, seed=0),
    "random20": lambda: random_dag(20, seed=0),
    "quad": quad,
    "quad_independent": quad_independent,
    **CAUSAL_NF,
}
"""Named zoo SCMs, for the CLI and the benchmarks (``bench/scm_queries.py --scms``); the
``cnf_...`` ones are :mod:`scm.zoo_causal_nf`'s."""
