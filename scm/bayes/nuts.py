"""NUTS over an SCM's parameters with ``pyro.infer.MCMC``, one chain after another."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pyro
import torch
from pyro.infer import MCMC, NUTS
from torch import Tensor


def run_nuts(
    model: Callable[[], object],
    *,
    num_samples: int,
    warmup_steps: int,
    num_chains: int,
    target_accept_prob: float,
    max_tree_depth: int,
    seed: int,
    progress: bool,
    jit_compile: bool = True,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Run ``num_chains`` NUTS chains (Hoffman & Gelman, JMLR 2014) of ``model``'s latents.

    Chains run sequentially, each seeded from ``(seed, chain)`` and started from its own
    random point (Pyro's ``init_to_uniform``), so R-hat can detect chains that disagree.
    Pyro's own multi-chain mode forks processes; one at a time is as fast on a machine
    whose cores are busy and makes runs reproducible. ``jit_compile`` traces the potential
    with TorchScript (about 2x faster per step on the zoo SCMs, after a second or two of
    compiling); argument validation is off while sampling (the model was checked on the
    data before).

    Returns:
        ``samples`` ``{site: (chains, draws, *shape)}`` and ``sample_stats``
        ``{"diverging", "step_size": (chains, draws)}``.
    """
    per_chain: list[dict[str, Tensor]] = []
    diverging = torch.zeros(num_chains, num_samples, dtype=torch.bool)
    step_size = torch.zeros(num_chains, num_samples)
    for chain in range(num_chains):
        steps: list[float] = []

        def hook(
            kernel: NUTS, params: object, stage: str, i: int, steps: list[float] = steps
        ) -> None:
            if stage == "Sample":
                steps.append(float(kernel.step_size))

        chain_seed = int(np.random.SeedSequence([seed, chain]).generate_state(1)[0])
        with (
            torch.random.fork_rng(devices=[]),
            pyro.validation_enabled(False),
            warnings.catch_warnings(),
        ):
            # Pyro's jit_compile path calls torch.jit.trace, which torch 2.13 deprecates; the
            # traced potential still works, and there is nothing for a caller to change.
            warnings.filterwarnings("ignore", r".*torch\.jit\.trace", DeprecationWarning)
            torch.manual_seed(chain_seed)
            kernel = NUTS(
                model,
                target_accept_prob=target_accept_prob,
                max_tree_depth=max_tree_depth,
                jit_compile=jit_compile,
                ignore_jit_warnings=True,
            )
            mcmc = MCMC(
                kernel,
                num_samples=num_samples,
                warmup_steps=warmup_steps,
                num_chains=1,
                disable_progbar=not progress,
                hook_fn=hook,
            )
            mcmc.run()
        per_chain.append({k: v.detach() for k, v in mcmc.get_samples().items()})
        for t in mcmc.diagnostics()["divergences"]["chain 0"]:
            diverging[chain, min(max(int(t), 0), num_samples - 1)] = True
        step_size[chain] = torch.tensor(steps[:num_samples])
    samples = {k: torch.stack([c[k] for c in per_chain]) for k in per_chain[0]}
    return samples, {"diverging": diverging, "step_size": step_size}
