"""A ground-truth SCM given by its structural equations, in numpy: what :mod:`scm.zoo` and
:mod:`scm.zoo_causal_nf` are made of.

Every node is a location-scale mechanism ``x = loc(parents) + scale(parents) * u`` with
exogenous noise ``u`` drawn independently, so sampling, interventions and counterfactuals
(abduct ``u = (x - loc) / scale``, act, predict) are exact and written here in numpy,
independently of the Pyro code they are used to check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import networkx as nx
import numpy as np
import pandas as pd

from scm.graph import as_parent_dict, descendants, to_networkx
from scm.interventions import Interventions, align_rows, check_interventions, resolve

Parents = Mapping[str, np.ndarray]
NoiseName = Literal["gaussian", "uniform", "laplace"]
Noise = Callable[[np.random.Generator, int], np.ndarray]
"""Draws ``n`` noise values: ``noise(rng, n) -> (n,)``."""


def unit_noise(kind: NoiseName) -> Noise:
    """Unit-variance noise of the given family."""
    if kind == "gaussian":
        return lambda rng, n: rng.standard_normal(n)
    if kind == "uniform":
        return lambda rng, n: rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), n)
    if kind == "laplace":
        return lambda rng, n: rng.laplace(0.0, 1.0 / np.sqrt(2.0), n)
    raise ValueError(f"noise must be 'gaussian', 'uniform' or 'laplace', got {kind!r}")


@dataclass(frozen=True)
class Equation:
    """``x = loc(parents) + scale(parents) * u`` with ``u ~ noise``; arrays are ``(n,)``."""

    parents: tuple[str, ...]
    loc: Callable[[Parents], np.ndarray]
    scale: Callable[[Parents], np.ndarray | float]
    noise: Noise

    def __call__(self, pa: Parents, u: np.ndarray) -> np.ndarray:
        return self.loc(pa) + self.scale(pa) * u

    def abduct(self, pa: Parents, x: np.ndarray) -> np.ndarray:
        return (x - self.loc(pa)) / self.scale(pa)


@dataclass(frozen=True)
class KnownSCM:
    """A ground-truth SCM over scalar nodes, given by its structural equations.

    Attributes:
        name: a short label.
        equations: ``{node: Equation}`` in topological order.
        interventions: the interventions this (possibly intervened) model carries.
    """

    name: str
    equations: Mapping[str, Equation]
    interventions: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        as_parent_dict(self.graph)  # validates: acyclic, parents declared

    @property
    def graph(self) -> dict[str, list[str]]:
        """``{node: [parents]}`` in topological order."""
        return {n: list(eq.parents) for n, eq in self.equations.items()}

    @property
    def nodes(self) -> list[str]:
        return list(self.equations)

    @property
    def dims(self) -> dict[str, int]:
        return dict.fromkeys(self.equations, 1)

    def to_networkx(self) -> nx.DiGraph:
        return to_networkx(self.graph)

    def restrict(self, nodes: Sequence[str]) -> KnownSCM:
        """Return the SCM over ``nodes`` alone, their equations unchanged (named
        ``"name[a,b]"``); the other nodes are marginalised out, which leaves every kept
        equation as it was only when ``nodes`` holds each kept node's parents (an ancestral
        set). Raises ``ValueError`` naming an unknown node or a missing parent."""
        keep = set(nodes)
        unknown = sorted(keep - set(self.equations))
        if unknown:
            raise ValueError(f"restrict: unknown nodes {unknown}; the SCM has {self.nodes}")
        kept = [n for n in self.nodes if n in keep]  # topological order
        for node in kept:
            missing = [p for p in self.equations[node].parents if p not in keep]
            if missing:
                raise ValueError(f"restrict: node {node!r} needs its parents {missing} kept")
        return KnownSCM(f"{self.name}[{','.join(kept)}]", {n: self.equations[n] for n in kept},
                        {k: v for k, v in self.interventions.items() if k in keep})

    def do(self, interventions: Interventions) -> KnownSCM:
        """Return this SCM with ``interventions`` added (later ones override earlier ones)."""
        check_interventions(interventions, self.dims)  # targets, per-row lengths, NaN, None
        return replace(self, interventions={**self.interventions, **interventions})

    def sample(self, n: int, seed: int = 0) -> pd.DataFrame:
        """Draw ``n`` rows from the (intervened) model; returns a DataFrame, a column per node."""
        rng = np.random.default_rng(seed)
        redraws, fixed = _split_redraws(self.interventions)
        actions = resolve(fixed, self.dims, n)
        values: dict[str, np.ndarray] = {}
        for node, eq in self.equations.items():
            u = eq.noise(rng, n)
            if node in redraws:
                values[node] = redraws[node](u)
                continue
            values[node] = _act(actions.get(node), eq(values, u))
        return pd.DataFrame(values)

    def counterfactual(self, factual: pd.DataFrame, interventions: Interventions) -> pd.DataFrame:
        """Exact counterfactual rows: abduct each node's noise, intervene, recompute descendants.

        Nodes that are not intervened on and not descendants of an intervened node keep
        their factual values exactly.
        """
        n = len(factual)
        x = {node: factual[node].to_numpy(dtype=np.float64) for node in self.nodes}
        interventions = align_rows(interventions, self.dims, factual.index)
        redraws, fixed = _split_redraws({**self.interventions, **interventions})
        actions = resolve(fixed, self.dims, n)
        changed = set(actions) | set(redraws) | descendants(self.graph, {*actions, *redraws})
        out: dict[str, np.ndarray] = {}
        for node, eq in self.equations.items():
            if node not in changed:
                out[node] = x[node].copy()
                continue
            u = eq.abduct(x, x[node])
            if node in redraws:
                out[node] = redraws[node](u)
                continue
            out[node] = _act(actions.get(node), eq(out, u))
        return pd.DataFrame(out, index=factual.index)

    def interventional_mean(self, interventions: Interventions, n: int = 200_000) -> pd.Series:
        """Monte-Carlo ``E[x | do(interventions)]`` with many rows (the truth for benchmarks)."""
        return self.do(interventions).sample(n, seed=12345).mean()


def _act(action: object, natural: np.ndarray) -> np.ndarray:
    if action is None:
        return natural
    if action.shift is not None:
        column = natural[:, None]
        shifted = np.asarray(action.shift(column), dtype=np.float64)
        return np.broadcast_to(shifted, column.shape)[:, 0]
    return np.where(action.mask, action.value[:, 0], natural)


@dataclass(frozen=True)
class Redraw:
    """A hard *stochastic* intervention: cut the node's parents and set ``x = loc + scale * u``
    with ``u`` the node's own unit exogenous noise (so Gaussian noise gives ``N(loc, scale**2)``).

    Usable as an intervention value of a :class:`KnownSCM` (``scm.do({"x2": Redraw(1.0, 0.5)})``);
    other nodes keep their noise, so a seeded sample differs from the observational one only at
    the redrawn node and its descendants, and counterfactuals reuse the abducted ``u``. The
    fitted Pyro :class:`~scm.SCM` does not read it.
    """

    loc: float
    scale: float

    def __post_init__(self) -> None:
        if not np.isfinite(self.loc) or not (np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(
                f"Redraw needs a finite loc and a finite scale > 0; got loc={self.loc!r}, "
                f"scale={self.scale!r}"
            )

    def __call__(self, u: np.ndarray) -> np.ndarray:
        return self.loc + self.scale * u


def _split_redraws(interventions: Interventions) -> tuple[dict[str, Redraw], dict[str, object]]:
    """``(redraws, the other interventions)``; redraws act on noise, so ``resolve`` skips them."""
    redraws = {k: v for k, v in interventions.items() if isinstance(v, Redraw)}
    return redraws, {k: v for k, v in interventions.items() if k not in redraws}
