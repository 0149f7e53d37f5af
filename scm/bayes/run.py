"""What the command line does with a Bayesian fit: save it, write ArviZ files, report."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from scm.bayes.draws import Draws

if TYPE_CHECKING:
    from scm.interventions import Interventions
    from scm.scm import SCM


def save_run(scm: SCM, out: str | os.PathLike[str], *, seed: int = 0) -> str:
    """Save ``scm`` to ``out`` plus ``posterior.nc`` (ArviZ InferenceData) and ``ppc.png``.

    Returns:
        A report: ``az.summary`` of the posterior (R-hat, ESS) and, after NUTS, the number
        of divergent transitions.
    """
    from scm.bayes.arviz import plot_ppc, summary, to_inference_data, write_netcdf

    root = Path(out)
    scm.save(root)
    idata = to_inference_data(scm, seed=seed)
    write_netcdf(idata, root / "posterior.nc")
    plot_ppc(scm, root / "ppc.png", seed=seed)
    posterior = scm.posterior
    assert posterior is not None
    lines = [
        f"{posterior.method}: {posterior.num_chains} chain(s) x {posterior.num_draws} draws",
        summary(scm).to_string(),
    ]
    if "diverging" in posterior.sample_stats:
        lines.append(f"divergent transitions: {int(posterior.sample_stats['diverging'].sum())}")
    lines.append(f"wrote {root / 'posterior.nc'} and {root / 'ppc.png'}")
    return "\n".join(lines)


def effect_table(
    scm: SCM, interventions: Interventions, *, n: int, seed: int, max_draws: int = 500
) -> pd.DataFrame:
    """Posterior of ``E[x | do(interventions)]`` per column: ``mean``, ``hdi_lower``,
    ``hdi_upper`` (94% HDI), from at most ``max_draws`` evenly thinned posterior draws with
    ``n`` Monte-Carlo rows each."""
    from scm.bayes.queries import means_draws

    posterior = scm.posterior
    if posterior is None:
        raise ValueError("effect_table needs a Bayesian fit (inference='nuts' or 'svi')")
    scm.posterior = posterior.thin(max(1, math.ceil(max_draws / posterior.num_chains)))
    try:
        draws: Draws = means_draws(scm.do(interventions), n, seed)
    finally:
        scm.posterior = posterior
    hdi = draws.interval(0.94)
    return pd.DataFrame(
        {"mean": draws.mean(), "hdi_lower": hdi["lower"], "hdi_upper": hdi["upper"]}
    )
