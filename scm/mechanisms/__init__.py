"""Mechanisms ``p(x | parents)``: modules that push standard-normal noise to a node's value."""

from __future__ import annotations

from typing import Literal

from scm.mechanisms.additive import AdditiveNoise
from scm.mechanisms.base import Mechanism
from scm.mechanisms.bayes_additive import BayesianAdditive
from scm.mechanisms.bayes_linear import BayesianLinear
from scm.mechanisms.bayesian import BayesianMechanism
from scm.mechanisms.categorical import CategoricalMechanism
from scm.mechanisms.flow import FlowMechanism
from scm.mechanisms.hurdle import HurdleMechanism
from scm.mechanisms.linear import LinearGaussian

MechanismName = Literal[
    "flow", "linear", "additive", "categorical", "hurdle", "bayes-linear", "bayes-additive"
]

REGISTRY: dict[str, type[Mechanism]] = {
    cls.kind: cls
    for cls in (
        FlowMechanism,
        LinearGaussian,
        AdditiveNoise,
        CategoricalMechanism,
        HurdleMechanism,
        BayesianLinear,
        BayesianAdditive,
    )
}


def make_mechanism(kind: str, dim: int, context_dim: int, **options: object) -> Mechanism:
    """Build a mechanism by name (``"flow"``, ``"linear"``, ``"bayes-linear"``, ...) of the
    right sizes."""
    if kind not in REGISTRY:
        raise ValueError(f"unknown mechanism {kind!r}; choose one of {sorted(REGISTRY)}")
    return REGISTRY[kind](dim, context_dim, **options)


__all__ = [
    "AdditiveNoise",
    "BayesianAdditive",
    "BayesianLinear",
    "BayesianMechanism",
    "CategoricalMechanism",
    "FlowMechanism",
    "HurdleMechanism",
    "LinearGaussian",
    "Mechanism",
    "MechanismName",
    "REGISTRY",
    "make_mechanism",
]
