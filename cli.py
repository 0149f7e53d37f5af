"""The cauflow command line: ``cauflow --help``.

Commands stay thin: parse, call the library, print. Heavy imports (torch, pyro) happen
inside each command so that ``--help`` is instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="cauflow: structural causal models with normalizing flows on Pyro.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _pin_threads() -> None:
    import torch

    torch.set_num_threads(1)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's pictures.")] = Path("demo_out"),
    rows: Annotated[int, typer.Option(help="Training rows drawn from the pendulum SCM.")] = 5000,
    steps: Annotated[int, typer.Option(help="Optimiser-step budget of the fit.")] = 1500,
    vae_epochs: Annotated[
        int, typer.Option(help="Epochs of the CauF-VAE image stage (0 skips it).")
    ] = 3,
    seed: Annotated[int, typer.Option(help="Seed for data, fitting and queries.")] = 0,
) -> None:
    """Fit a flow SCM on the built-in pendulum-factor SCM; print a do-query and a counterfactual
    beside the true answers; write a PNG of observational vs interventional marginals. Then
    train CauF-VAE on rendered pendulum images and write an intervention grid PNG."""
    _pin_threads()
    from models.demo import run_demo

    run_demo(out, rows=rows, steps=steps, vae_epochs=vae_epochs, seed=seed, echo=typer.echo)


@app.command()
def zoo(
    name: Annotated[
        str, typer.Argument(help="chain | collider | triangle | pendulum | random10 | random20")
    ],
    rows: Annotated[int, typer.Option(help="Rows to draw.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    out: Annotated[Path, typer.Option(help="CSV to write.")] = Path("data.csv"),
    graph_out: Annotated[
        Path | None, typer.Option(help="Also write the true graph as JSON.")
    ] = None,
) -> None:
    """Draw rows from a known SCM of the zoo into a CSV (and its graph into JSON)."""
    import json

    from scm.zoo import ZOO

    if name not in ZOO:
        raise typer.BadParameter(f"unknown zoo SCM {name!r}; choose one of {sorted(ZOO)}")
    truth = ZOO[name]()
    truth.sample(rows, seed=seed).to_csv(out, index=False)
    if graph_out is not None:
        graph_out.write_text(json.dumps(truth.graph, indent=2))
    typer.echo(f"wrote {rows} rows of {name} to {out}")


@app.command()
def fit(
    data: Annotated[Path, typer.Argument(help="CSV with one column per node.")],
    graph: Annotated[Path, typer.Option(help="JSON {child: [parents]}.")],
    out: Annotated[Path, typer.Option(help="Folder to save the fitted SCM in.")],
    mechanisms: Annotated[str, typer.Option(help="flow | linear | additive")] = "flow",
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Maximum epochs (default: ~1,500 steps; early stopping on a held-out split)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
) -> None:
    """Fit an SCM to a CSV by maximum likelihood and save it (safetensors + JSON)."""
    _pin_threads()
    import json

    import pandas as pd

    from scm import SCM

    try:
        spec = json.loads(graph.read_text())
        model = SCM(spec, mechanisms=mechanisms)
        model.fit(pd.read_csv(data), epochs=epochs, seed=seed)
    except (ValueError, TypeError, OSError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from None
    model.save(out)
    last = model.history[-1]
    typer.echo(
        f"fitted {len(model.history)} epochs, held-out NLL {last['val_nll']:.4f}; saved to {out}"
    )


@app.command()
def do(
    run: Annotated[Path, typer.Argument(help="Folder of a saved SCM.")],
    set_: Annotated[list[str], typer.Option("--set", help="Intervention node=value (repeatable).")],
    target: Annotated[str | None, typer.Option(help="Print only this node's mean.")] = None,
    n: Annotated[int, typer.Option(help="Monte-Carlo rows.")] = 10000,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
) -> None:
    """Print interventional means E[x | do(node=value)] of a saved SCM."""
    _pin_threads()
    from scm import SCM

    interventions = _parse_sets(set_)
    try:
        model = SCM.load(run)
        means = model.do(interventions).sample(n, seed=seed).mean()
    except (ValueError, TypeError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from None
    if target is not None:
        if target not in means:
            raise typer.BadParameter(f"unknown target {target!r}; nodes are {list(means.index)}")
        means = means[[target]]
    for name, value in means.items():
        typer.echo(f"E[{name} | do({', '.join(set_)})] = {value:.4f}")


def _parse_sets(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise typer.BadParameter(f"--set expects node=number, got {item!r}")
    return out


@app.command()
def discover(
    data: Annotated[
        Path | None, typer.Argument(help="CSV, one column per variable (numeric or text).")
    ] = None,
    from_run: Annotated[
        Path | None,
        typer.Option(
            "--from-run",
            help="A trained image-model run: search over its encoded "
            "test-split factors, scored against the data set's true graph.",
        ),
    ] = None,
    method: Annotated[
        str, typer.Option(help="pc | fci | ges | grasp | boss | exact | direct_lingam | ica_lingam")
    ] = "pc",
    alpha: Annotated[
        float | None, typer.Option(help="Significance level of the tests (pc, fci).")
    ] = None,
    test: Annotated[str | None, typer.Option(help="fisherz | kci | chisq | gsq (pc, fci).")] = None,
    score: Annotated[
        str | None,
        typer.Option(help="bic | bdeu | cv_general | marginal_general (ges, grasp, boss)."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the graph as JSON.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG of the graph.")] = None,
    truth: Annotated[
        Path | None,
        typer.Option(help="True DAG as JSON (child -> list of parents): print SHD and F1 scores."),
    ] = None,
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap resamples for edge frequencies (0: none).")
    ] = 0,
    jobs: Annotated[int, typer.Option(help="Processes for the bootstrap.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap resampling.")] = 0,
    forbid: Annotated[
        list[str] | None, typer.Option(help="Forbidden edge a->b (repeatable).")
    ] = None,
    require: Annotated[
        list[str] | None, typer.Option(help="Required edge a->b (repeatable).")
    ] = None,
    tiers: Annotated[
        Path | None, typer.Option(help="JSON list of tiers (lists of columns), earliest first.")
    ] = None,
) -> None:
    """Learn a causal graph from a CSV with causal-learn; print its edges (--- undirected,
    <-> bidirected, o-> partially oriented) and, with --truth, its scores."""
    _pin_threads()
    import tempfile

    from scm.discovery import run_discover

    if (data is None) == (from_run is None):
        raise typer.BadParameter("give a CSV or --from-run RUN (exactly one)")
    try:
        if from_run is not None:
            scratch = Path(tempfile.mkdtemp(prefix="cauflow-latents-"))
            data, run_truth = _latent_table(from_run, scratch)
            truth = truth or run_truth
        report = run_discover(
            data,
            method=method,
            alpha=alpha,
            test=test,
            score=score,
            out=out,
            plot=plot,
            truth=truth,
            bootstrap=bootstrap,
            n_jobs=jobs,
            seed=seed,
            forbid=forbid or (),
            require=require or (),
            tiers=tiers,
        )
    except (ValueError, TypeError, OSError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(report)


def _latent_table(run: Path, scratch: Path) -> tuple[Path, Path]:
    """Encode a run's test split into ``factors.csv`` and its true graph into ``truth.json``."""
    import json

    from models.checkpoint import load_model
    from models.data import load_dataset
    from models.latents import encode_factors

    vae, record = load_model(run)
    cfg = record["train"]
    test = load_dataset(cfg["dataset"], size=cfg["image_size"], split="test", progress=False)
    encode_factors(vae, test.images).to_csv(scratch / "factors.csv", index=False)
    graph = {k: list(v) for k, v in test.graph.items()}
    (scratch / "truth.json").write_text(json.dumps(graph))
    return scratch / "factors.csv", scratch / "truth.json"


