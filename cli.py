"""The cauflow command line: ``cauflow --help``.

Commands stay thin: parse, call the library, print. Heavy imports (torch, pyro) happen
inside each command so that ``--help`` is instant.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    import pandas as pd

    from models.distributed import Context

app = typer.Typer(
    help="cauflow: structural causal models with normalizing flows on Pyro.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts hold E[x | do(...)] and node[0]: no markup in them
)


def _format_warning(message: Warning | str, *args: object, **kwargs: object) -> str:
    """One ``warning: ...`` line per warning, without Python's file:line and source line."""
    return f"warning: {message}\n"


warnings.formatwarning = _format_warning  # type: ignore[assignment]


def _pin_threads() -> None:
    import torch

    torch.set_num_threads(1)


# Options every trainer takes.
DeviceOption = Annotated[str, typer.Option(help="cpu | cuda | auto")]
AmpOption = Annotated[bool, typer.Option(help="bfloat16 autocast on CUDA.")]
NprocOption = Annotated[
    int, typer.Option(help="Processes on this machine (launches torchrun; DDP).")
]
TensorboardOption = Annotated[
    bool, typer.Option(help="Also log the epoch metrics to TensorBoard (out/tensorboard).")
]


# What `fit --mechanisms` accepts: scm.mechanisms.REGISTRY's names and "auto" (SCM's own
# choice per node). Spelled out so that --help needs no torch import; a test keeps it in step.
MECHANISMS = (
    "flow", "linear", "additive", "categorical", "hurdle", "auto", "bayes-linear",
    "bayes-additive",
)


def _relaunch(nproc: int) -> None:
    """With ``nproc > 1``, run this very command under torchrun with ``nproc`` processes on
    this machine (each a rank of the same training) and exit with its code."""
    if nproc < 1:  # --nproc 0 ran one process without a word
        _fail(f"--nproc must be at least 1; got {nproc}")
    if nproc > 1:
        from models.distributed import launch, without_option

        raise typer.Exit(code=launch(nproc, without_option(sys.argv[1:], "--nproc")))


