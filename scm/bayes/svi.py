"""SVI over an SCM's parameters with a Pyro autoguide; posterior draws from the guide."""

from __future__ import annotations

import math
from collections.abc import Callable

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoMultivariateNormal, AutoNormal
from pyro.optim import ClippedAdam
from torch import Tensor
from tqdm.auto import tqdm

GUIDES = {"normal": AutoNormal, "mvn": AutoMultivariateNormal}


def run_svi(
    model: Callable[[], object],
    *,
    guide: str,
    num_samples: int,
    steps: int,
    lr: float,
    seed: int,
    progress: bool,
) -> tuple[dict[str, Tensor], list[dict[str, float]]]:
    """Fit an autoguide to ``model``'s posterior by maximising the ELBO; draw from it.

    ``guide="normal"`` is ``AutoNormal`` (mean-field Gaussian in unconstrained space),
    ``"mvn"`` is ``AutoMultivariateNormal`` (full covariance; captures correlated weights).
    Full-batch steps with ``ClippedAdam`` (learning rate decaying to ``lr / 10``).

    Returns:
        ``samples`` ``{site: (1, num_samples, *shape)}`` (one "chain" of independent draws)
        and the history ``[{"step", "elbo"}]`` (ELBO in nats, every 10th step).
    """
    if guide not in GUIDES:
        raise ValueError(f"guide must be one of {sorted(GUIDES)}, got {guide!r}")
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be positive, got {lr!r}")
    history: list[dict[str, float]] = []
    with pyro.get_param_store().scope(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        autoguide = GUIDES[guide](model)
        optim = ClippedAdam({"lr": lr, "clip_norm": 10.0, "lrd": 0.1 ** (1 / steps)})
        svi = SVI(model, autoguide, optim, Trace_ELBO())
        for step in tqdm(range(steps), desc="svi", disable=not progress, leave=False):
            loss = svi.step()
            if not math.isfinite(loss):
                raise FloatingPointError(f"ELBO became {loss} at step {step}; lower lr (now {lr})")
            if step % 10 == 0 or step == steps - 1:
                history.append({"step": step, "elbo": -loss})
        with torch.no_grad():
            draws = [autoguide() for _ in range(num_samples)]
    samples = {k: torch.stack([d[k] for d in draws])[None] for k in draws[0]}
    return samples, history
