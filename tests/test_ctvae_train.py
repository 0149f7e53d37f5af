"""CT-VAE trained on a tiny configuration (shapes, 32 px, 800 pairs, 3 + 5 epochs): codebook
use, transition learning, action effects read back by a factor regressor, retrieval on held-out
pairs, checkpoints and resume, metrics files, two gloo processes against one, and the command
line."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from matplotlib.image import imsave
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from cli import app
from guides.encoder import as_image_batch
from models.ctvae import (
    MultiQuantizer,
    factor_grid,
    load_run,
    retrieval_accuracy,
    retrieve,
    run_pairs,
    train_ctvae,
)
from models.data.shapes import ShapesSet
from models.metrics import train_reader

runner = CliRunner()
SIZE = 32
TINY = {"dataset": "shapes", "image_size": SIZE, "n_pairs": 800, "vq_epochs": 3, "epochs": 5,
        "n_codebooks": 2, "code_dim": 4, "channels": 16, "lr": 3e-3, "progress": False}
MINI = {**TINY, "n_pairs": 64, "vq_epochs": 1, "channels": 8, "hidden": 16}


@pytest.fixture(scope="module")
def images(cache):
    return factor_grid("shapes").images(size=SIZE)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, images):
    out = tmp_path_factory.mktemp("ctvae") / "run"
    return train_ctvae(out, images=images, seed=0, **TINY)


def test_codebooks_are_used(trained):
    vq = [h for h in trained.history if h["phase"] == "vq"]
    # A collapsed codebook has perplexity 1 (one code per codebook); 32 codes are available.
    # The tiny run reaches ~10-16 on shapes (mostly black background), so 4 is a safe floor.
    assert vq[-1]["perplexity"] > 4.0
    assert vq[-1]["recon"] < vq[0]["recon"]


def test_training_reduces_the_transition_loss(trained):
    ce = [h["transition"] for h in trained.history if h["phase"] == "transition"]
    assert len(ce) == 5 and ce[-1] < ce[0] - 0.1  # ~1.5 -> ~1.1 in this run


def test_retrieval_beats_chance_on_held_out_pairs(trained, images):
    cfg = load_run(trained.out)[1]["train"]
    test = run_pairs(cfg, "test", 200)
    best, probs = retrieve(trained.model, as_image_batch(images[test.x]),
                           as_image_batch(images[test.y]))
    assert probs.shape == (len(test), 12) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    acc = retrieval_accuracy(best, test.action)
    # chance is 1/12 = 0.083 (undirected 1/6); 200 pairs give a binomial sd of ~0.02 at chance
    assert acc["accuracy"] > 2 * (1 / 12), acc
    assert acc["undirected"] > 2 * (1 / 6), acc


@pytest.fixture(scope="module")
def medium(tmp_path_factory, images):
    """The benchmark's shapes configuration (2,500 pairs, 3 + 8 epochs, default model)."""
    out = tmp_path_factory.mktemp("ctvae") / "medium"
    return train_ctvae(out, images=images, dataset="shapes", image_size=SIZE, n_pairs=2500,
                       vq_epochs=3, epochs=8, seed=0, progress=False)


@pytest.mark.slow
def test_position_actions_move_the_position_they_name(medium, images):
    """Slow (~1-2 min: it trains the benchmark's shapes configuration). On the tiny
    configuration the predicted codes rarely leave the copied ones (decoded x+ moved the
    centroid by < 0.1 px). Factors are read back by a conv regressor trained on real renders;
    after 300 steps it reads x, y and colour to < 0.1 sd on real test images but shape, scale and
    orientation only to 0.5-0.9 sd, so the check is on the position factors: each position
    action moves the factor it names, in its direction, more than the other position factor.
    (Not shown: that it leaves colour alone; decoded colours drift by up to 0.25 sd.)"""
    grid = factor_grid("shapes")
    train = ~grid.test_mask()
    scenes = grid.scenes()
    data = ShapesSet(images=images[train], factors=grid.factors(scenes[train]).astype(np.float32),
                     factor_names=grid.factor_names, grid=scenes[train],
                     index=np.flatnonzero(train))
    reader = train_reader(data, steps=300, seed=0, progress=False)
    test = np.flatnonzero(grid.test_mask())
    inner = (scenes[test, 3] % 4 != 0) & (scenes[test, 4] % 4 != 0)  # can move both ways
    x = as_image_batch(images[test[inner][:200]])
    std = data.factors.std(0)
    base = reader.read(medium.model.reconstruct(x))
    for action, column, other, sign in (("x+", 3, 4, 1), ("x-", 3, 4, -1), ("y+", 4, 3, 1),
                                        ("y-", 4, 3, -1)):
        shift = (reader.read(medium.model.forward_action(x, action)) - base).mean(0) / std
        # benchmark-size run: named shift 0.15-0.2 sd (a true step is ~0.7 sd), other <= 0.05
        assert sign * shift[column] > abs(shift[other]), (action, shift.round(3))


