"""Training the context module (modes, ablations), run directories and the CLI on tiny quad."""

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
from typer.testing import CliRunner

from cli import app
from models import runio
from models.context import (
    BlackBox,
    ContextLoss,
    ContextTrainer,
    ContextVAE,
    DataConfig,
    TrainConfig,
    build_model,
    context_batches,
    fit,
    generate_grid,
    interventional_readout,
    load_backbone,
    load_run,
    save_backbone,
    train_run,
)
from models.distributed import Context, setup, teardown
from models.runio import OPTIMIZER, RECORD, WEIGHTS
from scm.io import atomic_write
from scm.zoo import QUAD_NODES

SMALL = {"latent_dim": 16, "channels": 8, "hidden": 32, "module_hidden": 8, "batch_size": 16}
DATA = DataConfig(size=16, n_train=16, n_test=8, seed=0)


@pytest.fixture(scope="module")
def tiny(cache):
    return DATA.load(progress=False)


def _model(method: str, steps: int, **kw) -> tuple[ContextVAE, TrainConfig]:
    config = TrainConfig(method=method, steps=steps, lr=3e-3, **SMALL)
    return build_model(config, list(QUAD_NODES), image_size=16, **kw), config


def test_tiny_quad_training_reduces_the_loss(tiny):
    model, config = _model("end-to-end", 100)
    history = fit(model, tiny.train, config, progress=False)
    # the first 50 steps start from the untrained model (~17 bits/dim); by 100 steps the
    # mean loss has dropped by several bits/dim on every seed we tried, so 1 is a safe margin
    assert history[-1]["bpd"] < history[0]["bpd"] - 1.0, history


def test_frozen_mode_trains_only_the_module_on_a_loaded_black_box(tiny, tmp_path):
    owner, _ = _model("base-pooled", 5)
    save_backbone(tmp_path / "bb", owner.backbone)
    backbone = load_backbone(tmp_path / "bb")
    assert isinstance(backbone, BlackBox)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    model, config = _model("frozen", 10, backbone=backbone)
    module_before = model.module.edges.detach().clone(), model.module.write.weight.detach().clone()
    fit(model, tiny.train, config, progress=False)
    for key, value in model.backbone.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    assert not torch.equal(model.module.write.weight, module_before[1])
    assert all(p.requires_grad for p in model.backbone.parameters())  # restored afterwards


def test_fine_tune_moves_the_backbone_only_after_the_module_phase(tiny):
    model, _ = _model("fine-tune", 4)
    before = model.backbone.encoder.head[0].weight.detach().clone()
    config = TrainConfig(method="fine-tune", steps=4, fine_tune_fraction=1.0, **SMALL)
    fit(model, tiny.train, config, progress=False)
    torch.testing.assert_close(model.backbone.encoder.head[0].weight, before, rtol=0, atol=0)
    config = TrainConfig(method="fine-tune", steps=4, fine_tune_fraction=0.5, **SMALL)
    fit(model, tiny.train, config, progress=False)
    assert not torch.equal(model.backbone.encoder.head[0].weight, before)


def test_ablations_build_the_right_models():
    assert _model("base-obs", 1)[0].module is None
    assert _model("no-labels", 1)[0].use_labels is False
    with pytest.raises(ValueError, match="method must be one of"):
        TrainConfig(method="sideways")


def test_no_labels_generates_the_same_in_every_context():
    model, _ = _model("no-labels", 1)
    torch.testing.assert_close(model.generate(3, ("quad1",), seed=1), model.generate(3, (), seed=1))
    labelled, _ = _model("end-to-end", 1)
    with torch.no_grad():
        labelled.module.int_loc += 1.0
    assert not torch.allclose(labelled.generate(3, ("quad1",), seed=1),
                              labelled.generate(3, (), seed=1))