# ------------------------------------------------------------------ image models
train_app = typer.Typer(help="Train an image model.", no_args_is_help=True)
app.add_typer(train_app, name="train")


@train_app.command("caufvae")
def train_caufvae(
    out: Annotated[Path, typer.Option(help="Run directory (checkpoints, config, metrics).")],
    dataset: Annotated[str, typer.Option(help="pendulum | flow")] = "pendulum",
    model: Annotated[str, typer.Option(help="caufvae | betavae | causalvae-linear")] = "caufvae",
    epochs: Annotated[int, typer.Option(help="Epochs over the training split.")] = 10,
    image_size: Annotated[int, typer.Option(help="Image side in pixels (96, 64 or 32).")] = 64,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 64,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    labelled: Annotated[float, typer.Option(help="Fraction of images with factor labels.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out.")] = False,
    n_train: Annotated[int | None, typer.Option(help="Use this many training images.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
) -> None:
    """Train CauF-VAE (or a baseline) on rendered images; checkpoints every epoch, atomically."""
    _pin_threads()
    from models.train_vae import train_run

    try:
        result = train_run(
            out,
            dataset=dataset,
            model=model,
            epochs=epochs,
            image_size=image_size,
            batch_size=batch_size,
            lr=lr,
            labelled_fraction=labelled,
            seed=seed,
            resume=resume,
            n_train=n_train,
            max_steps=max_steps,
        )
    except (ValueError, TypeError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from None
    last = result.history[-1] if result.history else {}
    typer.echo(f"trained {model} on {dataset}: {last}; run in {out}")


@app.command()
def intervene(
    run: Annotated[Path, typer.Argument(help="A run directory of `cauflow train`.")],
    set_: Annotated[list[str], typer.Option("--set", help="factor=value in the factor's units.")],
    n: Annotated[int, typer.Option(help="Test images (rows of the grid).")] = 8,
    out: Annotated[Path, typer.Option(help="PNG to write.")] = Path("grid.png"),
    mode: Annotated[str, typer.Option(help="counterfactual | interventional")] = "counterfactual",
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
) -> None:
    """PNG grid: test images, reconstructions, intervened decodes, true counterfactual renders."""
    _pin_threads()
    from models.intervene import intervene_grid

    try:
        path = intervene_grid(run, _parse_sets(set_), n=n, out=out, mode=mode, seed=seed)
    except (ValueError, TypeError, KeyError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(f"wrote {path}")


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="A run directory of `cauflow train`.")],
    n_test: Annotated[int | None, typer.Option(help="Test images to use (default: all).")] = None,
    reader_steps: Annotated[
        int, typer.Option(help="Training steps of the factor read-back regressor (cached).")
    ] = 400,
) -> None:
    """Score a run on its test split (factor recovery, intervention fidelity) into metrics.json."""
    _pin_threads()
    from models.metrics import evaluate_run, format_table

    try:
        metrics = evaluate_run(run, n_test=n_test, reader_steps=reader_steps)
    except (ValueError, TypeError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(format_table({metrics["run"]["model"]: metrics["summary"]}))
    typer.echo(f"wrote {run / 'metrics.json'}")


if __name__ == "__main__":
    app()
