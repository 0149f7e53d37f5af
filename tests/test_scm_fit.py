"""SCM fitting on the shared training loop (models.scm_fit): the loss is the Pyro program's
log-likelihood, 2 gloo processes match 1, the fit answers do-queries, runs resume exactly."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from torch import Tensor

from models.distributed import Context, setup, teardown
from models.scm_fit import _SCMLoss, fit_scm, read_record
from scm import SCM, zoo

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"epochs": 3, "batch_size": 64, "seed": 3, "val_fraction": 0.1, "progress": False}


def _table(n: int = 256) -> pd.DataFrame:
    return zoo.ZOO["triangle"]().sample(n, seed=0)


def _scm() -> SCM:
    return SCM(zoo.ZOO["triangle"]().graph, "flow", seed=0, hidden=(16,))


def _state(scm: SCM) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in scm.state_dict().items()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    ctx = setup("cpu")
    try:
        scm = _scm()
        history = fit_scm(scm, _table(), out, ctx=ctx, **SMALL)
        torch.save({"state": _state(scm),
                    "nll": torch.tensor([[h["train_nll"], h["val_nll"]] for h in history])},
                   f"{out}.rank{rank}.pt")
    finally:
        teardown(ctx)


@pytest.mark.filterwarnings("ignore:.*never fitted:UserWarning")  # unfitted on purpose
def test_loss_is_the_programs_negative_log_likelihood() -> None:
    """The loop's loss on some rows is -sum log p(row) as SCM.log_prob computes it (float32
    sums over 40 rows: 1e-4 relative)."""
    df, scm = _table(), _scm()
    x = {c: torch.tensor(df[c].to_numpy(), dtype=torch.float32)[:, None] for c in df}
    rows = torch.arange(10, 50)
    loss = _SCMLoss(scm, x)(rows)
    expected = -scm.log_prob(df.iloc[10:50]).sum()
    assert loss.requires_grad
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-4)


def test_two_gloo_processes_match_one_process(tmp_path: Path) -> None:
    """3 epochs of 4 global batches (230 training rows, batch 64, the last one short) in 2
    gloo processes give the weights and losses of 1 process. Tolerance 1e-5: float32 sums of
    two half batches against one sum, through 12 Adam steps."""
    single = _scm()
    single_history = fit_scm(single, _table(), **SMALL)
    out = tmp_path / "run"
    mp.start_processes(_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True,
                       start_method="fork")
    # Files this test wrote a moment ago, not user input: torch.load is safe here.
    ranks = [torch.load(f"{out}.rank{r}.pt", weights_only=True) for r in range(2)]
    nll = torch.tensor([[h["train_nll"], h["val_nll"]] for h in single_history])
    for got in ranks:
        for k, v in _state(single).items():
            assert torch.allclose(got["state"][k], v, atol=1e-5, rtol=1e-5), k
        assert torch.allclose(got["nll"], nll.to(got["nll"].dtype), atol=1e-5, rtol=1e-5)
    assert any(not torch.equal(v, _state(_scm())[k]) for k, v in _state(single).items())
    record = read_record(out)  # rank 0 wrote the run; the fitted SCM loads
    assert record["finished"] and record["step"] == 12
    loaded = SCM.load(str(out))
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, ranks[0]["state"][k]), k


def test_loop_fit_answers_do_queries_on_the_chain() -> None:
    """2,000 rows of x1 -> x2 -> x3 (x3 = -1.2 x2 + u3), default budget: E[x3 | do(x2 = 1)]
    = -1.2 and E[x3 | do(x1 = 1)] = -1.8. Tolerance 0.15: the slope's standard error is about
    0.02 at 2,000 rows, the rest is the flow's finite-data misfit (SCM.fit lands ~0.06 off)."""
    truth = zoo.chain()
    df = truth.sample(2000, seed=0)
    scm = SCM(truth.graph, "flow", seed=0)
    history = fit_scm(scm, df, progress=False)
    assert scm.history is history and not scm.training
    for query in ({"x2": 1.0}, {"x1": 1.0}):
        fitted = scm.do(query).sample(20_000, seed=1).mean()
        exact = truth.interventional_mean(query)
        assert abs(fitted["x3"] - exact["x3"]) < 0.15, (query, fitted["x3"], exact["x3"])