def test_run_round_trip_and_grid(cache, tmp_path):
    config = TrainConfig(method="end-to-end", steps=3, **SMALL)
    record = train_run(tmp_path / "run", config, DATA, progress=False)
    assert set(record["metrics"]) >= {"concept", "compo", "recon", "bpd_in", "bpd_out"}
    assert "quad1+size" in record["metrics"]["swd"] and "shd_dag" in record["graph"]["scores"]
    model, loaded = load_run(tmp_path / "run")
    assert loaded["train"]["method"] == "end-to-end"
    assert model.generate(2, ("quad1", "size")).shape == (2, 3, 16, 16)
    png = generate_grid(tmp_path / "run", ("quad1", "size"), n=4, out=tmp_path / "g.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="between 1 and 1024"):  # numpy asked for 25.5 GiB
        generate_grid(tmp_path / "run", ("quad1",), n=100_000, out=tmp_path / "g.png")
    weights = tmp_path / "run" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(ValueError, match="checksum"):
        load_run(tmp_path / "run")


def test_cli_train_context_and_generate(cache, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    args = ["train", "context", "--dataset", "quad", "--mode", "frozen", "--out", str(out),
            "--steps", "2", "--image-size", "16", "--n-train", "16", "--n-test", "8"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "concept SWD" in result.output and (out / "backbone" / "backbone.json").exists()
    assert json.loads((out / "run.json").read_text())["train"]["method"] == "frozen"
    grid = tmp_path / "grid.png"
    result = runner.invoke(app, ["generate", str(out), "--context", "quad1,size", "--n", "4",
                                 "--out", str(grid)])
    assert result.exit_code == 0, result.output
    assert grid.exists()
    bad = runner.invoke(app, ["generate", str(out), "--context", "quad9"])
    assert bad.exit_code == 2 and "must be one of" in bad.output
    bad = runner.invoke(app, ["train", "context", "--out", str(out), "--mode", "sideways"])
    assert bad.exit_code == 2 and "method must be one of" in bad.output


# ------------------------------------------------------------------ batches, loop, DDP, resume
def test_batches_hold_one_context_and_depend_only_on_seed_and_epoch(tiny):
    train = tiny.train
    plan = context_batches(train, pooling="contexts", batch_size=8, steps=20, seed=3, epoch=2)
    again = context_batches(train, pooling="contexts", batch_size=8, steps=20, seed=3, epoch=2)
    other = context_batches(train, pooling="contexts", batch_size=8, steps=20, seed=3, epoch=1)
    for b in plan:
        labels = {train.contexts[i] for i in train.context[b.rows.numpy()]}
        assert labels == set(b.row_contexts()) and len(labels) == 1  # one context
        assert len(set(b.rows.tolist())) == 8  # distinct rows
    assert len({b.row_contexts()[0] for b in plan}) > 3  # 20 uniform draws among 7 contexts
    assert [(b.rows.tolist(), b.noise_seed) for b in plan] == [
        (b.rows.tolist(), b.noise_seed) for b in again]
    assert [b.rows.tolist() for b in plan] != [b.rows.tolist() for b in other]
    obs = context_batches(train, pooling="observational", batch_size=8, steps=3, seed=0, epoch=0)
    assert all(set(train.context[b.rows.numpy()]) == {train.contexts.index(())} for b in obs)
    with pytest.raises(ValueError, match="pooling must be one of"):
        context_batches(train, pooling="sideways", batch_size=8, steps=1, seed=0, epoch=0)


def test_mixed_batches_label_every_row_with_its_own_context(tiny):
    """The module methods' default: the pooled base VAE's rows (same seed, same rows, same
    noise), each scored in its own context, so a batch mixes contexts."""
    train = tiny.train
    mixed = context_batches(train, pooling="mixed", batch_size=16, steps=5, seed=1, epoch=0)
    pooled = context_batches(train, pooling="pooled", batch_size=16, steps=5, seed=1, epoch=0)
    for m, p in zip(mixed, pooled, strict=True):
        assert m.rows.tolist() == p.rows.tolist() and m.noise_seed == p.noise_seed
        assert m.row_contexts() == [train.contexts[i] for i in train.context[m.rows.numpy()]]
        assert set(p.row_contexts()) == {()}
    assert all(len(set(b.row_contexts())) > 1 for b in mixed)  # 16 rows of 7 contexts
    for method in ("end-to-end", "fine-tune", "frozen", "no-labels"):
        assert TrainConfig(method=method).pooling == "mixed"
    assert TrainConfig(method="end-to-end", batching="contexts").pooling == "contexts"
    assert TrainConfig(method="base-pooled", batching="contexts").pooling == "pooled"
    with pytest.raises(ValueError, match="batching must be one of"):
        TrainConfig(batching="shuffled")  # type: ignore[arg-type]


def test_elbo_rows_scores_each_row_in_its_own_context(tiny):
    """A mixed batch's ELBO is, row by row, the ELBO of that row alone in its context."""
    model, _ = _model("end-to-end", 1)
    with torch.no_grad():  # a non-trivial graph and interventional weights to switch between
        model.module.edges.normal_(0.0, 0.5)
        model.module.int_loc.normal_(0.0, 1.0)
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    eps = torch.randn(4, model.noise_dim, generator=torch.Generator().manual_seed(1))
    contexts = [(), ("quad1",), ("size",), ("quad1",)]
    with torch.no_grad():
        mixed = model.elbo_rows(x, contexts, eps=eps)
        alone = torch.cat([model.elbo(x[j : j + 1], c, eps=eps[j : j + 1])
                           for j, c in enumerate(contexts)])
        observational = model.elbo(x, (), eps=eps)
    torch.testing.assert_close(mixed, alone, rtol=1e-5, atol=1e-3)  # ~1e3 nats, float32
    assert (mixed[1:] - observational[1:]).abs().min() > 1.0  # the contexts do matter
    with pytest.raises(ValueError, match="one context per image"):
        model.elbo_rows(x, contexts[:2], eps=eps)


def test_loss_shards_add_up_to_the_batch_loss(tiny):
    """The loss module's shards (what N processes compute) sum to the one-process loss of the
    batch (-mean ELBO + penalty) / pixels: the noise is the batch's, not the process's."""
    model, config = _model("end-to-end", 1)
    loss = ContextLoss(model, torch.as_tensor(tiny.train.images), config)
    loss.plan = context_batches(tiny.train, pooling="contexts", batch_size=16, steps=2, seed=0,
                                epoch=0)
    slots = torch.arange(16, 32)  # the second batch
    whole = loss(slots)
    parts = sum(loss(slots[r::3]) for r in range(3))
    # float32 sums of 16 ELBOs of ~1e4 nats in another order: relative error ~1e-6
    torch.testing.assert_close(parts, whole, rtol=1e-5, atol=0)
    with pytest.raises(ValueError, match="one batch"):
        loss(torch.tensor([0, 16]))


def _state(model: ContextVAE) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# fine-tune, 6 steps in epochs of 4: the backbone unfreezes mid-epoch (Loop.rebuild under DDP)
DDP_CONFIG = TrainConfig(method="fine-tune", steps=6, steps_per_epoch=4, lr=3e-3, **SMALL)


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    import models.context.run as run_module

    calls = Path(f"{out}.calls.{rank}")
    save, write = run_module.save_run, run_module.RunLog.write

    def logged_save(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.open("a").write("save_run\n")
        return save(*args, **kwargs)

    def logged_write(self, row):  # noqa: ANN001, ANN202
        if self.enabled:
            calls.open("a").write("runlog\n")
        return write(self, row)

    run_module.save_run, run_module.RunLog.write = logged_save, logged_write
    calls.write_text("")
    ctx = setup("cpu")
    try:
        train_run(out, DDP_CONFIG, DATA, backbone=f"{out}.backbone", ctx=ctx, progress=False)
        model, _ = load_run(out)
        torch.save(_state(model), f"{out}.rank{rank}.pt")
    finally:
        teardown(ctx)


def test_two_gloo_processes_match_one_process(cache, tmp_path):
    """2 processes (gloo, CPU) on the same global batches, seed and noise equal 1 process: the
    loss of a shard is its rows' share of the batch loss and DDP averages gradients of the
    shards scaled by the world size. 6 Adam steps of fine-tune, with the backbone unfreezing
    mid-epoch. Tolerance 1e-5: float32 sums in another order (two half-batch sums vs one), which
    Adam's first steps (~lr * sign) do not amplify here; we measured 6e-8."""
    owner, _ = _model("base-pooled", 1)
    out = tmp_path / "ddp"
    save_backbone(f"{out}.backbone", owner.backbone)
    train_run(tmp_path / "one", DDP_CONFIG, DATA, backbone=f"{out}.backbone", progress=False)
    single = _state(load_run(tmp_path / "one")[0])
    mp.start_processes(_ddp_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True,
                       start_method="fork")
    # files this test wrote a moment ago, not user input: torch.load is safe here
    ranks = [torch.load(f"{out}.rank{r}.pt", weights_only=True) for r in range(2)]
    for state in ranks:
        for k, v in single.items():
            torch.testing.assert_close(state[k], v, atol=1e-5, rtol=1e-5, msg=k)
    assert not torch.equal(single["backbone.encoder.head.0.weight"],
                           owner.backbone.state_dict()["encoder.head.0.weight"])  # it trained
    # rank 0 alone saves (2 epochs + the evaluated record) and writes the metrics rows
    assert Path(f"{out}.calls.0").read_text().split() == ["save_run", "runlog"] * 2 + ["save_run"]
    assert Path(f"{out}.calls.1").read_text() == ""
    one = [json.loads(r) for r in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    two = [json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in two] == [1, 2]
    assert [r["loss"] for r in two] == pytest.approx([r["loss"] for r in one], rel=1e-6)


@pytest.mark.parametrize("fraction", [1 / 3, 0.5])
def test_resumed_run_equals_the_straight_run(cache, tmp_path, monkeypatch, fraction):
    """Stopped after epoch 1, then 2, resumed to the end: the same weights, optimizer state and
    losses bit for bit (batches and noise depend only on seed and epoch; Adam's state and the
    RNG travel in the checkpoint). fraction 1/3 unfreezes the backbone exactly at the first
    stop, 0.5 in the middle of epoch 2."""
    owner, _ = _model("base-pooled", 1)
    save_backbone(tmp_path / "bb", owner.backbone)
    config = TrainConfig(method="fine-tune", steps=6, steps_per_epoch=2, lr=3e-3,
                         fine_tune_fraction=fraction, **SMALL)
    straight = train_run(tmp_path / "a", config, DATA, backbone=tmp_path / "bb", progress=False)
    written = []
    monkeypatch.setattr(runio, "atomic_write",
                        lambda path, data: (written.append(Path(path).name),
                                            atomic_write(path, data))[1])
    run = tmp_path / "b"
    first = train_run(run, config, DATA, backbone=tmp_path / "bb", max_epochs=1, progress=False)
    assert first["epoch"] == 1 and "metrics" not in first
    assert written == [WEIGHTS, OPTIMIZER, RECORD]  # through runio, run.json last
    with pytest.raises(ValueError, match="already holds a run"):
        train_run(run, config, DATA, progress=False)
    train_run(run, config, DATA, resume=True, max_epochs=2, progress=False)
    resumed = train_run(run, config, DATA, resume=True, progress=False)
    a, b = load_run(tmp_path / "a")[0].state_dict(), load_run(run)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "a" / OPTIMIZER).read_bytes() == (run / OPTIMIZER).read_bytes()
    keep = ("epoch", "step", "loss", "bpd")
    assert [{k: h[k] for k in keep} for h in resumed["history"]] == [
        {k: h[k] for k in keep} for h in straight["history"]]
    assert resumed["metrics"] == straight["metrics"]
    rows = pd.read_csv(run / "metrics.csv")
    assert rows["epoch"].tolist() == [1, 2, 3]
    assert rows["loss"].tolist() == [h["loss"] for h in straight["history"]]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_amp_on_cuda_trains(tiny):
    model, config = _model("end-to-end", 4)
    history = fit(model, tiny.train, config, ctx=Context(device=torch.device("cuda")), amp=True,
                  progress=False)
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in history)


def test_cli_resume(cache, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    args = ["train", "context", "--mode", "base-obs", "--out", str(out), "--steps", "2",
            "--steps-per-epoch", "1", "--batch-size", "8", "--image-size", "16", "--n-train",
            "16", "--n-test", "8"]
    assert runner.invoke(app, args).exit_code == 0
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already holds a run" in again.output
    resumed = runner.invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0 and "base-obs: concept SWD" in resumed.output
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    bad = runner.invoke(app, [*args[:-8], "--device", "tpu", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "device must be" in bad.output


@pytest.mark.slow
def test_cli_nproc_2_launches_torchrun(cache, tmp_path):
    """Slow: torchrun starts two fresh Python processes that import torch and pyro (~20 s)."""
    out = tmp_path / "nproc"
    cmd = [sys.executable, "-m", "cli", "train", "context", "--mode", "end-to-end", "--out",
           str(out), "--steps", "2", "--steps-per-epoch", "1", "--batch-size", "8",
           "--image-size", "16", "--n-train", "16", "--n-test", "8", "--nproc", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parents[1],
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("concept SWD") == 1  # rank 0 alone prints
    assert json.loads((out / "run.json").read_text())["step"] == 2


def test_exogenous_parameters_take_the_scaled_step(tiny):
    """The module's exogenous locations/scales are stepped at ``lr * exogenous_lr_scale``, all
    other parameters at ``lr``; a base VAE has no such group."""
    model, config = _model("end-to-end", 1)
    trainer = ContextTrainer(model, tiny.train, config)
    groups = trainer.loop.optimizer.param_groups
    fast = {id(p) for p in model.module.exogenous_parameters()}
    assert [g["lr"] for g in groups] == [config.lr, config.lr * config.exogenous_lr_scale]
    assert {id(p) for p in groups[1]["params"]} == fast
    assert not fast & {id(p) for p in groups[0]["params"]}
    base, base_config = _model("base-pooled", 1)
    assert len(ContextTrainer(base, tiny.train, base_config).loop.optimizer.param_groups) == 1
    with pytest.raises(ValueError, match="exogenous_lr_scale"):
        TrainConfig(exogenous_lr_scale=0.0)


def test_moment_init_step_by_method():
    """Before step 0 for every module method that reads the labels (after ``moment_warmup``
    steps on a fresh backbone); never for the base VAEs, ``no-labels`` or when switched off."""
    steps = {m: TrainConfig(method=m, steps=10).moment_init_step for m in
             ("end-to-end", "fine-tune", "frozen", "no-labels", "base-obs", "base-pooled")}
    assert steps == {"end-to-end": 0, "fine-tune": 0, "frozen": 0, "no-labels": None,
                     "base-obs": None, "base-pooled": None}
    assert TrainConfig(steps=10, moment_warmup=4).moment_init_step == 4
    assert TrainConfig(method="frozen", steps=10, moment_warmup=4).moment_init_step == 0
    assert TrainConfig(steps=10, moment_warmup=10).moment_init_step is None
    assert TrainConfig(steps=10, moment_init=False).moment_init_step is None
    with pytest.raises(ValueError, match="moment_warmup"):
        TrainConfig(moment_warmup=-1)


def test_training_sets_the_readout_from_the_encoders_moments(tiny):
    """One step from the identity read-out: with the moment initialisation the read-out is the
    one :func:`interventional_readout` computes (up to that one Adam step, ~lr per entry), without
    it the identity (up to the same step). The intervened concepts are the identified ones."""
    model, config = _model("end-to-end", 1)
    trainer = ContextTrainer(model, tiny.train, config)
    images = trainer.loss.images.permute(0, 3, 1, 2).float()
    with torch.no_grad():
        loc, scale = model.backbone.encode((images + 0.5) / 256.0)
    contexts = [tiny.train.contexts[i] for i in tiny.train.context]
    expected, _, identified = interventional_readout(loc, scale, contexts, list(QUAD_NODES), 2)
    assert [QUAD_NODES[k] for k in identified] == ["quad1", "quad2", "quad3", "quad4", "size",
                                                   "orientation"]
    trainer.epoch(0)
    step = 2 * config.lr  # Adam moves an entry by at most ~lr per step
    torch.testing.assert_close(model.module.read.weight, expected, atol=step, rtol=0)
    plain, _ = _model("end-to-end", 1)
    fit(plain, tiny.train, TrainConfig(method="end-to-end", steps=1, lr=3e-3,
                                       moment_init=False, **SMALL), progress=False)
    torch.testing.assert_close(plain.module.read.weight, torch.eye(16), atol=step, rtol=0)