def test_checkpoint_round_trip(trained, images):
    model, record = load_run(trained.out)
    x = as_image_batch(images[:4])
    assert torch.equal(model.forward_action(x, "x+"), trained.model.forward_action(x, "x+"))
    assert record["train"]["dataset"] == "shapes" and record["phase"] == 1


def test_resume_continues_exactly(tmp_path, images):
    small = MINI
    straight = train_ctvae(tmp_path / "a", images=images, **{**small, "epochs": 2})
    train_ctvae(tmp_path / "b", images=images, **{**small, "epochs": 1})
    resumed = train_ctvae(tmp_path / "b", images=images, resume=True, **{**small, "epochs": 2})
    for (k, a), b in zip(straight.model.state_dict().items(),
                         resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match="already holds a run"):
        train_ctvae(tmp_path / "a", images=images, **small)


def test_resume_at_a_phase_boundary_continues_exactly(tmp_path, images):
    """A run stopped after its VQ phase and resumed into the transition phase seeds the new
    phase like a straight run does."""
    straight = train_ctvae(tmp_path / "a", images=images, **MINI)
    train_ctvae(tmp_path / "b", images=images, **{**MINI, "epochs": 0})
    resumed = train_ctvae(tmp_path / "b", images=images, resume=True, **MINI)
    for (k, a), b in zip(straight.model.state_dict().items(),
                         resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_metrics_files_have_one_row_per_epoch(tmp_path, images):
    out = tmp_path / "run"
    train_ctvae(out, images=images, **{**MINI, "epochs": 1})
    train_ctvae(out, images=images, resume=True, **{**MINI, "epochs": 2})
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["phase"], r["epoch"]) for r in rows] == [("vq", 1), ("transition", 1),
                                                         ("transition", 2)]
    csv = pd.read_csv(out / "metrics.csv")
    assert list(csv["phase_index"]) == [0, 1, 1] and list(csv["step"]) == [r["step"] for r in rows]
    assert rows == json.loads((out / "run.json").read_text())["history"]


def test_joint_phase_trains_all_terms(tmp_path, images):
    result = train_ctvae(tmp_path / "run", images=images,
                         **{**MINI, "epochs": 1, "joint_epochs": 1})
    joint = result.history[-1]
    assert joint["phase"] == "joint"
    for term in ("recon", "vq", "transition", "mask", "graph"):
        assert np.isfinite(joint[term]) and joint[term] >= 0, term


def test_tampered_weights_are_refused(tmp_path, images):
    out = tmp_path / "run"
    train_ctvae(out, images=images, **{**MINI, "epochs": 1})
    blob = bytearray((out / "weights.safetensors").read_bytes())
    blob[-1] ^= 1
    (out / "weights.safetensors").write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="checksum"):
        load_run(out)


