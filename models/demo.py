"""``cauflow demo``: fit a flow SCM on the pendulum factors and ask it causal questions, then
train CauF-VAE briefly on pendulum images and intervene on a factor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from scm import SCM, zoo


def run_demo(
    out: Path,
    *,
    rows: int = 5000,
    steps: int = 1500,
    vae_epochs: int = 3,
    seed: int = 0,
    echo: Callable[[str], None] = print,
) -> dict:
    """Fit, query and plot; returns the numbers it printed (for tests)."""
    truth = zoo.pendulum()
    data = truth.sample(rows, seed=seed)
    echo(f"pendulum SCM {truth.graph}; fitting flow mechanisms on {rows} rows ...")
    model = SCM(truth.graph, mechanisms="flow", seed=seed).fit(data, steps=steps, seed=seed)
    echo(f"  {len(model.history)} epochs, held-out NLL {model.held_out_nll:.3f} nats/row")

    light = float(np.quantile(data["light"], 0.8))
    query = {"light": light}
    fitted = model.do(query).sample(20_000, seed=seed).mean()
    exact = truth.interventional_mean(query)
    echo(f"\ndo(light = {light:.3f} rad): interventional means, model vs truth")
    for node in truth.nodes:
        echo(f"  E[{node:10s}] model {fitted[node]:8.4f}   truth {exact[node]:8.4f}")

    factual = truth.sample(5, seed=seed + 1)
    cf_model = model.counterfactual(factual, query)
    cf_true = truth.counterfactual(factual, query)
    echo("\ncounterfactual shadow length had the light been at that angle (5 scenes)")
    echo("  factual    model      truth")
    for f, m, t in zip(
        factual["shadow_len"], cf_model["shadow_len"], cf_true["shadow_len"], strict=True
    ):
        echo(f"  {f:8.3f}  {m:8.3f}  {t:8.3f}")

    out.mkdir(parents=True, exist_ok=True)
    picture = out / "pendulum_marginals.png"
    plot_marginals(
        data,
        model.do(query).sample(rows, seed=seed),
        truth.do(query).sample(rows, seed=seed),
        picture,
        title=f"do(light={light:.2f})",
    )
    echo(f"\nwrote {picture}")
    result = {"fitted": fitted, "exact": exact, "cf_model": cf_model, "cf_true": cf_true}
    if vae_epochs:
        result["grid"] = run_vae_demo(out, epochs=vae_epochs, seed=seed, echo=echo)
    return result


def run_vae_demo(out: Path, *, epochs: int, seed: int, echo: Callable[[str], None]) -> Path:
    """Train CauF-VAE briefly on 64 px pendulum images; write a counterfactual grid PNG."""
    import shutil

    from models.data import load_dataset
    from models.intervene import intervene_grid
    from models.train_vae import train_run

    echo(f"\nCauF-VAE on rendered pendulum images (64 px, {epochs} epochs) ...")
    run = out / "caufvae_run"
    shutil.rmtree(run, ignore_errors=True)
    result = train_run(run, dataset="pendulum", epochs=epochs, image_size=64, seed=seed)
    echo(f"  last epoch: {result.history[-1]}")
    test = load_dataset("pendulum", size=64, split="test", progress=False)
    light = float(np.quantile(test.factors[:, test.factor_names.index("light")], 0.8))
    grid = intervene_grid(run, {"light": light}, n=6, out=out / "caufvae_do_light.png")
    echo(
        f"wrote {grid}: rows = test images; columns = original, reconstruction, "
        f"do(light={light:.2f}) decoded, true counterfactual render"
    )
    return grid


def plot_marginals(
    observed: pd.DataFrame, model: pd.DataFrame, truth: pd.DataFrame, path: Path, *, title: str
) -> None:
    """A PNG with one histogram panel per node: observational, model-interventional, true."""
    from matplotlib.figure import Figure

    cols = list(observed.columns)
    fig = Figure(figsize=(3.2 * len(cols), 3.0), layout="constrained")
    for ax, col in zip(fig.subplots(1, len(cols), squeeze=False)[0], cols, strict=True):
        bins = np.histogram_bin_edges(pd.concat([observed[col], model[col], truth[col]]), 50)
        ax.hist(observed[col], bins, density=True, alpha=0.35, color="grey", label="observational")
        ax.hist(
            truth[col], bins, density=True, histtype="step", lw=2, color="k", label=f"true {title}"
        )
        ax.hist(
            model[col],
            bins,
            density=True,
            histtype="step",
            lw=1.5,
            color="C3",
            label=f"model {title}",
        )
        ax.set_title(col)
    fig.axes[0].legend(fontsize=7)
    fig.savefig(path, dpi=100)