def _fail(message: str) -> NoReturn:
    """One line on stderr and exit code 2: how every command reports bad input."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@contextmanager
def _one_line_errors(*kinds: type[Exception]) -> Iterator[None]:
    """Turn the library's ``ValueError`` / ``TypeError`` / ``FloatingPointError`` (a loss
    that became NaN: "lower lr"), or ``kinds``, into :func:`_fail`."""
    caught = kinds or (ValueError, TypeError, FloatingPointError)
    try:
        yield
    except caught as err:
        _fail(str(err))  # raises typer.Exit: the library's traceback is not the user's


def _read_csv(path: Path) -> pd.DataFrame:
    """The rows of a CSV as a DataFrame (checked against the model's nodes by the library);
    a missing, empty or malformed file is :func:`_fail`."""
    import pandas as pd

    try:  # "age, sex, bmi" headers: no leading space in the names (as discover reads them)
        return pd.read_csv(path, skipinitialspace=True)
    except (OSError, ValueError) as err:  # FileNotFoundError, EmptyDataError, ParserError
        _fail(f"cannot read {path}: {' '.join(str(err).split())}")


def _read_graph(path: Path) -> Any:
    """The JSON in the graph file at ``path`` (its shape is checked by the library); a
    missing, unreadable or malformed file is :func:`_fail`, naming the file."""
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:  # FileNotFoundError, IsADirectoryError, PermissionError
        _fail(f"cannot read graph {path}: {err.strerror or err}")
    except ValueError as err:  # json.JSONDecodeError, UnicodeDecodeError
        _fail(f"cannot read graph {path}: {' '.join(str(err).split())}")


def _check_out(path: Path, option: str, *, folder: bool) -> None:
    """:func:`_fail` before any work when ``path`` cannot be an output: a folder output
    (``folder``) that is an existing file, a file output that is an existing folder, or a
    path under an existing file."""
    if folder and path.exists() and not path.is_dir():
        _fail(f"{option} {path} is a file; give a folder (new or existing)")
    if not folder and path.is_dir():
        _fail(f"{option} {path} is a folder; give a file name")
    for parent in path.parents:  # the nearest one that exists must be a folder
        if parent.exists():
            if not parent.is_dir():
                _fail(f"{option} {path}: {parent} is a file, not a folder")
            break


def _file_out(path: Path, option: str) -> None:
    """:func:`_check_out` a file output and create its missing parent folders."""
    _check_out(path, option, folder=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        _fail(f"{option} {path}: cannot create {path.parent}: {err.strerror or err}")


def _png_out(path: Path, option: str) -> None:
    """:func:`_check_out` a PNG output: its name must end in ``.png`` (a ``g.jpg`` got PNG
    bytes under a JPEG name)."""
    _check_out(path, option, folder=False)
    if path.suffix.lower() != ".png":
        _fail(f"{option} {path}: the grid is written as PNG; give a file name ending in .png")


@contextmanager
def _processes(device: str) -> Iterator[Context]:
    """This process's training context (joining torchrun's process group when launched by it),
    left again on exit; a bad device or a ``ValueError`` / ``TypeError`` / ``OSError`` from the
    training is one line on stderr and exit code 2."""
    from models.distributed import setup, teardown

    with _one_line_errors(ValueError):
        ctx = setup(device)
    try:
        with _one_line_errors(ValueError, TypeError, OSError):
            yield ctx
    finally:
        teardown(ctx)



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
    _check_out(out, "--out", folder=True)
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
    """Draw rows from a known SCM of the zoo into a CSV (and its graph into JSON); missing
    parent folders are created."""
    import json

    from scm.zoo import ZOO

    if name not in ZOO:
        _fail(f"unknown zoo SCM {name!r}; choose one of {sorted(ZOO)}")
    if rows < 1:
        _fail(f"--rows must be at least 1; got {rows}")
    outputs = [(out, "--out")] + ([(graph_out, "--graph-out")] if graph_out else [])
    for path, option in outputs:  # all checked before any is written: no CSV without its graph
        _check_out(path, option, folder=False)
    for path, option in outputs:
        _file_out(path, option)
    truth = ZOO[name]()
    table = truth.sample(rows, seed=seed)
    with _one_line_errors(OSError):
        table.to_csv(out, index=False)
        if graph_out is not None:
            graph_out.write_text(json.dumps(truth.graph, indent=2))
    typer.echo(f"wrote {rows} rows of {name} to {out}")


@app.command()
def fit(
    data: Annotated[Path, typer.Argument(help="CSV with one column per node.")],
    graph: Annotated[Path, typer.Option(help="JSON {child: [parents]}.")],
    out: Annotated[Path, typer.Option(help="Folder to save the fitted SCM in.")],
    mechanisms: Annotated[
        str | None,
        typer.Option(
            help=" | ".join(MECHANISMS) + " (default: flow for mle, bayes-linear for "
            "nuts / svi; auto picks flow or linear per node, categorical for integer codes, "
            "hurdle for point masses at the ends)"
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Maximum epochs (default: ~1,500 steps; early stopping on a held-out split)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    inference: Annotated[
        str, typer.Option(help="mle (point estimates) | nuts | svi (posterior draws).")
    ] = "mle",
    chains: Annotated[int | None, typer.Option(help="NUTS chains (default 4).")] = None,
    draws: Annotated[
        int | None, typer.Option(help="Posterior draws per chain (NUTS 500, SVI 1000).")
    ] = None,
    warmup: Annotated[int | None, typer.Option(help="NUTS warm-up steps (default 500).")] = None,
    device: Annotated[
        str, typer.Option(help="cpu | cuda | auto (anything but cpu trains on the shared loop).")
    ] = "cpu",
    nproc: Annotated[
        int, typer.Option(help="Processes on this machine (launches torchrun; DDP, mle only).")
    ] = 1,
    resume: Annotated[
        bool, typer.Option(help="Continue the shared-loop run in --out (mle only).")
    ] = False,
    dims: Annotated[
        list[str] | None,
        typer.Option(help="A vector node's width, node=k (columns node[0]..node[k-1] in the "
                     "CSV). Repeatable."),
    ] = None,
    log: Annotated[
        list[str] | None,
        typer.Option("--log", help="A positive node fitted on the log scale (its value and "
                     "its children's reading of it). Repeatable. --mechanisms auto chooses "
                     "log scales by itself as well."),
    ] = None,
    no_log_scales: Annotated[
        bool, typer.Option("--no-log-scales", help="Every node on its own scale, also with "
                           "--mechanisms auto (e.g. to intervene at 0 on a positive node).")
    ] = False,
    mechanism: Annotated[
        list[str] | None,
        typer.Option("--mechanism", help="One node's mechanism, node=kind, over --mechanisms "
                     "(e.g. --mechanism smoker=categorical: its codes 0..k-1 counted from the "
                     "CSV). Repeatable."),
    ] = None,
) -> None:
    """Fit an SCM to a CSV and save it (safetensors + JSON). With --inference nuts or svi,
    print the ArviZ summary (R-hat, ESS) and write posterior.nc and ppc.png as well.

    With --nproc N > 1, --device cuda/auto or --resume, the MLE fit runs on the shared training
    loop (models.scm_fit): DDP over N processes, checkpoints, metrics.csv in --out.
    """
    if mechanisms is not None and mechanisms not in MECHANISMS:
        _fail(f"--mechanisms must be one of {' | '.join(MECHANISMS)}; got {mechanisms!r}")
    _check_out(out, "--out", folder=True)
    spec = _read_graph(graph)
    widths = _parse_dims(dims or [])
    if no_log_scales and log:
        _fail("--log and --no-log-scales contradict each other")
    log_nodes = None if no_log_scales else (log or [])
    _relaunch(nproc)
    _pin_threads()
    import os

    from scm import SCM

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 or device != "cpu" or resume:
        if mechanism:
            _fail("--mechanism applies to the in-process fit, not to --nproc, --device or "
                  "--resume; use --mechanisms")
        _fit_on_loop(data, spec, out, mechanisms=mechanisms or "flow", epochs=epochs,
                     seed=seed, inference=inference, device=device, resume=resume,
                     dims=widths, log_nodes=log_nodes)
        return

    bayes = {
        k: v
        for k, v in {"num_chains": chains, "num_samples": draws, "warmup_steps": warmup}.items()
        if v is not None
    }
    with _one_line_errors(ValueError, TypeError, OSError):
        kind = mechanisms or ("flow" if inference == "mle" else "bayes-linear")
        model = SCM(spec, mechanisms=_per_node_mechanisms(kind, mechanism or [], spec),
                    dims=widths, log_nodes=log_nodes)
        model.fit(_read_csv(data), epochs=epochs, seed=seed, inference=inference, **bayes)
    if model.posterior is not None:
        from scm.bayes.run import save_run

        with _one_line_errors(ValueError, TypeError, OSError):
            report = save_run(model, out, seed=seed)
        typer.echo(report)
        return
    with _one_line_errors(ValueError, TypeError, OSError):
        model.save(out)
    typer.echo(
        f"fitted {len(model.history)} epochs, held-out NLL {model.held_out_nll:.4f}; "
        f"saved to {out}"
    )
    _echo_log_scales(model)


def _echo_log_scales(model: Any) -> None:
    """The nodes per mechanism kind (what ``auto`` chose), then one line per node with a log
    scale: what its mechanism logs."""
    from scm.log_nodes import log_scales

    kinds: dict[str, list[str]] = {}
    for node, mechanism in model.mechanisms.items():
        kinds.setdefault(mechanism.kind, []).append(node)
    typer.echo("mechanisms: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in kinds.items()))
    for node, scale in log_scales(model).items():
        parts = (["value"] if scale["value"] else []) + [f"parent {p}" for p in scale["parents"]]
        typer.echo(f"log scale: {node}: {', '.join(parts)}")


def _per_node_mechanisms(kind: str, items: list[str], spec: Any) -> Any:
    """``kind`` for every node, or with ``node=kind`` items (``--mechanism``) the per-node
    dict of names that ``SCM`` takes (a categorical node's codes are counted at fit time). A
    bad item is :func:`_fail`."""
    if not items:
        return kind
    from scm.graph import as_parent_dict

    chosen: dict[str, str] = dict.fromkeys(as_parent_dict(spec), kind)  # the graph, checked
    for item in items:
        node, sep, name = (part.strip() for part in item.partition("="))
        if not (sep and node and name):
            _fail(f"--mechanism expects node=kind, got {item!r}")
        if node not in chosen:
            _fail(f"--mechanism {item}: {node!r} is not a node of the graph")
        if name not in MECHANISMS:
            _fail(f"--mechanism {item}: kind must be one of {' | '.join(MECHANISMS)}")
        chosen[node] = name
    return chosen


def _parse_dims(items: list[str]) -> dict[str, int]:
    """``node=k`` items as ``{node: k}``; a bad item is :func:`_fail`."""
    out: dict[str, int] = {}
    for item in items:
        name, sep, value = (part.strip() for part in item.partition("="))
        if not (sep and name and value.isdigit() and int(value) >= 1):
            _fail(f"--dims expects node=width (a positive int), got {item!r}")
        out[name] = int(value)
    return out


def _fit_on_loop(data: Path, spec: Any, out: Path, *, mechanisms: str, epochs: int | None,
                 seed: int, inference: str, device: str, resume: bool,
                 dims: dict[str, int], log_nodes: list[str] | None) -> None:
    """``fit`` of the graph ``spec`` on the shared training loop (one process, or a rank
    under torchrun)."""
    from models.scm_fit import fit_scm
    from scm import SCM

    if inference != "mle":
        _fail(f"--nproc, --device and --resume fit by maximum likelihood (--inference mle), "
              f"got --inference {inference}")
    with _processes(device) as ctx:
        with _one_line_errors(ValueError, TypeError):
            model = SCM(spec, mechanisms=mechanisms, dims=dims, log_nodes=log_nodes)
        with _one_line_errors(ValueError, TypeError):
            history = fit_scm(model, _read_csv(data), out, epochs=epochs, seed=seed, ctx=ctx,
                              resume=resume, progress=ctx.is_main)
    if ctx.is_main:
        last = history[-1]
        typer.echo(
            f"fitted {len(history)} epochs on {ctx.world} process(es) ({ctx.device}), "
            f"held-out NLL {last['val_nll']:.4f}; saved to {out} (run.json, metrics.csv)"
        )
        _echo_log_scales(model)


@app.command()
def do(
    run: Annotated[Path, typer.Argument(help="Folder of a saved SCM.")],
    set_: Annotated[list[str], typer.Option("--set", help="Intervention node=value (repeatable).")],
    target: Annotated[str | None, typer.Option(help="Print only this node's mean.")] = None,
    n: Annotated[int, typer.Option(help="Monte-Carlo rows (per posterior draw).")] = 10000,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    max_draws: Annotated[
        int, typer.Option(help="Posterior draws used for a Bayesian run (evenly thinned).")
    ] = 500,
) -> None:
    """Print interventional means E[x | do(node=value)] of a saved SCM (with a 94% HDI
    for a Bayesian run)."""
    _pin_threads()
    from scm import SCM

    interventions = _parse_sets(set_)
    with _one_line_errors():
        model = SCM.load(run)
        if model.posterior is not None:
            from scm.bayes.run import effect_table

            table = effect_table(model, interventions, n=n, seed=seed, max_draws=max_draws)
            if target is not None and target not in table.index:
                _fail(f"unknown target {target!r}; nodes are {list(table.index)}")
            for name, row in (table.loc[[target]] if target else table).iterrows():
                typer.echo(
                    f"E[{name} | do({', '.join(set_)})] = {row['mean']:.4f}  "
                    f"94% HDI [{row['hdi_lower']:.4f}, {row['hdi_upper']:.4f}]"
                )
            return
        means = model.do(interventions).sample(n, seed=seed).mean()
        from scm.overlap import warn_off_support

        warn_off_support(model, {f"do({', '.join(set_)})": interventions})
    if target is not None:
        if target not in means:
            _fail(f"unknown target {target!r}; nodes are {list(means.index)}")
        means = means[[target]]
    for name, value in means.items():
        typer.echo(f"E[{name} | do({', '.join(set_)})] = {value:.4f}")


def _parse_sets(items: list[str]) -> dict[str, float]:
    """``node=number`` items as ``{node: number}``; a bad item is :func:`_fail`."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if name.strip() in out:
            _fail(f"--set gives {name.strip()!r} twice")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            _fail(f"--set expects node=number, got {item!r}")
    return out


@app.command()
def counterfactual(
    run: Annotated[Path, typer.Argument(help="Folder of a saved SCM.")],
    factual: Annotated[Path, typer.Argument(help="CSV of factual rows, one column per node.")],
    set_: Annotated[
        list[str],
        typer.Option(
            "--set",
            help="Hard intervention node=value on every row, or node=@column: one value per "
            "row from that column of FACTUAL (an empty cell: that row is not intervened on). "
            "Repeatable.",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="CSV for the counterfactual rows (default: print the first rows)."),
    ] = None,
    head: Annotated[int, typer.Option(help="Rows to print when there is no --out.")] = 5,
) -> None:
    """Counterfactual rows of FACTUAL under hard interventions, by abduction, action and
    prediction on a saved SCM (SCM.counterfactual); print the per-node means of the factual
    and the counterfactual rows."""
    sets = _parse_counterfactual_sets(set_)
    if out is not None:
        _check_out(out, "--out", folder=False)
    table = _read_csv(factual)
    _pin_threads()
    import pandas as pd

    from scm import SCM

    with _one_line_errors(ValueError, TypeError, OSError):
        model = SCM.load(run)
        if model.posterior is not None:
            _fail(f"{run} is a Bayesian fit; its counterfactuals are posterior draws: "
                  "use SCM.counterfactual in Python")
        interventions, rows = _per_row_sets(sets, table, model.dims, factual)
        answer = model.counterfactual(rows, interventions)
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            answer.to_csv(out, index=False)
    if out is not None:
        typer.echo(f"wrote {len(answer)} counterfactual rows to {out}")
    else:
        typer.echo(f"first {min(head, len(answer))} of {len(answer)} counterfactual rows:")
        typer.echo(answer.head(head).to_string(float_format="{:.4f}".format))
    means = pd.DataFrame({"factual mean": rows.mean(), "counterfactual mean": answer.mean()})
    typer.echo(means.to_string(float_format="{:.4f}".format))


def _parse_counterfactual_sets(items: list[str]) -> dict[str, float | str]:
    """``node=number`` as ``{node: number}``, ``node=@column`` as ``{node: column}``; a bad
    item is :func:`_fail`."""
    import math

    out: dict[str, float | str] = {}
    for item in items:
        name, sep, value = (part.strip() for part in item.partition("="))
        if value.startswith("@") and value[1:].strip():
            number: float | str = value[1:].strip()
        else:
            try:
                number = float(value)
            except ValueError:
                sep = ""
        if not (sep and name):
            _fail(f"--set expects node=number or node=@column, got {item!r}")
        if isinstance(number, float) and not math.isfinite(number):
            _fail(f"--set {item!r}: the value must be a finite number")
        if name in out:
            _fail(f"--set gives {name!r} twice")
        out[name] = number
    return out


def _per_row_sets(
    sets: dict[str, float | str], table: pd.DataFrame, dims: dict[str, int], path: Path
) -> tuple[dict[str, object], pd.DataFrame]:
    """The interventions with every ``node=@column`` replaced by that column's values, and
    ``table`` without the columns that are no node's (named only by ``@``)."""
    import numpy as np
    from pandas.api.types import is_numeric_dtype

    from scm.frame import columns_for, non_numeric_message

    values: dict[str, object] = {}
    for node, spec in sets.items():
        if not isinstance(spec, str):
            values[node] = spec
            continue
        if spec not in table.columns:
            raise ValueError(f"--set {node}=@{spec}: {path} has no column {spec!r}; its columns "
                             f"are {[str(c) for c in table.columns]}")
        column = table[spec]
        if not is_numeric_dtype(column.dtype):  # True/False are, as 0/1
            raise ValueError(f"--set {node}=@{spec}: "
                             + non_numeric_message(column, spec, str(path)))
        values[node] = column.to_numpy(dtype=np.float64)
    nodes = {c for n, d in dims.items() for c in columns_for(n, d)}
    named = {s for s in sets.values() if isinstance(s, str)} - nodes
    return values, table.drop(columns=sorted(named))


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
    max_parents: Annotated[
        int | None, typer.Option(help="Cap on a node's parents (ges, exact; GES over 20+ "
                                 "columns needs one to finish in minutes).")
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
    dag: Annotated[
        bool, typer.Option("--dag", help="Orient a CPDAG as one DAG of its equivalence class "
                           "(what `cauflow fit --graph` needs).")
    ] = False,
) -> None:
    """Learn a causal graph from a CSV with causal-learn; print its edges (--- undirected,
    <-> bidirected, o-> partially oriented) and, with --truth, its scores."""
    _pin_threads()
    import tempfile

    from models.latents import write_latent_table
    from scm.discovery import run_discover

    if (data is None) == (from_run is None):
        _fail("give a CSV or --from-run RUN (exactly one)")
    for path, option in ((out, "--out"), (plot, "--plot")):
        if path is not None:
            _file_out(path, option)
    with _one_line_errors(ValueError, TypeError, OSError):
        if from_run is not None:
            scratch = Path(tempfile.mkdtemp(prefix="cauflow-latents-"))
            data, run_truth = write_latent_table(from_run, scratch)
            truth = truth or run_truth
        report = run_discover(
            data,
            method=method,
            alpha=alpha,
            test=test,
            score=score,
            max_parents=max_parents,
            out=out,
            plot=plot,
            truth=truth,
            bootstrap=bootstrap,
            n_jobs=jobs,
            seed=seed,
            forbid=forbid or (),
            require=require or (),
            tiers=tiers,
            dag=dag,
        )
    typer.echo(report)


# ------------------------------------------------------------------ image models
train_app = typer.Typer(help="Train an image model.", no_args_is_help=True,
                        rich_markup_mode=None)
app.add_typer(train_app, name="train")


@train_app.command("caufvae")
def train_caufvae(
    out: Annotated[Path, typer.Option(help="Run directory (checkpoints, config, metrics).")],
    dataset: Annotated[str, typer.Option(help="pendulum | flow")] = "pendulum",
    model: Annotated[str, typer.Option(help="caufvae | betavae | causalvae-linear")] = "caufvae",
    epochs: Annotated[int, typer.Option(help="Epochs over the training split.")] = 10,
    image_size: Annotated[
        int, typer.Option(help="Image side in pixels, a multiple of 16 (32, 48, 64, 96, 128).")
    ] = 64,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 64,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    labelled: Annotated[float, typer.Option(help="Fraction of images with factor labels.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out.")] = False,
    n_train: Annotated[int | None, typer.Option(help="Use this many training images.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
    learn_graph: Annotated[
        bool, typer.Option(help="Learn the factor graph (NOTEARS-constrained) instead of using it.")
    ] = False,
    graph_epochs: Annotated[
        int | None, typer.Option(help="Epochs of graph search with --learn-graph (default half).")
    ] = None,
    prior_conditional: Annotated[
        bool,
        typer.Option(help="Label-conditioned noise prior p(eps | u) (iVAE-style) on labelled "
                          "images; N(0, I) on the others. Ignored with --resume (the run's own)."),
    ] = False,
    device: DeviceOption = "cpu",
    amp: AmpOption = False,
    nproc: NprocOption = 1,
    tensorboard: TensorboardOption = False,
) -> None:
    """Train CauF-VAE (or a baseline) on rendered images; checkpoints every epoch, atomically.

    --batch-size is the global batch: with --nproc N each process takes 1/N of every batch.
    """
    _check_out(out, "--out", folder=True)
    _relaunch(nproc)
    _pin_threads()
    from models.train_vae import train_run

    with _processes(device) as ctx:
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
            graph_epochs=graph_epochs,
            ctx=ctx,
            amp=amp,
            tensorboard=tensorboard,
            progress=ctx.is_main,
            **({"learn_graph": True} if learn_graph else {}),
            **({"prior_conditional": True} if prior_conditional else {}),
        )
    last = result.history[-1] if result.history else {}
    if ctx.is_main:
        # the run's own kind: a resumed run keeps the model it was started with
        typer.echo(f"trained {result.model.kind} on {dataset}: {last}; run in {out}")


@app.command()
def intervene(
    run: Annotated[Path, typer.Argument(help="A run directory of `cauflow train`.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="factor=value in the factor's units (CauF-VAE runs)."),
    ] = None,
    action: Annotated[
        str | None, typer.Option(help="An action such as light+ (CT-VAE runs).")
    ] = None,
    n: Annotated[int, typer.Option(help="Test images (rows of the grid).")] = 8,
    out: Annotated[Path, typer.Option(help="PNG to write.")] = Path("grid.png"),
    mode: Annotated[str, typer.Option(help="counterfactual | interventional")] = "counterfactual",
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
) -> None:
    """PNG grid: test images, reconstructions, intervened decodes (--set for CauF-VAE runs,
    --action for CT-VAE runs), true counterfactual renders."""
    _png_out(out, "--out")
    _pin_threads()
    from models.ctvae.runio import is_ctvae_run
    from models.intervene import intervene_grid

    ctvae = is_ctvae_run(run)
    if (set_ is None) == (action is None):
        _fail("give exactly one of --set (CauF-VAE runs) or --action (CT-VAE runs)")
    if ctvae != (action is not None):
        kind, flag = ("a CT-VAE", "--action") if ctvae else ("not a CT-VAE", "--set")
        _fail(f"{run} is {kind} run; use {flag}")
    with _one_line_errors(ValueError, TypeError, KeyError, OSError):
        if action is not None:
            from models.ctvae.actiongrid import action_grid

            path = action_grid(run, action, n=n, out=out)
        else:
            path = intervene_grid(run, _parse_sets(set_ or []), n=n, out=out, mode=mode, seed=seed)
    typer.echo(f"wrote {path}")


@train_app.command("ctvae")
def train_ctvae_cmd(
    out: Annotated[Path, typer.Option(help="Run directory (checkpoints, config, history).")],
    dataset: Annotated[str, typer.Option(help="shapes | pendulum | flow")] = "shapes",
    imbalanced: Annotated[bool, typer.Option(help="Imbalanced factor values.")] = False,
    epochs: Annotated[int, typer.Option(help="Epochs of the transition phase.")] = 8,
    vq_epochs: Annotated[int, typer.Option(help="Epochs of the VQ-VAE phase.")] = 3,
    joint_epochs: Annotated[int, typer.Option(help="Epochs of joint fine-tuning.")] = 0,
    n_pairs: Annotated[int, typer.Option(help="Training pairs (x, action, y).")] = 2500,
    image_size: Annotated[int, typer.Option(help="Image side in pixels.")] = 32,
    batch_size: Annotated[int, typer.Option(help="Items per step.")] = 64,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out.")] = False,
    device: DeviceOption = "cpu",
    amp: AmpOption = False,
    nproc: NprocOption = 1,
    tensorboard: TensorboardOption = False,
) -> None:
    """Train a CT-VAE (VQ-VAE + causal transitions, Gendron et al. 2023) on action pairs.

    --batch-size is the global batch: with --nproc N each process takes 1/N of every batch.
    """
    _check_out(out, "--out", folder=True)
    _relaunch(nproc)
    _pin_threads()
    from models.ctvae import train_ctvae

    with _processes(device) as ctx:
        result = train_ctvae(out, dataset=dataset, imbalanced=imbalanced, epochs=epochs,
                             vq_epochs=vq_epochs, joint_epochs=joint_epochs, n_pairs=n_pairs,
                             image_size=image_size, batch_size=batch_size, seed=seed,
                             resume=resume, ctx=ctx, amp=amp, tensorboard=tensorboard,
                             progress=ctx.is_main)
    last = result.history[-1] if result.history else {}
    if ctx.is_main:
        typer.echo(f"trained ctvae on {dataset}: {last}; run in {out}")


@app.command()
def actions(
    run: Annotated[Path, typer.Argument(help="A run directory of `cauflow train ctvae`.")],
    image: Annotated[
        list[str], typer.Option(help="Two PNGs: before, then after (give --image twice).")
    ],
    top: Annotated[int, typer.Option(help="Print this many actions.")] = 5,
) -> None:
    """Rank the actions that turn the first image into the second, with P(action | x, y)."""
    _pin_threads()
    from models.ctvae.actiongrid import rank_actions

    if len(image) != 2:
        _fail(f"give --image exactly twice (before, after); got {len(image)}")
    if top < 1:
        _fail(f"--top must be at least 1; got {top}")
    with _one_line_errors():
        ranked = rank_actions(run, image[0], image[1])
    for name, p in ranked[:top]:
        typer.echo(f"{name}\t{p:.4f}")


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

    with _one_line_errors():
        metrics = evaluate_run(run, n_test=n_test, reader_steps=reader_steps)
    typer.echo(format_table({metrics["run"]["model"]: metrics["summary"]}))
    typer.echo(f"wrote {run / 'metrics.json'}")


@train_app.command("context")
def train_context(
    out: Annotated[Path, typer.Option(help="Run directory (checkpoints, run.json, metrics).")],
    dataset: Annotated[str, typer.Option(help="quad (the only context-labelled set).")] = "quad",
    independent: Annotated[bool, typer.Option(help="The W = 0 variant of quad.")] = False,
    mode: Annotated[
        str,
        typer.Option(help="end-to-end | fine-tune | frozen, or an ablation: base-obs | "
                          "base-pooled | no-labels"),
    ] = "end-to-end",
    backbone: Annotated[
        Path | None, typer.Option(help="Pretrained backbone dir for fine-tune / frozen.")
    ] = None,
    steps: Annotated[int, typer.Option(help="Optimiser steps (the budget).")] = 1500,
    steps_per_epoch: Annotated[
        int, typer.Option(help="Steps per epoch (a checkpoint and a metrics row after each).")
    ] = 50,
    batch_size: Annotated[int, typer.Option(help="Images per step (global batch).")] = 64,
    image_size: Annotated[int, typer.Option(help="Image side: 16, 32 or 64.")] = 32,
    n_train: Annotated[int, typer.Option(help="Training images per context.")] = 1000,
    n_test: Annotated[int, typer.Option(help="Test images per context.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed (data and training).")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out.")] = False,
    device: DeviceOption = "cpu",
    amp: AmpOption = False,
    nproc: NprocOption = 1,
    tensorboard: TensorboardOption = False,
) -> None:
    """Train a context module (Markham et al. 2025) or an ablation on quad; print its scores.

    Checkpoints every epoch, atomically; --resume continues a run exactly (with the config it
    was started with). --batch-size is the global batch: with --nproc N each process takes 1/N
    of every batch.
    """
    _check_out(out, "--out", folder=True)
    _relaunch(nproc)
    _pin_threads()
    from models.context import DataConfig, TrainConfig, train_run

    if dataset != "quad":
        _fail(f"--dataset must be 'quad'; got {dataset!r}")
    with _one_line_errors():
        config = TrainConfig(method=mode, steps=steps, seed=seed,  # type: ignore[arg-type]
                             batch_size=batch_size, steps_per_epoch=steps_per_epoch)
        data = DataConfig(independent=independent, size=image_size, n_train=n_train,
                          n_test=n_test, seed=seed)
    with _processes(device) as ctx:
        record = train_run(out, config, data, backbone=backbone, ctx=ctx, amp=amp,
                           resume=resume, tensorboard=tensorboard, progress=ctx.is_main)
    if not ctx.is_main:
        return
    m, method = record["metrics"], record["train"]["method"]
    typer.echo(f"{method}: concept SWD {m['concept']:.4f}, compo SWD {m['compo']:.4f}, "
               f"recon {m['recon']:.4f}, bpd in {m['bpd_in']:.3f} / out {m['bpd_out']:.3f}")
    if "graph" in record:
        typer.echo(f"learned graph: SHD {record['graph']['scores']['shd_dag']} to the truth")
    typer.echo(f"run in {out}")


@app.command()
def generate(
    run: Annotated[Path, typer.Argument(help="A run directory of `cauflow train context`.")],
    context: Annotated[
        str, typer.Option(help="Intervened concepts, comma separated (e.g. quad1,size), or obs.")
    ] = "obs",
    n: Annotated[int, typer.Option(help="Images to generate.")] = 16,
    out: Annotated[Path, typer.Option(help="PNG to write.")] = Path("grid.png"),
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
) -> None:
    """PNG grid of images a context model generates in a (possibly composed) context."""
    _png_out(out, "--out")
    _pin_threads()
    from models.context import generate_grid
    from models.data.quad import parse_context

    with _one_line_errors(ValueError, TypeError, OSError):
        path = generate_grid(run, parse_context(context), n=n, out=out, seed=seed)
    typer.echo(f"wrote {path}")


if __name__ == "__main__":
    app()