# ----------------------------------------------------------------------------- DDP
# 30 pairs in global batches of 11: shards of 6 and 5 rows, and short last batches (5 in the VQ
# phase's 60 scenes, 8 in the 30 pairs); 6 + 3 + 3 steps through all three phases.
DDP = {**MINI, "n_pairs": 30, "batch_size": 11, "epochs": 1, "joint_epochs": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _quantizer_run(batches: torch.Tensor, rank: int, world: int) -> dict[str, torch.Tensor]:
    """A quantizer with many dead codes (16 codes, 12 vectors a step, dead below 0.9) fed the
    rank's shards of ``batches (steps, B, 8, 2, 2)``; returns its buffers."""
    torch.manual_seed(0)
    q = MultiQuantizer(2, 16, 4, decay=0.5, dead_threshold=0.9)
    q.sync = world > 1
    for batch in batches:
        q(batch[rank::world])
    return {k: v.clone() for k, v in q.state_dict().items()}


def _ddp_worker(rank: int, world: int, port: int, out: str, images: np.ndarray) -> None:
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    import models.ctvae.train as train_module
    from models.distributed import setup, teardown

    calls = {"metrics": 0, "checkpoints": 0}

    class CountedLog(train_module.RunLog):
        def write(self, row: dict) -> None:
            calls["metrics"] += self.enabled
            super().write(row)

    def counted_save(*args: object) -> None:
        calls["checkpoints"] += 1
        save(*args)

    save = train_module.save_run
    train_module.RunLog, train_module.save_run = CountedLog, counted_save  # this child only
    ctx = setup("cpu")
    try:
        quantizer = _quantizer_run(torch.randn(4, 3, 8, 2, 2, generator=torch.Generator()
                                               .manual_seed(1)), rank, world)
        save_file(quantizer, f"{out}.quantizer{rank}.safetensors")
        result = train_ctvae(out, images=images, ctx=ctx, **DDP)
        state = {k: v.contiguous() for k, v in result.model.state_dict().items()}
        save_file(state, f"{out}.rank{rank}.safetensors")
        Path(f"{out}.rank{rank}.json").write_text(json.dumps(calls))
    finally:
        teardown(ctx)


@pytest.fixture(scope="module")
def ddp(tmp_path_factory, images):
    """One 2-process gloo run (fork) of :data:`DDP` and of the quantizer alone."""
    out = str(tmp_path_factory.mktemp("ddp") / "run")
    mp.start_processes(_ddp_worker, args=(2, _free_port(), out, images), nprocs=2, join=True,
                       start_method="fork")
    return out


def test_two_processes_train_the_one_process_ctvae(ddp, images, tmp_path):
    """Same global batches and seed: 12 steps of 2 gloo processes give the parameters AND the
    EMA codebooks of one process. The processes sum the shards' gradients and codebook
    statistics in another order than one process sums the batch (float32 rounding); Adam divides
    by the gradient's scale, so on parameters with near-zero gradients (the GATv2 biases) the
    rounding grows to ~3e-5 in 12 steps (measured), i.e. 1% of one step (lr 3e-3). The
    tolerance, a tenth of one step (atol 3e-4; rtol 1e-5 for the EMA sums of size ~50), still
    fails for per-rank Gumbel noise or per-rank codebooks, which differ by whole steps."""
    one = train_ctvae(tmp_path / "one", images=images, **DDP).model.state_dict()
    ranks = [load_file(f"{ddp}.rank{r}.safetensors") for r in range(2)]
    for k, v in one.items():
        for state in ranks:
            assert torch.allclose(state[k].float(), v.float(), atol=3e-4, rtol=1e-5), k
    for k in ("embed", "cluster_size", "embed_sum"):  # identical replicas, not just close
        key = f"vq.quantizer.{k}"
        assert torch.equal(ranks[0][key], ranks[1][key]), key
    start = train_ctvae(tmp_path / "zero", images=images,
                        **{**DDP, "vq_epochs": 0, "epochs": 0}).model.state_dict()
    assert not torch.allclose(start["vq.quantizer.embed"], one["vq.quantizer.embed"])


def test_ddp_quantizer_matches_one_process_with_restarts(ddp):
    """The quantizer alone, 4 steps of a global batch of 3 images (shards of 2 and 1) with
    dead-code restarts every step: its initial and restarted codes come from the gathered global
    batch, so both ranks hold the one-process buffers (tolerance: float32 summation order)."""
    batches = torch.randn(4, 3, 8, 2, 2, generator=torch.Generator().manual_seed(1))
    one = _quantizer_run(batches, 0, 1)
    for rank in range(2):
        state = load_file(f"{ddp}.quantizer{rank}.safetensors")
        for k, v in one.items():
            assert torch.allclose(state[k].float(), v.float(), atol=1e-5), (rank, k)
    unsynced = _quantizer_run(batches, 0, 2)  # rank 0's shard alone: another codebook
    assert not torch.allclose(unsynced["embed"], one["embed"], atol=1e-3)


def test_only_rank_0_writes_checkpoints_and_metrics(ddp):
    calls = [json.loads(Path(f"{ddp}.rank{r}.json").read_text()) for r in range(2)]
    assert calls == [{"metrics": 3, "checkpoints": 3}, {"metrics": 0, "checkpoints": 0}]
    rows = [json.loads(line) for line in (Path(ddp) / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in rows] == ["vq", "transition", "joint"]
    assert [r["step"] for r in rows] == [6, 9, 12] and {r["processes"] for r in rows} == {2}
    assert len(pd.read_csv(Path(ddp) / "metrics.csv")) == 3


# ----------------------------------------------------------------------------- CLI
def test_cli_train_ctvae(tmp_path, cache):
    args = ["train", "ctvae", "--dataset", "shapes", "--n-pairs", "64", "--vq-epochs", "1",
            "--epochs", "1", "--out", str(tmp_path / "run")]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "already holds a run" in r.output
    r = runner.invoke(app, [*args[:3], "dsprites", *args[4:-1], str(tmp_path / "other")])
    assert r.exit_code == 2 and "shapes" in r.output


def test_cli_actions_ranks_the_true_action_high(trained, images, tmp_path):
    grid = factor_grid("shapes")
    cfg = load_run(trained.out)[1]["train"]
    pair = run_pairs(cfg, "test", 50)
    names = trained.model.actions
    hits = 0
    for k in range(5):
        a, b = tmp_path / f"a{k}.png", tmp_path / f"b{k}.png"
        imsave(a, images[pair.x[k]])
        imsave(b, images[pair.y[k]])
        r = runner.invoke(app, ["actions", str(trained.out), "--image", str(a), "--image", str(b),
                                "--top", "12"])
        assert r.exit_code == 0, r.output
        ranked = [line.split("\t")[0] for line in r.output.strip().splitlines()]
        assert sorted(ranked) == sorted(names[1:])
        hits += names[pair.action[k]] in ranked[:6]
    assert hits >= 3  # top half of 12; chance would give 2.5 of 5
    r = runner.invoke(app, ["actions", str(trained.out), "--image", str(a)])
    assert r.exit_code == 2 and "exactly twice" in r.output
    assert grid.name == "shapes"


def test_cli_intervene_action_grid(trained, tmp_path):
    png = tmp_path / "grid.png"
    r = runner.invoke(app, ["intervene", str(trained.out), "--action", "x+", "--n", "3",
                            "--out", str(png)])
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = runner.invoke(app, ["intervene", str(trained.out), "--action", "light+"])
    assert r.exit_code == 2 and "x+" in r.output
    r = runner.invoke(app, ["intervene", str(trained.out), "--set", "x=0.5"])
    assert r.exit_code == 2 and "--action" in r.output
    r = runner.invoke(app, ["intervene", str(trained.out)])
    assert r.exit_code == 2 and "exactly one" in r.output
    # bounded by the test scenes (--n 100000 rendered for minutes)
    r = runner.invoke(app, ["intervene", str(trained.out), "--action", "x+", "--n", "100000"])
    assert r.exit_code == 2 and "test scenes" in r.output


@pytest.mark.slow
def test_cli_train_ctvae_with_two_processes(tmp_path, cache):
    """Slow (~30 s: torchrun starts two Python processes that import torch). ``--nproc 2``
    re-launches the command under torchrun; rank 0 alone prints and writes the metrics."""
    out = tmp_path / "run"
    r = subprocess.run(
        [sys.executable, "-m", "cli", "train", "ctvae", "--n-pairs", "32", "--vq-epochs", "1",
         "--epochs", "1", "--batch-size", "16", "--out", str(out), "--nproc", "2"],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("trained ctvae on shapes") == 1, r.stdout
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(x["phase"], x["step"], x["processes"]) for x in rows] == [("vq", 4, 2),
                                                                       ("transition", 6, 2)]
