"""The structural causal model: a DAG of mechanisms, run as an explicit Pyro program."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import pyro
import torch
from pyro import poutine
from pyro.nn import PyroModule
from torch import Tensor, nn

from scm.counterfactual import abduct_noise, predict, recomputed
from scm.fit import DEFAULT_BATCH_SIZE, DEFAULT_LR
from scm.frame import check_frame, replace_columns, split_columns, to_frame, to_tensors
from scm.graph import GraphLike, as_parent_dict, descendants, to_networkx
from scm.handlers import act, split_hard
from scm.interventions import (
    Action,
    Interventions,
    align_rows,
    check_interventions,
    check_n,
    check_targets,
    resolve,
    rows_of,
)
from scm.log_nodes import (
    check_log_nodes,
    check_positive,
    check_softly_set_positive,
    declared_scales,
    set_log_scales,
)
from scm.mechanisms import Mechanism, MechanismName, make_mechanism
from scm.mechanisms.categorical import check_category_codes
from scm.names import check_node_name
from scm.overlap import warn_off_support
from scm.point_mass import check_within_atoms, exact_atoms
from scm.untrained import warn_if_untrained

if TYPE_CHECKING:
    from scm.bayes.draws import Draws
    from scm.bayes.posterior import Posterior



class SCM(nn.Module):
    """A structural causal model whose mechanisms are normalizing flows (or simpler).

    ``scm.model(n)`` is the Pyro program: inside ``pyro.plate("rows", n)`` it calls
    ``pyro.sample(node, p(node | parents))`` once per node in topological order, each
    conditional a ``TransformedDistribution`` of standard-normal noise, and returns
    ``{node: value (n, dim)}``.

    Args:
        graph: ``{child: [parents]}``, a ``networkx.DiGraph`` or ``(parent, child)`` edges.
        mechanisms: ``"flow"``, ``"linear"``, ``"additive"``, ``"categorical"``, ``"auto"``, or
            ``{node: Mechanism | name}`` (nodes left out of the dict get ``"flow"``). ``"auto"``
            fits a flow and keeps a linear-Gaussian mechanism instead where the flow's
            held-out likelihood is no higher (decided per node by :meth:`fit`), and chooses
            the flow's conditioner the same way (:data:`scm.auto.AUTO_CONDITIONERS`); a
            node whose data are integer codes ``0..k-1`` (``k <= 10``, 0/1 included) becomes
            categorical (:func:`scm.auto.categorical_for_coded_columns`).
        dims: widths of vector nodes, e.g. ``{"z": 3}``; others are scalars.
        log_nodes: nodes on the log scale (:mod:`scm.log_nodes`): positive variables modelled
            as ``exp`` of their mechanism's output, every child reading their logs. Besides
            these, :meth:`fit` lets each ``"auto"`` node take its own value and read its
            parents on the log scale where its linear-Gaussian conditional is clearly more
            likely so (:func:`scm.log_nodes.choose_log_scales`). ``None``: every node on its
            own scale, ``"auto"``'s choice off too (e.g. to intervene at 0 on a positive
            variable).
        seed: seeds the initial weights.
        **options: passed to every mechanism built from a name (e.g. ``hidden=(32, 32)``).

    Example:
        >>> scm = SCM({"x1": [], "x2": ["x1"]}, mechanisms="linear")
        >>> scm.sample(4, seed=0).shape
        (4, 2)
    """

    def __init__(
        self,
        graph: GraphLike,
        mechanisms: MechanismName | Literal["auto"] | Mapping[str, Mechanism | str] = "flow",
        *,
        dims: Mapping[str, int] | None = None,
        log_nodes: Sequence[str] | None = (),
        seed: int = 0,
        **options: Any,
    ) -> None:
        super().__init__()
        self.parents = as_parent_dict(graph)
        for node in self.parents:
            check_node_name(node)
        dims = dict(dims or {})
        unknown = set(dims) - set(self.parents)
        if unknown:
            raise ValueError(f"dims names unknown nodes {sorted(unknown)}")
        for node, d in dims.items():
            if not (isinstance(d, int) and d >= 1):
                raise ValueError(f"dimension of node {node!r} must be a positive int, got {d!r}")
        self.dims = {n: dims.get(n, 1) for n in self.parents}
        self.history: list[dict[str, float]] = []
        self.auto_nodes = _auto_nodes(mechanisms, self.parents)
        self.auto_conditioners = not ({"hidden", "activation"} & set(options))
        """Whether ``fit`` lets ``"auto"`` nodes choose their flow's conditioner among
        :data:`scm.auto.AUTO_CONDITIONERS` (not when ``hidden`` or ``activation`` is given)."""
        self.seed = seed
        """Seeds the initial weights, and those of mechanisms ``"auto"`` builds during ``fit``."""
        self._built_from = (mechanisms, dict(options), seed, frozenset(self.auto_nodes))
        with _seeded(seed):
            built = {node: self._build(node, mechanisms, options) for node in self.parents}
        # Bayesian mechanisms are PyroModules: a PyroModule container names their parameter
        # sites "{node}.{parameter}".
        bayesian = any(getattr(m, "bayesian", False) for m in built.values())
        self.mechanisms = (PyroModule[nn.ModuleDict] if bayesian else nn.ModuleDict)(built)
        self.untrained: dict[str, Mechanism] = {
            k: m for k, m in built.items()
            if self.declared_kind(k) is not None and not getattr(m, "bayesian", False)}
        """The mechanisms built by name that no fit has trained, by node (queries warn while a
        node still holds its own, :mod:`scm.untrained`); empty after ``fit`` and ``load``."""
        self.posterior: Posterior | None = None
        """Posterior draws after ``fit(inference="nuts" | "svi")``; None for point estimates."""
        self.chooses_log_scales = log_nodes is not None
        """Whether ``fit`` lets ``"auto"`` nodes choose log scales (not with ``log_nodes=None``)."""
        self.declared_log_nodes = check_log_nodes(self, log_nodes or [])
        """The nodes declared on the log scale (``log_nodes``); see :attr:`log_nodes`."""
        self.fixed_log_scales = declared_scales(self, self.declared_log_nodes)
        """The log settings that ``fit`` keeps (:func:`scm.log_nodes.log_scales`'s form): the
        declared nodes', or a loaded SCM's; ``"auto"`` nodes add their own choices."""
        set_log_scales(self, self.fixed_log_scales)

    def restart_auto_nodes(self) -> None:
        """Give every ``"auto"`` node back the flow it was built with (the same initial
        weights) and its place in :attr:`auto_nodes`, so that a fit makes its own choices.

        ``fit`` calls it first: a fit replaces ``"auto"`` nodes' flows with linear or
        categorical mechanisms, and a second fit on other data would otherwise start from
        (and keep) the first one's choices. The chain's data made every node linear, and a
        refit on the triangle's data then answered counterfactuals with RMSE .91 (x3, in
        stds) against .07 for a new SCM."""
        spec, options, seed, auto_nodes = self._built_from
        if auto_nodes:
            with _seeded(seed):  # the constructor's stream of initial weights, node by node
                built = {node: self._build(node, spec, options) for node in self.parents}
            for node in auto_nodes:
                self.mechanisms[node] = built[node]
            self.auto_nodes = set(auto_nodes)
        set_log_scales(self, self.fixed_log_scales)

    def declared_kind(self, node: str) -> str | None:
        """The name ``node``'s mechanism was declared by (``"flow"``, ``"categorical"``,
        ``"auto"``, ...), or ``None`` for a mechanism object."""
        spec = self._built_from[0]
        choice = spec.get(node, "flow") if isinstance(spec, Mapping) else spec
        return choice if isinstance(choice, str) else None

    def _build(self, node: str, spec: Any, options: dict[str, Any]) -> Mechanism:
        context_dim = sum(self.dims[p] for p in self.parents[node])
        choice = spec.get(node, "flow") if isinstance(spec, Mapping) else spec
        if choice == "auto":
            choice = "flow"  # fit() may swap in a linear mechanism; see auto_nodes
        if isinstance(spec, Mapping):
            extra = set(spec) - set(self.parents)
            if extra:
                raise ValueError(f"mechanisms given for unknown nodes {sorted(extra)}")
        if isinstance(choice, Mechanism):
            if (choice.dim, choice.context_dim) != (self.dims[node], context_dim):
                raise ValueError(
                    f"mechanism for {node!r} has dim={choice.dim}, context_dim="
                    f"{choice.context_dim}; the graph needs dim={self.dims[node]}, "
                    f"context_dim={context_dim}"
                )
            return choice
        if not isinstance(choice, str):
            raise TypeError(f"mechanism for {node!r} must be a name or a Mechanism, got {choice!r}")
        try:
            return make_mechanism(choice, self.dims[node], context_dim, **options)
        except ValueError as err:  # "a hurdle node has dimension 1, got 3": which node?
            raise ValueError(f"node {node!r}: {err}") from None

    # ----------------------------------------------------------------- the Pyro program
    @property
    def nodes(self) -> list[str]:
        """Node names in topological order."""
        return list(self.parents)

    def model(self, n: int = 1) -> dict[str, Tensor]:
        """The SCM as a Pyro program over ``n`` rows; returns ``{node: value (n, dim)}``."""
        values: dict[str, Tensor] = {}
        rows = pyro.plate("rows", n)
        for node, parents in self.parents.items():
            context = torch.cat([values[p] for p in parents], -1) if parents else None
            # The mechanism runs outside the plate, so a Bayesian mechanism's parameter
            # sites are global; only the node's own site is batched over rows.
            fn = self.mechanisms[node](context)
            with rows:
                value = pyro.sample(node, fn)
            values[node] = _as_rows(value, n, self.dims[node])
        return values

    @property
    def log_nodes(self) -> list[str]:
        """The nodes on the log scale (value ``exp`` of the mechanism's output), in topological
        order: the declared ones and those ``fit`` chose for ``"auto"`` nodes
        (:mod:`scm.log_nodes`; which parents each mechanism reads as logs:
        :func:`scm.log_nodes.log_scales`)."""
        return [k for k in self.nodes if self.mechanisms[k].log_value]

    @property
    def is_bayesian(self) -> bool:
        """Whether every mechanism has priors on its parameters (``fit`` may use NUTS / SVI)."""
        return all(getattr(m, "bayesian", False) for m in self.mechanisms.values())

    def to_networkx(self):  # noqa: ANN201 - networkx has no type stubs
        """The causal DAG as a ``networkx.DiGraph``."""
        return to_networkx(self.parents)

    # ----------------------------------------------------------------- queries
    def sample(self, n: int, seed: int = 0) -> pd.DataFrame | Draws:
        """Draw ``n`` observational rows; returns a DataFrame with a column per node
        (posterior :class:`~scm.bayes.draws.Draws` after a Bayesian fit)."""
        return self.do({}).sample(n, seed=seed)

    def do(self, interventions: Interventions) -> Intervened:
        """Return the intervened model ``do(interventions)``; see :class:`Intervened`."""
        check_interventions(interventions, self.dims)
        check_category_codes(self.mechanisms, interventions, "intervention")
        check_positive(self, interventions, "intervention")
        return Intervened(self, dict(interventions))

    def ate(
        self,
        treatment: str,
        outcome: str,
        a: float = 0.0,
        b: float = 1.0,
        n: int = 10_000,
        seed: int = 0,
    ) -> float | np.ndarray | Draws:
        """``E[outcome | do(treatment=b)] - E[outcome | do(treatment=a)]`` by Monte Carlo.

        Both arms use the same seed (common random numbers), which cancels most noise. A
        ``UserWarning`` names the nodes whose parents an arm sends where the fitted model has
        no observational rows (:func:`scm.overlap.warn_off_support`: weak overlap, the answer
        extrapolates).
        After a Bayesian fit, returns :class:`~scm.bayes.draws.Draws` of the effect, one per
        posterior draw (dims ``chain, draw``).
        """
        check_targets({treatment: a, outcome: a}, self.dims)
        if self.posterior is not None:
            from scm.bayes.queries import ate_draws

            return ate_draws(self, treatment, outcome, a=a, b=b, n=n, seed=seed)
        effect = self._ate(treatment, outcome, a, b, n, seed)
        warn_if_untrained(self, "ate")
        # one check per distinct arm, against one set of observational draws
        warn_off_support(self, {f"ate: do({treatment}={v:g})": {treatment: v}
                                for v in dict.fromkeys((a, b))})
        return effect

    def _ate(
        self, treatment: str, outcome: str, a: float, b: float, n: int, seed: int
    ) -> float | np.ndarray:
        # float64 before averaging: a float32 mean of outcomes near 1e7 lost the effect
        hi = self.do({treatment: b}).sample_tensors(n, seed)[outcome].double().mean(0)
        lo = self.do({treatment: a}).sample_tensors(n, seed)[outcome].double().mean(0)
        diff = (hi - lo).numpy()
        return float(diff[0]) if diff.size == 1 else diff

    def log_prob(self, df: pd.DataFrame) -> np.ndarray:
        """Per-row log-likelihood ``log p(x)`` (sum over nodes); returns float64 ``(n,)``.

        After a Bayesian fit: the log posterior predictive density
        ``log mean_s p(x | theta_s)`` over the posterior draws.
        """
        x = to_tensors(df, self.dims)
        check_category_codes(self.mechanisms, x, "rows to score")
        check_positive(self, x, "data")
        check_within_atoms(self, x, "rows to score")
        warn_if_untrained(self, "log_prob")
        if self.posterior is not None:
            from scm.bayes.queries import log_predictive_density

            return log_predictive_density(self, x)
        with torch.no_grad():
            tr = poutine.trace(poutine.condition(self.model, data=x)).get_trace(len(df))
            total = sum(tr.nodes[node]["fn"].log_prob(x[node]) for node in self.parents)
        return total.double().numpy()

    def abduct(self, df: pd.DataFrame, nodes: list[str] | None = None) -> dict[str, Tensor]:
        """Return the exogenous noise ``{node: u (n, dim)}`` that reproduces ``df`` exactly.

        Each node's noise is its conditional's inverse at the observed value and parents (the
        noise a trace of the model conditioned on ``df`` holds; see :mod:`scm.counterfactual`).
        """
        x = to_tensors(df, self.dims, what="factual data")
        check_category_codes(self.mechanisms, x, "factual data")
        check_positive(self, x, "factual data")
        check_within_atoms(self, x, "factual data")
        warn_if_untrained(self, "abduct")
        return abduct_noise(self, x, nodes or self.nodes)

    def counterfactual(
        self, factual: pd.DataFrame, interventions: Interventions
    ) -> pd.DataFrame | Draws:
        """Counterfactual rows of ``factual`` under ``interventions``: abduct, act, predict.

        Exact (to float error) for invertible mechanisms. Nodes neither intervened on nor
        downstream of an intervention keep their factual values bit for bit. Values may differ
        per row (one intervention per row; NaN leaves that row's node alone).

        Returns:
            A DataFrame like ``factual`` (same columns and index); after a Bayesian fit,
            :class:`~scm.bayes.draws.Draws` with one such table per posterior draw (dims
            ``chain, draw, row``).
        """
        if self.posterior is not None:
            from scm.bayes.queries import counterfactual_draws

            return counterfactual_draws(self, factual, interventions)
        frame = self._counterfactual_frame(factual, interventions)
        warn_if_untrained(self, "counterfactual")
        return frame

    def _counterfactual_frame(
        self, factual: pd.DataFrame, interventions: Interventions
    ) -> pd.DataFrame:
        matrix = check_frame(factual, self.dims, what="factual data")
        interventions = align_rows(interventions, self.dims, factual.index)
        x = split_columns(matrix, self.dims)
        check_category_codes(self.mechanisms, x, "factual data")
        check_positive(self, x, "factual data")
        check_within_atoms(self, x, "factual data")
        n = len(factual)
        actions = resolve(interventions, self.dims, n)  # validates once, before any chunk
        check_category_codes(self.mechanisms, interventions, "intervention")
        check_positive(self, interventions, "intervention")
        # Rows are independent; blocks of _CHUNK rows keep activations in cache (about 1.6x
        # the rows/s of one 100k-row pass, measured on the 10-node zoo DAG).
        parts = [
            self._counterfactual(
                {k: v[i : i + _CHUNK] for k, v in x.items()},
                {k: _rows_slice(a, i, i + _CHUNK) for k, a in actions.items()},
            )
            for i in range(0, n, _CHUNK)
        ]
        changed = parts[0][1]
        values = {k: torch.cat([p[0][k] for p in parts]) for k in changed}
        return exact_atoms(self, replace_columns(factual, matrix, self.dims, values))

    def _counterfactual(
        self, x: Mapping[str, Tensor], interventions: Interventions | Mapping[str, Action]
    ) -> tuple[dict[str, Tensor], set[str]]:
        """Counterfactual tensors ``{node: (n, dim)}`` and the set of nodes that may change."""
        n = next(iter(x.values())).shape[0]
        actions = (
            dict(interventions)
            if all(isinstance(a, Action) for a in interventions.values())
            else resolve(interventions, self.dims, n)
        )
        changed = set(actions) | descendants(self.parents, actions)
        noise = abduct_noise(self, x, recomputed(self, actions, changed),
                             for_prediction=True)
        values = predict(self, x, noise, changed, actions)
        check_softly_set_positive(self, values, actions)
        return values, changed

    # ----------------------------------------------------------------- fitting, files
    @property
    def held_out_nll(self) -> float:
        """The held-out negative log-likelihood (nats per row) of the mechanisms ``fit`` returned,
        on its early-stopping rows, before the closing pass over every row
        (:func:`scm.fit.refine_on_all_rows`): after ``"auto"``'s choices and any restored
        weights (the history's ``fitted_val_nll``; a history without it gives its last
        ``val_nll``); NaN when nothing was held out."""
        for key in ("fitted_val_nll", "val_nll"):
            scores = [h[key] for h in self.history if math.isfinite(h.get(key, math.nan))]
            if scores:
                return scores[-1]
        return math.nan

    def fit(
        self,
        df: pd.DataFrame,
        *,
        epochs: int | None = None,
        steps: int = 1500,
        batch_size: int = DEFAULT_BATCH_SIZE,
        lr: float | None = None,
        seed: int = 0,
        val_fraction: float = 0.1,
        patience: int | None = None,
        progress: bool = True,
        inference: Literal["mle", "nuts", "svi"] = "mle",
        **bayes_options: Any,
    ) -> SCM:
        """Fit every mechanism by maximum likelihood (SVI, empty guide); returns ``self``.

        The defaults are meant to be used as they are: ``epochs`` and ``patience`` default
        to a budget of about 1,500 optimiser steps of ``batch_size`` rows
        (:data:`scm.fit.DEFAULT_BATCH_SIZE`) with early stopping on a held-out split;
        ``lr`` defaults to :data:`scm.fit.DEFAULT_LR` (1e-2 for ``inference="svi"``). After
        early stopping, the trained mechanisms take a tenth of the epochs run again over every
        row, the held-out ones included, within the epoch budget
        (:data:`scm.fit.REFINE_FRACTION`).
        See :func:`scm.fit.fit_mle`; ``self.history`` gets the per-epoch losses
        (:attr:`held_out_nll`: the last held-out score).

        ``inference="nuts"`` or ``"svi"`` (Bayesian mechanisms such as ``"bayes-linear"``
        only) infers the posterior over the mechanisms' parameters instead and stores it in
        ``self.posterior``; queries then return posterior draws. See
        :func:`scm.bayes.fit.fit_bayes` for ``bayes_options`` (``num_samples``,
        ``warmup_steps``, ``num_chains``, ``guide``, ...); ``seed``, ``steps``, ``lr`` and
        ``progress`` apply to them too.
        """
        if inference != "mle":
            from scm.bayes.fit import DEFAULT_SVI_LR, fit_bayes

            if self.declared_log_nodes:
                raise ValueError(
                    f"log_nodes {self.declared_log_nodes} are fitted by inference='mle' only, "
                    f"got inference={inference!r}"
                )

            if epochs is not None or patience is not None:
                raise ValueError(
                    f"epochs and patience apply to inference='mle'; inference={inference!r} "
                    "takes steps (svi) or num_samples and warmup_steps (nuts)"
                )

            self.posterior, self.history = fit_bayes(
                self,
                df,
                inference,
                seed=seed,
                steps=steps,
                lr=DEFAULT_SVI_LR if lr is None else lr,
                progress=progress,
                **bayes_options,
            )
            return self
        if bayes_options:
            raise TypeError(
                f"fit() got options {sorted(bayes_options)} that only apply to "
                "inference='nuts' or 'svi'; inference='mle' takes epochs, steps, batch_size, "
                "lr, seed, val_fraction, patience, progress"
            )
        if any(getattr(m, "bayesian", False) for m in self.mechanisms.values()):
            raise ValueError(
                "Bayesian mechanisms (priors on their parameters) need inference='nuts' or "
                "'svi', got inference='mle'; for point estimates use mechanisms='linear' or "
                "'additive'"
            )
        from scm.fit import fit_mle

        self.restart_auto_nodes()
        self.history = fit_mle(
            self,
            df,
            epochs=epochs,
            batch_size=batch_size,
            lr=DEFAULT_LR if lr is None else lr,
            seed=seed,
            val_fraction=val_fraction,
            patience=patience,
            progress=progress,
            steps=steps,
        )
        self.untrained = {}
        return self

    def save(self, path: str) -> None:
        """Write ``path/scm.json`` (versioned spec) and ``path/weights.safetensors``.

        A Bayesian fit also writes its draws: ``posterior.safetensors`` + ``posterior.json``.
        """
        from scm.bayes.io import remove_posterior, save_posterior
        from scm.io import save_scm

        save_scm(self, path)
        if self.posterior is not None:
            save_posterior(self.posterior, path)
        else:
            remove_posterior(path)

    @classmethod
    def load(cls, path: str) -> SCM:
        """Read an SCM written by :meth:`save` (no pickle involved)."""
        from scm.bayes.io import load_posterior
        from scm.io import load_scm

        scm = load_scm(path)
        scm.posterior = load_posterior(path, scm)
        scm.untrained = {}
        return scm

    def to_inference_data(
        self, df: pd.DataFrame | None = None, *, predictive: bool = True, seed: int = 0
    ) -> Any:
        """The Bayesian fit as ArviZ ``InferenceData``; see
        :func:`scm.bayes.arviz.to_inference_data`."""
        from scm.bayes.arviz import to_inference_data

        return to_inference_data(self, df, predictive=predictive, seed=seed)

    def __repr__(self) -> str:
        kinds = {n: m.kind for n, m in self.mechanisms.items()}
        logs = f", log_nodes={self.log_nodes}" if self.log_nodes else ""
        return f"SCM(parents={self.parents}, mechanisms={kinds}, dims={self.dims}{logs})"


class Intervened:
    """``do(interventions)`` applied to an :class:`SCM`; shares the SCM's mechanisms.

    Hard interventions that set all rows run through :func:`pyro.poutine.do`; soft
    interventions (callables on the mechanism's output) and per-row values with NaN gaps
    run through :class:`scm.handlers.act`.
    """

    def __init__(self, scm: SCM, interventions: dict[str, Any]) -> None:
        self.scm = scm
        self.interventions = interventions

    def do(self, interventions: Interventions) -> Intervened:
        """Add more interventions (later ones override earlier ones on the same node)."""
        return self.scm.do({**self.interventions, **interventions})

    def model(self, n: int = 1) -> dict[str, Tensor]:
        """The intervened Pyro program over ``n`` rows."""
        actions = resolve(self.interventions, self.scm.dims, n)
        hard, rest = split_hard(actions, torch.get_default_dtype())
        with act(rest):
            return poutine.do(self.scm.model, data=hard)(n)

    def sample_tensors(self, n: int, seed: int = 0) -> dict[str, Tensor]:
        """Draw ``n`` rows as ``{node: tensor (n, dim)}`` with ``torch`` seeded by ``seed``."""
        n = check_n(n)
        rows = rows_of(self.interventions, self.scm.dims)
        if rows is not None and rows != n:
            raise ValueError(f"per-row interventions have {rows} rows but n={n} were requested")
        with _seeded(seed), torch.no_grad():
            values = self.model(n)
        check_softly_set_positive(self.scm, values, self.interventions)
        return values

    def sample(self, n: int, seed: int = 0) -> pd.DataFrame | Draws:
        """Draw ``n`` rows from the intervened model; returns a DataFrame.

        After a Bayesian fit, returns :class:`~scm.bayes.draws.Draws`: ``n`` rows per
        posterior draw (dims ``chain, draw, row``), every draw with the same noise.
        """
        if self.scm.posterior is not None:
            from scm.bayes.queries import sample_draws

            return sample_draws(self, n, seed)
        frame = exact_atoms(self.scm, to_frame(self.sample_tensors(n, seed), self.scm.dims))
        warn_if_untrained(self.scm, "sample")
        return frame


_CHUNK = 16384


def _auto_nodes(spec: Any, parents: Mapping[str, list[str]]) -> set[str]:
    if isinstance(spec, Mapping):
        return {k for k, v in spec.items() if v == "auto"}
    return set(parents) if spec == "auto" else set()


def _rows_slice(action: Action, start: int, stop: int) -> Action:
    value = None if action.value is None else action.value[start:stop]
    return Action(value=value, mask=action.mask[start:stop], shift=action.shift)


def _as_rows(value: Tensor, n: int, dim: int) -> Tensor:
    """Broadcast a site value (e.g. a user's scalar ``poutine.do`` value) to ``(n, dim)``."""
    value = torch.as_tensor(value, dtype=torch.get_default_dtype())
    if value.dim() == 1 and dim == 1 and value.shape[0] == n:
        value = value[:, None]
    try:
        return value.expand(n, dim)
    except RuntimeError as err:
        raise ValueError(
            f"site value of shape {tuple(value.shape)} does not fit ({n}, {dim})"
        ) from err


@contextmanager
def _seeded(seed: int):  # noqa: ANN202 - generator context manager
    """Seed torch's global generator inside the block and restore it after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
