"""``scm.fit(df, inference="nuts" | "svi")``: check the model, then run the chosen inference."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pyro import poutine
from torch import Tensor

from scm.bayes.posterior import Posterior
from scm.frame import to_tensors

if TYPE_CHECKING:
    from collections.abc import Callable

    from scm.scm import SCM

INFERENCE = ("mle", "nuts", "svi")
NUTS_OPTIONS = {
    "num_samples": 500,
    "warmup_steps": 500,
    "num_chains": 4,
    "target_accept_prob": 0.8,
    "max_tree_depth": 10,
    "max_latent": 300,
    "jit_compile": True,
}
"""NUTS defaults. Four chains of 500 draws after 500 warm-up steps give split-R-hat < 1.01
and bulk ESS in the thousands on the linear-Gaussian zoo SCMs (tests/test_bayes_nuts.py);
Vehtari et al., "Rank-normalization, folding, and localization: an improved R-hat"
(Bayesian Analysis, 2021) recommend at least four chains and R-hat < 1.01."""
NUTS_MIN_SAMPLES = 4
"""Fewest NUTS draws per chain: Pyro's diagnostics (``pyro.ops.stats.split_gelman_rubin``)
assert 4, and 1 to 3 draws failed there with a bare ``AssertionError`` after sampling."""
SVI_OPTIONS = {"guide": "normal", "num_samples": 1000}
DEFAULT_SVI_LR = 1e-2
"""Adam's step size for ``inference="svi"`` when ``SCM.fit`` is given none."""


class NutsTooLargeError(ValueError):
    """NUTS was asked for a model with more latent parameters than it handles well."""


def fit_bayes(
    scm: SCM,
    df: pd.DataFrame,
    inference: str,
    *,
    seed: int,
    steps: int,
    lr: float,
    progress: bool,
    **options: Any,
) -> tuple[Posterior, list[dict[str, float]]]:
    """Infer the posterior over the parameters of ``scm``'s Bayesian mechanisms from ``df``.

    Every node is standardised by its mean and std first (the priors speak standardised
    units). ``inference="nuts"`` runs :func:`scm.bayes.nuts.run_nuts` with
    :data:`NUTS_OPTIONS`; ``"svi"`` runs :func:`scm.bayes.svi.run_svi` (``steps`` full-batch
    steps at learning rate ``lr``) with :data:`SVI_OPTIONS`. The options are checked by
    :func:`check_options`, and ``df`` needs 2 rows or more, as for ``inference="mle"``
    (:func:`scm.rows.check_enough_rows`).

    Returns:
        ``(posterior, history)``; ``history`` holds the SVI losses (empty for NUTS).
    """
    if inference not in ("nuts", "svi"):
        raise ValueError(f"inference must be one of {list(INFERENCE)}, got {inference!r}")
    check_bayesian(scm, inference)
    defaults = NUTS_OPTIONS if inference == "nuts" else SVI_OPTIONS
    unknown = set(options) - set(defaults)
    if unknown:
        raise TypeError(
            f"unknown option(s) {sorted(unknown)} for inference={inference!r}; "
            f"allowed: {sorted(defaults)}"
        )
    opts = check_options({**defaults, **options}, inference)
    from scm.rows import check_enough_rows

    check_enough_rows(len(df))
    x = to_tensors(df, scm.dims)
    standardize(scm, x)
    model = conditioned(scm, x)
    if inference == "nuts":
        from scm.bayes.nuts import run_nuts

        check_nuts_size(scm, opts.pop("max_latent"))
        samples, stats = run_nuts(model, seed=seed, progress=progress, **opts)
        return Posterior(samples, "nuts", x, stats, {"inference": "nuts", **opts}), []
    from scm.bayes.svi import run_svi

    samples, history = run_svi(model, seed=seed, steps=steps, lr=lr, progress=progress, **opts)
    settings = {"inference": "svi", "steps": steps, "lr": lr, **opts}
    return Posterior(samples, "svi", x, {}, settings), history


def check_options(opts: dict[str, Any], inference: str) -> dict[str, Any]:
    """Check the numeric NUTS/SVI options; return ``opts`` with numpy numbers made plain.

    Counts are ints >= 1 (numpy integers too, never bools); NUTS needs ``num_samples >=``
    :data:`NUTS_MIN_SAMPLES`, and ``target_accept_prob`` in (0, 1), a probability.

    Raises:
        ValueError: one line naming the option and the value.
    """
    out = dict(opts)
    for name in ("num_samples", "warmup_steps", "num_chains", "max_tree_depth", "max_latent"):
        if name in opts:
            out[name] = _positive_int(name, opts[name])
    if inference == "nuts" and out["num_samples"] < NUTS_MIN_SAMPLES:
        raise ValueError(
            f"num_samples must be >= {NUTS_MIN_SAMPLES} for inference='nuts' (split R-hat "
            f"needs 2 draws in each half of a chain), got {out['num_samples']}"
        )
    if "target_accept_prob" in opts:
        p = opts["target_accept_prob"]
        if not isinstance(p, numbers.Real) or isinstance(p, bool | np.bool_) or not 0.0 < p < 1.0:
            raise ValueError(f"target_accept_prob must be in (0, 1), got {p!r}")
        out["target_accept_prob"] = float(p)
    return out


def _positive_int(name: str, value: object) -> int:
    """``value`` as a plain int >= 1 (numpy integers too, never bools), or ``ValueError``."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool | np.bool_) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def conditioned(scm: SCM, x: dict[str, Tensor]) -> Callable[[], dict[str, Tensor]]:
    """The SCM's model with every node observed at ``x``: its latents are the parameters."""
    n = next(iter(x.values())).shape[0]

    def model() -> dict[str, Tensor]:
        return poutine.condition(scm.model, data=x)(n)

    return model


def standardize(scm: SCM, x: dict[str, Tensor]) -> None:
    """Set every mechanism's standardisation from the data ``x``."""
    from scm.fit import standardize_mechanisms

    standardize_mechanisms(scm, x)


def check_bayesian(scm: SCM, inference: str) -> None:
    """``ValueError`` naming the nodes whose mechanisms have no priors."""
    plain = {n: m.kind for n, m in scm.mechanisms.items() if not getattr(m, "bayesian", False)}
    if plain:
        raise ValueError(
            f"inference={inference!r} needs Bayesian mechanisms (priors on their parameters), "
            f"but nodes {plain} have point-estimate mechanisms; use mechanisms='bayes-linear' "
            "or 'bayes-additive', or inference='mle'"
        )


def check_nuts_size(scm: SCM, max_latent: int) -> None:
    """Raise :class:`NutsTooLargeError` if the SCM has more than ``max_latent`` parameters.

    NUTS's cost per draw grows with the dimension (about ``d^(5/4)`` gradient evaluations,
    Hoffman & Gelman, JMLR 2014) and neural-network posteriors are multimodal, so large
    models are better served by SVI.
    """
    sizes = {n: m.latent_size for n, m in scm.mechanisms.items()}
    total = sum(sizes.values())
    if total > max_latent:
        biggest = max(sizes, key=sizes.__getitem__)
        raise NutsTooLargeError(
            f"NUTS is meant for small models: this SCM has {total} latent parameters "
            f"(max_latent={max_latent}; node {biggest!r} alone has {sizes[biggest]}, "
            f"mechanism {scm.mechanisms[biggest].kind!r}). Use inference='svi' (an autoguide "
            "scales to large models), shrink the mechanisms (e.g. hidden=(8,)), or raise "
            "max_latent"
        )
