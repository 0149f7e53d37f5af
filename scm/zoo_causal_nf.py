"""The synthetic SCMs of Javaloy, Sánchez-Martín & Valera, "Causal normalizing flows: from
theory to practice" (NeurIPS 2023, Appendix), as the ``causalflows`` package writes their
equations (``causalflows/scms.py``): a second family of ground truths beside :mod:`scm.zoo`'s,
made by other people for another method, with bounded and skewed noises, quadratic and
saturating mechanisms and near-deterministic linear links (``x2 = 10 x1 - u2``).

Every mechanism there is ``x = f(parents) + g(u)`` with ``u ~ N(0, 1)``, so each is written
here as a :class:`~scm.known_scm.Equation` with the law of ``g(u)`` as its noise: abducting
``g(u) = x - f(parents)`` gives the same counterfactuals as abducting ``u`` (``2 - u`` and
``2 + u`` are one law, and their counterfactuals agree). Large backdoor's last node pushes a
Gaussian ``u`` through a Laplace quantile function, which only a uniform ``u`` makes a Laplace
variable; it is written here as Laplace noise of scale 0.6, the law the paper describes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from scm.known_scm import Equation, KnownSCM, Noise, Parents


def _gauss(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal(n)


def _of_gauss(g: Callable[[np.ndarray], np.ndarray]) -> Noise:
    """The noise ``g(u)``, ``u ~ N(0, 1)``."""
    return lambda rng, n: g(rng.standard_normal(n))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _eq(parents: tuple[str, ...], loc: Callable[[Parents], np.ndarray] | float,
        scale: float = 1.0, noise: Noise = _gauss) -> Equation:
    f = loc if callable(loc) else (lambda pa, c=float(loc): c)
    return Equation(parents, f, lambda pa, s=scale: s, noise)


def chain_linear() -> KnownSCM:
    """x1 = u1; x2 = 10 x1 - u2; x3 = 0.25 x2 + 2 u3."""
    return KnownSCM("cnf_chain_lin", {
        "x1": _eq((), 0.0),
        "x2": _eq(("x1",), lambda p: 10 * p["x1"]),
        "x3": _eq(("x2",), lambda p: 0.25 * p["x2"], 2.0),
    })


def chain_nonlinear() -> KnownSCM:
    """x1 = u1; x2 = exp(x1 / 2) + u2 / 4; x3 = (x2 - 5)³ / 15 + u3."""
    return KnownSCM("cnf_chain_nlin", {
        "x1": _eq((), 0.0),
        "x2": _eq(("x1",), lambda p: np.exp(p["x1"] / 2), 0.25),
        "x3": _eq(("x2",), lambda p: (p["x2"] - 5) ** 3 / 15),
    })


def chain_bounded_root() -> KnownSCM:
    """x1 = sigmoid(u1) in (0, 1); x2 = 10 sqrt(x1) - u2; x3 = 0.25 x2 + 2 u3 (the package's
    ``non-linear-2`` chain)."""
    return KnownSCM("cnf_chain_nlin2", {
        "x1": _eq((), 0.0, 1.0, _of_gauss(_sigmoid)),
        "x2": _eq(("x1",), lambda p: 10 * np.sqrt(p["x1"])),
        "x3": _eq(("x2",), lambda p: 0.25 * p["x2"], 2.0),
    })


def chain_quadratic() -> KnownSCM:
    """x1 = u1; x2 = x1² - u2; x3 = 0.25 x2 + 2 u3 (the package's ``non-linear-3`` chain)."""
    return KnownSCM("cnf_chain_nlin3", {
        "x1": _eq((), 0.0),
        "x2": _eq(("x1",), lambda p: p["x1"] ** 2),
        "x3": _eq(("x2",), lambda p: 0.25 * p["x2"], 2.0),
    })


def chain4() -> KnownSCM:
    """x1 = u1; x2 = 5 x1 - u2; x3 = -0.5 x2 - 1.5 u3; x4 = x3 + u4."""
    return KnownSCM("cnf_chain4", {
        "x1": _eq((), 0.0),
        "x2": _eq(("x1",), lambda p: 5 * p["x1"]),
        "x3": _eq(("x2",), lambda p: -0.5 * p["x2"], 1.5),
        "x4": _eq(("x3",), lambda p: p["x3"]),
    })


def chain5() -> KnownSCM:
    """x1 = u1; x2 = 10 x1 - u2; x3 = 0.25 x2 + 2 u3; x4 = x3 + u4; x5 = -x4 + u5."""
    return KnownSCM("cnf_chain5", {
        "x1": _eq((), 0.0),
        "x2": _eq(("x1",), lambda p: 10 * p["x1"]),
        "x3": _eq(("x2",), lambda p: 0.25 * p["x2"], 2.0),
        "x4": _eq(("x3",), lambda p: p["x3"]),
        "x5": _eq(("x4",), lambda p: -p["x4"]),
    })


def collider() -> KnownSCM:
    """x1 = u1; x2 = 2 - u2; x3 = 0.25 x2 - 0.5 x1 + 0.5 u3."""
    return KnownSCM("cnf_collider", {
        "x1": _eq((), 0.0),
        "x2": _eq((), 2.0),
        "x3": _eq(("x1", "x2"), lambda p: 0.25 * p["x2"] - 0.5 * p["x1"], 0.5),
    })


def fork_linear() -> KnownSCM:
    """x1 = u1; x2 = 2 - u2; x3 = 0.25 x2 - 1.5 x1 + 0.5 u3; x4 = x3 + 0.25 u4."""
    return KnownSCM("cnf_fork_lin", {
        "x1": _eq((), 0.0),
        "x2": _eq((), 2.0),
        "x3": _eq(("x1", "x2"), lambda p: 0.25 * p["x2"] - 1.5 * p["x1"], 0.5),
        "x4": _eq(("x3",), lambda p: p["x3"], 0.25),
    })


def fork_nonlinear() -> KnownSCM:
    """x1 = u1; x2 = u2; x3 = 4 / (1 + exp(-x1 - x2)) - x2² + u3 / 2;
    x4 = 20 / (1 + exp(x3² / 2 - x3)) + u4."""
    return KnownSCM("cnf_fork_nlin", {
        "x1": _eq((), 0.0),
        "x2": _eq((), 0.0),
        "x3": _eq(("x1", "x2"), lambda p: 4 * _sigmoid(p["x1"] + p["x2"]) - p["x2"] ** 2, 0.5),
        "x4": _eq(("x3",), lambda p: 20 * _sigmoid(p["x3"] - p["x3"] ** 2 / 2)),
    })


def triangle_linear() -> KnownSCM:
    """x1 = u1 + 1; x2 = 10 x1 - u2; x3 = 0.5 x2 + x1 + u3."""
    return KnownSCM("cnf_triangle_lin", {
        "x1": _eq((), 1.0),
        "x2": _eq(("x1",), lambda p: 10 * p["x1"]),
        "x3": _eq(("x1", "x2"), lambda p: 0.5 * p["x2"] + p["x1"]),
    })


def triangle_nonlinear() -> KnownSCM:
    """x1 = u1; x2 = 2 x1² + u2; x3 = 20 / (1 + exp(-x2² + x1)) + u3."""
    return KnownSCM("cnf_triangle_nlin", {
        "x1": _eq((), 0.0),
        "x2": _eq(("x1",), lambda p: 2 * p["x1"] ** 2),
        "x3": _eq(("x1", "x2"), lambda p: 20 * _sigmoid(p["x2"] ** 2 - p["x1"])),
    })


def triangle_bounded_root() -> KnownSCM:
    """x1 = sigmoid(u1); x2 = 10 sqrt(x1) - u2; x3 = 0.5 x2 + 1 / (1 + x1) + u3 (the package's
    ``non-linear-2`` triangle)."""
    return KnownSCM("cnf_triangle_nlin2", {
        "x1": _eq((), 0.0, 1.0, _of_gauss(_sigmoid)),
        "x2": _eq(("x1",), lambda p: 10 * np.sqrt(p["x1"])),
        "x3": _eq(("x1", "x2"), lambda p: 0.5 * p["x2"] + 1 / (1 + p["x1"])),
    })


def simpson_nonlinear() -> KnownSCM:
    """x1 = u1; x2 = softplus(1 - x1) + sqrt(3/20) u2; x3 = tanh(2 x2) + 1.5 x1 - 1 + tanh(u3);
    x4 = (x3 - 4) / 5 + 3 + u4 / sqrt(10): bounded noise at x3, a sign flip of x1's effect
    on x3 through x2 (Simpson's paradox)."""
    return KnownSCM("cnf_simpson_nlin", {
        "x1": _eq((), 0.0),
        "x2": _eq(("x1",), lambda p: _softplus(1 - p["x1"]), np.sqrt(3 / 20)),
        "x3": _eq(("x1", "x2"), lambda p: np.tanh(2 * p["x2"]) + 1.5 * p["x1"] - 1, 1.0,
                  _of_gauss(np.tanh)),
        "x4": _eq(("x3",), lambda p: (p["x3"] - 4) / 5 + 3, 1 / np.sqrt(10)),
    })


def simpson_symprod() -> KnownSCM:
    """x1 = u1; x2 = 2 tanh(2 x1) + u2 / sqrt(10); x3 = x1 x2 / 2 + u3 / sqrt(2);
    x4 = tanh(1.5 x1) + sqrt(3/10) u4 (a product of parents)."""
    return KnownSCM("cnf_simpson_symprod", {
        "x1": _eq((), 0.0),
        "x2": _eq(("x1",), lambda p: 2 * np.tanh(2 * p["x1"]), 1 / np.sqrt(10)),
        "x3": _eq(("x1", "x2"), lambda p: 0.5 * p["x1"] * p["x2"], 1 / np.sqrt(2)),
        "x4": _eq(("x1",), lambda p: np.tanh(1.5 * p["x1"]), np.sqrt(0.3)),
    })


def _layer_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    return _softplus(0.5 + rng.standard_normal(n))


def _layer(parent: str) -> Equation:
    """``softplus(x_parent + 1) + softplus(0.5 + u) - 3``: skewed noise."""
    return _eq((parent,), lambda p: _softplus(p[parent] + 1) - 3, 1.0, _layer_noise)


def large_backdoor() -> KnownSCM:
    """Nine nodes, two backdoor paths from x1 to x9 through chains of softplus layers:
    x1 = softplus(1.8 u1) - 1 (skewed, bounded below); x2 = 1.5 layer(x1, 0) + u2 / 4;
    x3..x7 = layer(parent, u); x8 = softplus(x6 + 1) - 1 + 0.3 u8;
    x9 ~ Laplace(2 - softplus((1.3 x7 + x8) / 3 + 1), 0.6)."""
    return KnownSCM("cnf_backdoor", {
        "x1": _eq((), 0.0, 1.0, _of_gauss(lambda u: _softplus(1.8 * u) - 1)),
        "x2": _eq(("x1",), lambda p: 1.5 * (_softplus(p["x1"] + 1) + _softplus(0.5) - 3), 0.25),
        "x3": _layer("x1"),
        "x4": _layer("x2"),
        "x5": _layer("x3"),
        "x6": _layer("x4"),
        "x7": _layer("x5"),
        "x8": _eq(("x6",), lambda p: _softplus(p["x6"] + 1) - 1, 0.3),
        "x9": _eq(("x7", "x8"), lambda p: 2 - _softplus((1.3 * p["x7"] + p["x8"]) / 3 + 1), 1.0,
                  lambda rng, n: rng.laplace(0.0, 0.6, n)),
    })


def diamond() -> KnownSCM:
    """x1 = u1; x2 = x1² + u2 / 2; x3 = x2² - 2 sigmoid(x1) + u3 / 2;
    x4 = x3 / (|x2 + 2| + x3 + 0.5) + u4 / 10 (heavy tails: x3 reaches the hundreds)."""
    return KnownSCM("cnf_diamond", {
        "x1": _eq((), 0.0),
        "x2": _eq(("x1",), lambda p: p["x1"] ** 2, 0.5),
        "x3": _eq(("x1", "x2"), lambda p: p["x2"] ** 2 - 2 * _sigmoid(p["x1"]), 0.5),
        "x4": _eq(("x2", "x3"), lambda p: p["x3"] / (np.abs(p["x2"] + 2) + p["x3"] + 0.5), 0.1),
    })


CAUSAL_NF: dict[str, Callable[[], KnownSCM]] = {
    scm().name: scm
    for scm in (chain_linear, chain_nonlinear, chain_bounded_root, chain_quadratic, chain4,
                chain5, collider, fork_linear, fork_nonlinear, triangle_linear,
                triangle_nonlinear, triangle_bounded_root, simpson_nonlinear, simpson_symprod,
                large_backdoor, diamond)
}
"""The causal NF paper's SCMs by name (``cnf_...``), part of :data:`scm.zoo.ZOO`."""
