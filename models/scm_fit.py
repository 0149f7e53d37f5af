"""Fit an SCM's mechanisms by maximum likelihood on the shared training loop (:mod:`models.loop`):
one process, several under torchrun (DDP, gloo on CPU, NCCL on CUDA), or a GPU.

The loss is the Pyro program's own negative log-likelihood, ``Trace_ELBO().differentiable_loss``
of the SCM conditioned on a batch with an empty guide (every site observed, so the ELBO is
``sum_rows log p(row)``), exactly what :func:`scm.fit.fit_mle` optimises with SVI. The rest
follows ``fit_mle`` too: the same seeded held-out split, per-node standardisation on the training
rows, ``ClippedAdam`` with the learning rate decaying to ``lr / 10``, per-node early stopping,
and the linear-or-flow choice of ``"auto"`` nodes. Not ported: ``fit_mle``'s choice of
conditioner among :data:`scm.auto.AUTO_CONDITIONERS` (no rival flows train here), its closing
pass over every row (:func:`scm.fit.refine_on_all_rows`) and its closed-form fit of declared
linear mechanisms (:func:`scm.fit.fit_linear_in_closed_form`; here they train by SGD). It
differs in what it returns: ``fit_mle`` evaluates a moving average of the weights and returns
the final one, while this loop keeps each node's best held-out epoch of the raw weights
(``fit_mle``'s rule before; its docstring gives the measurement that changed it; see
:func:`_keep_best` for what is not ported).

A run directory (``out``) is a :mod:`models.runio` run of format ``cauflow.scm-run``: rank 0
checkpoints weights, optimizer state and ``run.json`` (the SCM spec as its model config) every
epoch and logs metrics with :class:`~models.runlog.RunLog`. When the fit ends it also holds the
fitted SCM as :func:`scm.io.save_scm` writes it (``scm.json``, with the very weights file the
run record names), so ``SCM.load(out)`` and every command that reads a saved SCM read it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
from pyro.infer import Trace_ELBO
from pyro.optim.clipped_adam import ClippedAdam
from torch import Tensor, nn
from tqdm.auto import tqdm

from models import runio
from models.distributed import Context, shard
from models.loop import Loop, epoch_batches
from models.runlog import RunLog
from scm import SCM
from scm.auto import select_auto_mechanism
from scm.fit import (
    DEFAULT_LR,
    node_nll,
    observed_program,
    stack_flows,
    standardize_mechanisms,
)
from scm.io import load_scm, save_scm, spec
from scm.matrix import training_matrix
from scm.prepare import prepare_rows
from scm.rows import (
    check_fit_args,
    choose_auto_without_held_out,
    distinct_part,
    one_row_per_copy,
    split_rows,
)

log = logging.getLogger(__name__)

FORMAT = "cauflow.scm-run"
VERSION = 1
CLIP = 10.0
"""Elementwise gradient clip of ``ClippedAdam``, as in :func:`scm.fit.fit_mle`."""
_BEST = "best."


def fit_scm(
    scm: SCM,
    df: pd.DataFrame,
    out: str | os.PathLike[str] | None = None,
    *,
    epochs: int | None = None,
    steps: int = 1500,
    batch_size: int = 1024,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    val_fraction: float = 0.1,
    patience: int | None = None,
    max_steps: int | None = None,
    ctx: Context | None = None,
    amp: bool = False,
    resume: bool = False,
    progress: bool = True,
    tensorboard: bool = False,
) -> list[dict[str, float]]:
    """Fit ``scm``'s mechanisms to ``df`` by maximum likelihood on :class:`~models.loop.Loop`;
    returns the per-epoch history (also set as ``scm.history``) and leaves ``scm`` fitted, in
    eval mode, on the CPU.

    The arguments mean what they mean for :meth:`scm.SCM.fit` (``epochs=None``: a budget of
    about ``steps`` optimiser steps; ``patience=None``: 10% of it); ``batch_size`` is the global
    batch, of which each of the ``ctx.world`` processes takes every ``world``-th row, so a run
    gives the same weights (to float error) for any number of processes.

    Args:
        out: run directory for checkpoints, metrics and the fitted SCM (``None``: none).
        max_steps: stop after this many optimiser steps in total and leave the run
            unfinished: ``scm`` keeps its current weights and ``resume=True`` continues the
            run, bit for bit as if it had never stopped when ``max_steps`` falls at the end of
            an epoch; an epoch cut short counts as done (its remaining steps are skipped).
        ctx: the process context (:func:`models.distributed.setup`; default one CPU process).
        amp: bfloat16 autocast of the loss on CUDA.
        resume: continue the run in ``out`` (its training settings win over the arguments,
            except ``epochs``); without it, ``out`` must not hold a run. A finished run is
            not extended: resuming it loads the fitted weights.
        progress: tqdm bar (rank 0).
        tensorboard: also write TensorBoard scalars (see :class:`~models.runlog.RunLog`).

    Returns:
        ``[{"epoch", "step", "train_nll", "val_nll", "seconds", "rows_per_s"}, ...]``; the NLLs
        in nats per row (train: the mean over the epoch's steps, all ranks).
    """
    ctx = ctx or Context()
    _check_args(scm, epochs=epochs, steps=steps, batch_size=batch_size, lr=lr,
                val_fraction=val_fraction, patience=patience, max_steps=max_steps)
    root = Path(out) if out is not None else None
    if resume and root is None:
        raise ValueError("resume=True needs the run directory out")
    has_run = root is not None and (root / runio.RECORD).exists()
    ctx.barrier()  # every rank has looked before rank 0 writes the first checkpoint
    if has_run and not resume:
        raise ValueError(f"{root} already holds a run; pass resume=True or choose another out")

    scm.restart_auto_nodes()
    x, distinct = prepare_rows(scm, df, stacklevel=3)
    fingerprint = _fingerprint(x)
    if has_run:
        assert root is not None
        record = read_record(root)
        _check_resume(root, record, scm, fingerprint)
        cfg = record["train"]
    else:
        if resume:  # a mistyped folder started a whole new fit
            raise ValueError(f"resume=True but {root} holds no run; leave out resume to start one")
        cfg = {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
               "val_fraction": val_fraction, "patience": patience, "rows": len(df),
               "data_sha256": fingerprint}
        record = {"epoch": 0, "step": 0, "history": [], "finished": False}

    split = split_rows(x, scm, torch.Generator().manual_seed(cfg["seed"]),
                       cfg["val_fraction"], distinct=distinct)
    train, val, sel = split["train"], split["val"], split["sel"]
    standardize_mechanisms(scm, train)
    n_train, n_val, bs = len(train[scm.nodes[0]]), len(val[scm.nodes[0]]), cfg["batch_size"]
    if not n_val:
        choose_auto_without_held_out(scm, x, distinct)
    per_epoch = math.ceil(n_train / bs)
    if "epochs" not in cfg:  # a new run: its epoch budget, which sets the lr decay
        cfg["epochs"] = epochs or min(2000, math.ceil(cfg["steps"] / per_epoch))
    total_epochs = epochs or cfg["epochs"]
    patience_epochs = (cfg["patience"] if cfg["patience"] is not None
                       else max(10, math.ceil(0.1 * cfg["steps"] / per_epoch)))

    if record["finished"]:
        assert root is not None
        log.info("%s holds a finished fit; loading it, nothing to train", root)
        fitted = load_scm(root)  # "auto" nodes may have become linear
        for k, mechanism in fitted.mechanisms.items():
            scm.mechanisms[k] = mechanism
        return _finish(scm, record["history"])
    best = dict.fromkeys(scm.nodes, math.inf)
    best_state = {k: copy.deepcopy(m.state_dict()) for k, m in scm.mechanisms.items()}
    if has_run:
        assert root is not None
        best_state = _load_state(root, record, scm)
        best.update({k: float(v) for k, v in record.get("best", {}).items()})

    scm.to(ctx.device)
    loss = _SCMLoss(scm, {k: v.to(ctx.device) for k, v in train.items()})
    decay = 0.1 ** (1 / (cfg["epochs"] * per_epoch))  # lr -> lr / 10 over the run, as fit_mle
    loop = Loop(loss, ctx, lr=cfg["lr"], grad_clip=None, amp=amp,
                optimizer=lambda ps: ClippedAdam(ps, lr=cfg["lr"], clip_norm=CLIP, lrd=decay))
    val_dev = {k: v.to(ctx.device) for k, v in val.items()}
    runlog = RunLog(root, enabled=ctx.is_main, tensorboard=tensorboard) if root else None

    history: list[dict[str, Any]] = list(record["history"])
    step, stale = record["step"], int(record.get("stale", 0))
    with torch.random.fork_rng(devices=[]):
        if step > 0:
            assert root is not None
            torch.set_rng_state(runio.load_optimizer(root, loop.optimizer, record))
        else:
            torch.manual_seed(cfg["seed"])
        bar = tqdm(range(record["epoch"], total_epochs), desc="fit scm", leave=False,
                   disable=not (progress and ctx.is_main))
        stopped = False
        for epoch in bar:
            if max_steps is not None and step >= max_steps:
                break
            scm.train()
            stats = loop.epoch(epoch, n_train, bs, cfg["seed"],
                               limit=None if max_steps is None else max_steps - step)
            step += stats.steps
            loss.sync()
            train_nll = _global_mean(stats.loss, n_train, bs, cfg["seed"], epoch, ctx)
            if not math.isfinite(train_nll):
                raise FloatingPointError(
                    f"training loss became {train_nll} at epoch {epoch}; lower lr (now "
                    f"{cfg['lr']})")
            scm.eval()
            val_nll = math.nan
            if n_val:
                val_nll, improved = _keep_best(scm, val_dev, best, best_state)
                stale = 0 if improved else stale + 1
            entry = {"epoch": epoch, "step": step, "train_nll": train_nll, "val_nll": val_nll,
                     "seconds": stats.seconds, "rows_per_s": stats.rows_per_s}
            history.append(entry)
            bar.set_postfix(train=f"{train_nll:.3f}", val=f"{val_nll:.3f}")
            stop = bool(n_val) and stale >= patience_epochs
            record = {"train": cfg, "epoch": epoch + 1, "step": step, "history": history,
                      "best": {k: v for k, v in best.items() if math.isfinite(v)},
                      "stale": stale, "finished": False}
            if root is not None and ctx.is_main:
                _save(root, scm, loop.optimizer, record, best_state)
                assert runlog is not None
                runlog.write(entry)
            ctx.barrier()
            if stop:
                log.info("early stop at epoch %d", epoch)
                stopped = True
                break
    if runlog is not None:
        runlog.close()
    if not (stopped or record["epoch"] >= total_epochs):
        log.info("stopped by max_steps=%s at step %d; resume=True continues", max_steps, step)
        return _finish(scm, history)
    if n_val:
        for k, state in best_state.items():
            scm.mechanisms[k].load_state_dict(state)
    scm.cpu()
    if n_val:
        for k in scm.auto_nodes:
            select_auto_mechanism(scm, k, train, distinct_part(sel, scm), refit=x,
                                  check_on=one_row_per_copy(x, distinct))
    if root is not None and ctx.is_main:
        record = {**record, "finished": True}
        runio.save_run(root, format=FORMAT, version=VERSION, state_dict=scm.state_dict(),
                       config=spec(scm), record=record)
        save_scm(scm, root)  # the same weights bytes: SCM.load(root) reads the fit
    ctx.barrier()
    return _finish(scm, history)


def _keep_best(scm: SCM, val: dict[str, Tensor], best: dict[str, float],
               best_state: dict[str, dict[str, Tensor]]) -> tuple[float, bool]:
    """Score the held-out rows per node and keep each node's best weights (in place), as
    ``fit_mle`` did before it returned its final averaged weights: the log-likelihood is a
    sum of one term per mechanism with disjoint parameters. Returns the held-out NLL (nats
    per row) and whether any node improved.

    Unlike ``fit_mle`` this loop fit still resets the patience on any gain above 1e-4 nats per
    row and evaluates the live weights: ``scm.fit.MIN_GAIN`` and the weight average
    (``scm.fit.EMA_DECAY``) are not ported here yet (their state would have to travel in the
    resumable checkpoint), nor are ``"auto"``'s rival conditioners, their retirement and its
    homoscedastic flows (``scm.auto.HOMOSCEDASTIC_AUTO``); the flow-or-linear choice with the
    linearity check is the same (``select_auto_mechanism``), scored on the selection rows
    alone: here the early-stopping rows also pick each node's best epoch, which biases them
    toward the flow."""
    per_node = node_nll(scm, val)
    improved = [k for k in scm.nodes if per_node[k] < best[k] - 1e-4]
    for k in improved:
        best[k] = per_node[k]
        best_state[k] = copy.deepcopy(scm.mechanisms[k].state_dict())
    return sum(per_node.values()), bool(improved)


class _SCMLoss(nn.Module):
    """The loss module of :class:`~models.loop.Loop`: rows of the training table -> the SCM's
    negative log-likelihood summed over them.

    As in :func:`scm.fit.fit_mle`, the scalar flow nodes train as one stacked network
    (:class:`~scm.stacked.StackedFlows`); its parameters, not those of the stacked nodes'
    mechanisms, are this module's (DDP must see every parameter used), and :meth:`sync` copies
    them into the mechanisms, which are what is scored, checkpointed and returned."""

    def __init__(self, scm: SCM, x: dict[str, Tensor]) -> None:
        super().__init__()
        self.x = x
        device = next(iter(x.values())).device
        self.stack = stack_flows(scm)
        if self.stack is not None:
            self.stack.to(device)
        flat = self.stack.nodes if self.stack is not None else []
        self.others = nn.ModuleDict({k: m for k, m in scm.mechanisms.items() if k not in flat})
        self.matrix = training_matrix(scm, x)
        self.program = observed_program(scm, self.stack, register=False)

    def sync(self) -> None:
        """Copy the stacked parameters into the mechanisms they stand for."""
        if self.stack is not None:
            self.stack.write_back()

    def forward(self, rows: Tensor) -> Tensor:
        if rows.numel() == 0:  # a rank left without rows of a short last batch
            return sum(p.sum() for p in self.parameters()) * 0.0
        rows = rows.to(self.matrix.device)
        batch = {k: v[rows] for k, v in self.x.items()}
        return Trace_ELBO().differentiable_loss(self.program, _empty_guide, batch,
                                                self.matrix[rows])


def _empty_guide(*args: object, **kwargs: object) -> None:
    """Every site is observed: the variational family is empty and -ELBO = -log p(rows)."""


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``run.json`` of an SCM run; ``ValueError`` if missing or not an SCM run."""
    return runio.read_record(path, format=FORMAT, version=VERSION, what="SCM fit")


def _global_mean(rank_mean: float, n: int, batch_size: int, seed: int, epoch: int,
                 ctx: Context) -> float:
    """The epoch's loss per row over all ranks, from this rank's mean over its shards."""
    if not ctx.distributed:
        return rank_mean
    seen = sum(len(shard(b, ctx)) for b in epoch_batches(n, batch_size, seed, epoch))
    total = torch.tensor([rank_mean * seen], dtype=torch.float64)
    dist.all_reduce(total)
    return float(total) / n


def _save(root: Path, scm: SCM, optimizer: torch.optim.Optimizer, record: dict[str, Any],
          best_state: dict[str, dict[str, Tensor]]) -> None:
    """One checkpoint: the current weights, each node's best weights (``best.mechanisms.*``),
    optimizer state and record."""
    state = {**scm.state_dict(),
             **{f"{_BEST}mechanisms.{k}.{p}": v for k, s in best_state.items()
                for p, v in s.items()}}
    runio.save_run(root, format=FORMAT, version=VERSION, state_dict=state, config=spec(scm),
                   record=record, optimizer=optimizer)


def _load_state(root: Path, record: dict[str, Any], scm: SCM) -> dict[str, dict[str, Tensor]]:
    """Load a checkpoint's current weights into ``scm``; returns its per-node best weights."""
    state = runio.read_weights(root, record)
    current = {k: v for k, v in state.items() if not k.startswith(_BEST)}
    best: dict[str, dict[str, Tensor]] = {k: {} for k in scm.nodes}
    for key, value in state.items():
        if key.startswith(_BEST):
            node, name = key[len(_BEST) + len("mechanisms."):].split(".", 1)
            best.setdefault(node, {})[name] = value
    try:
        scm.load_state_dict(current, strict=True)
        for k, s in best.items():  # checks the best weights fit the mechanisms too
            copy.deepcopy(scm.mechanisms[k]).load_state_dict(s, strict=True)
    except (KeyError, RuntimeError) as err:
        raise ValueError(f"{root} does not hold weights of this SCM: {err}") from err
    return best


def _check_resume(root: Path, record: dict[str, Any], scm: SCM, fingerprint: str) -> None:
    """``ValueError`` unless ``scm`` and the data are those the run in ``root`` started with
    (a finished run's ``"auto"`` nodes may have changed kind: its graph and dims must match)."""
    saved, ours = record.get("model") or {}, json.loads(json.dumps(spec(scm)))
    fields = ("graph", "dims") if record.get("finished") else ("graph", "dims", "mechanisms")
    # log scales too: resumed weights of a log-scale mechanism mean nothing on the raw scale
    if any(saved.get(f) != ours.get(f) for f in (*fields, "log_scales")):
        raise ValueError(f"{root} holds a run of another SCM ({record.get('model')}); "
                         "resume it with the SCM it was started with")
    if record["train"].get("data_sha256") != fingerprint:
        raise ValueError(f"{root} was fitted to other data ({record['train'].get('rows')} rows); "
                         "resume it with the same table")


def _fingerprint(x: dict[str, Tensor]) -> str:
    """SHA-256 of the data tensors: a resumed run must see the same table."""
    h = hashlib.sha256()
    for k, v in x.items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _finish(scm: SCM, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    scm.cpu().eval()
    scm.history = history
    scm.posterior = None
    scm.untrained = {}
    return history


def _check_args(scm: SCM, *, max_steps: int | None, **sizes: Any) -> None:
    """The argument checks of :func:`scm.fit.fit_mle`, plus ``max_steps`` and point estimates."""
    check_fit_args(**sizes)
    if max_steps is not None and not (isinstance(max_steps, int) and max_steps >= 1):
        raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
    if any(getattr(m, "bayesian", False) for m in scm.mechanisms.values()):
        raise ValueError("Bayesian mechanisms (priors on their parameters) need SCM.fit with "
                         "inference='nuts' or 'svi'; the training loop fits point estimates "
                         "(mechanisms 'flow', 'linear', 'additive', 'categorical', 'auto')")