def test_resume_equals_a_straight_run(tmp_path: Path) -> None:
    """4 epochs straight, or stopped after 2 (8 steps) and resumed: the same weights and
    losses bit for bit (same batches; optimizer and RNG state from the checkpoint)."""
    options = {**SMALL, "epochs": 4, "patience": 50}
    straight = _scm()
    a = fit_scm(straight, _table(), tmp_path / "a", **options)
    part = _scm()
    first = fit_scm(part, _table(), tmp_path / "b", max_steps=8, **options)
    assert len(first) == 2 and not read_record(tmp_path / "b")["finished"]
    resumed = _scm()
    b = fit_scm(resumed, _table(), tmp_path / "b", resume=True, **options)
    assert [h["train_nll"] for h in a] == [h["train_nll"] for h in b]
    assert [h["val_nll"] for h in a] == [h["val_nll"] for h in b]
    for k, v in _state(straight).items():
        assert torch.equal(_state(resumed)[k], v), k
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]


def test_tampered_or_mismatched_runs_are_rejected(tmp_path: Path) -> None:
    """An unfinished run (stopped by max_steps) resumes only with its own SCM and table and
    intact files; run.json of another format is refused."""
    out = tmp_path / "run"
    fit_scm(_scm(), _table(), out, max_steps=4, **SMALL)
    with pytest.raises(ValueError, match="already holds a run"):
        fit_scm(_scm(), _table(), out, **SMALL)
    with pytest.raises(ValueError, match="other data"):
        fit_scm(_scm(), _table(300), out, resume=True, **SMALL)
    with pytest.raises(ValueError, match="another SCM"):
        fit_scm(SCM(zoo.ZOO["triangle"]().graph, "linear"), _table(), out, resume=True, **SMALL)
    weights = out / "weights.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 1
    weights.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="checksum"):
        fit_scm(_scm(), _table(), out, resume=True, **SMALL)
    record = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**record, "format": "cauflow.caufvae-run"}))
    with pytest.raises(ValueError, match="not a SCM fit run record"):
        fit_scm(_scm(), _table(), out, resume=True, **SMALL)
    with pytest.raises(ValueError, match="holds no run"):  # a mistyped folder started afresh
        fit_scm(_scm(), _table(), tmp_path / "typo", resume=True, **SMALL)


@pytest.mark.parametrize(
    ("options", "match"),
    [({"batch_size": 0}, "batch_size must be a positive int"),
     ({"lr": -1.0}, "lr must be positive"),
     ({"val_fraction": 1.0}, r"val_fraction must be in \[0, 1\)"),
     ({"resume": True}, "resume=True needs the run directory")],
)
def test_bad_arguments_are_named(options: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fit_scm(_scm(), _table(), **{**SMALL, **options})


def test_bayesian_mechanisms_are_sent_to_scm_fit() -> None:
    with pytest.raises(ValueError, match="inference='nuts' or 'svi'"):
        fit_scm(SCM(zoo.chain().graph, "bayes-linear"), zoo.chain().sample(50), progress=False)


def test_bad_data_is_named_like_scm_fit() -> None:
    with pytest.raises(ValueError, match="missing the column for node 'x3'"):
        fit_scm(_scm(), _table().drop(columns="x3"), **SMALL)


def test_a_single_process_run_equals_the_context_default(tmp_path: Path) -> None:
    """An explicit one-process CPU context is the default one (nothing distributed)."""
    a, b = _scm(), _scm()
    fit_scm(a, _table(), **{**SMALL, "epochs": 1})
    fit_scm(b, _table(), ctx=Context(), **{**SMALL, "epochs": 1})
    for k, v in _state(a).items():
        assert torch.equal(_state(b)[k], v), k


@pytest.mark.slow
def test_cli_fit_nproc_2_end_to_end(tmp_path: Path) -> None:
    """``cauflow fit --nproc 2`` re-launches itself under torchrun (two gloo processes); the
    fitted SCM loads and the run record says how far it went. Slow: torchrun starts two
    Python processes that import torch and pyro (~20 s on a shared 2-core machine)."""
    truth = zoo.chain()
    truth.sample(500, seed=0).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "graph.json").write_text(json.dumps(truth.graph))
    out = tmp_path / "fit"
    cmd = [sys.executable, "-m", "cli", "fit", str(tmp_path / "data.csv"), "--graph",
           str(tmp_path / "graph.json"), "--out", str(out), "--epochs", "5", "--nproc", "2"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "saved to" in done.stdout and "on 2 process(es)" in done.stdout
    record = read_record(out)
    assert record["finished"] and record["epoch"] == 5 and record["step"] == 5
    scm = SCM.load(str(out))
    assert len(scm.sample(10)) == 10


def test_cli_fit_on_the_loop_in_one_process(tmp_path: Path) -> None:
    """``fit --device auto`` takes the shared loop (one process here): a run directory whose
    SCM loads; ``--resume`` of the finished run keeps it; ``--inference nuts`` is refused."""
    from typer.testing import CliRunner

    from cli import app

    truth = zoo.chain()
    truth.sample(300, seed=0).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "graph.json").write_text(json.dumps(truth.graph))
    out = tmp_path / "fit"
    base = ["fit", str(tmp_path / "data.csv"), "--graph", str(tmp_path / "graph.json"),
            "--out", str(out), "--epochs", "3", "--mechanisms", "linear"]
    runner = CliRunner()
    done = runner.invoke(app, [*base, "--device", "auto"])
    assert done.exit_code == 0, done.output
    assert "fitted 3 epochs on 1 process(es)" in done.output
    assert read_record(out)["finished"] and (out / "metrics.csv").exists()
    fitted = SCM.load(str(out)).state_dict()
    again = runner.invoke(app, [*base, "--resume"])
    assert again.exit_code == 0, again.output
    for k, v in SCM.load(str(out)).state_dict().items():
        assert torch.equal(v, fitted[k]), k
    refused = runner.invoke(app, [*base, "--device", "auto", "--inference", "nuts"])
    assert refused.exit_code == 2 and "--inference mle" in refused.output


def test_auto_nodes_choose_linear_and_a_finished_run_reloads(tmp_path: Path) -> None:
    """``"auto"`` keeps fit_mle's rule (linear unless the flow is better on held-out rows: the
    chain is linear-Gaussian, so every node turns linear); resuming the finished run loads
    that fit."""
    truth = zoo.chain()
    df = truth.sample(500, seed=0)
    fitted = SCM(truth.graph, "auto", seed=0)
    fit_scm(fitted, df, tmp_path / "run", epochs=5, progress=False)
    assert {m.kind for m in fitted.mechanisms.values()} == {"linear"}
    again = SCM(truth.graph, "auto", seed=0)
    history = fit_scm(again, df, tmp_path / "run", epochs=5, progress=False, resume=True)
    assert len(history) == 5 and again.history == history
    for k, v in fitted.state_dict().items():
        assert torch.equal(again.state_dict()[k], v), k
    weights = tmp_path / "run" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1])  # truncated: both checksums catch it
    with pytest.raises(ValueError, match="checksum"):
        fit_scm(SCM(truth.graph, "auto"), df, tmp_path / "run", progress=False, resume=True)


def test_weight_average_follows_its_formula_and_swaps_back() -> None:
    """``Averaged``: after updates the average is the warm-up EMA of the iterates; ``swap`` puts
    it into the module and a second ``swap`` restores the live weights exactly."""
    from scm.averaging import Averaged

    module = torch.nn.Linear(2, 1)
    average = Averaged(module, 0.5)
    expected = [p.detach().clone() for p in module.parameters()]
    for t in range(4):
        with torch.no_grad():
            for p in module.parameters():
                p.add_(1.0)
        average.update()
        d = min(0.5, (1 + t) / (10 + t))
        params = module.parameters()
        expected = [d * e + (1 - d) * p.detach() for e, p in zip(expected, params, strict=True)]
    live = [p.detach().clone() for p in module.parameters()]
    average.swap()
    for e, p in zip(expected, module.parameters(), strict=True):
        torch.testing.assert_close(p.detach(), e)
    average.swap()
    for a, p in zip(live, module.parameters(), strict=True):
        assert torch.equal(a, p.detach())
    with pytest.raises(ValueError, match="decay must be in"):
        Averaged(module, 1.0)
