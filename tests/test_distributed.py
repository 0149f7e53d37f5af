"""The shared training loop under torch.distributed: 2 gloo processes on CPU vs one process."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import Tensor, nn

from models.distributed import Context, pick_device, setup, shard, teardown
from models.loop import Loop, epoch_batches
from scm import SCM, zoo


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _SCMLoss(nn.Module):
    """Negative log-likelihood of rows of a table under an SCM's mechanisms (deterministic:
    no sampling in the loss, so process counts must agree to float error)."""

    def __init__(self, scm: SCM, x: dict[str, Tensor]) -> None:
        super().__init__()
        self.scm, self.x = scm, x

    def forward(self, rows: Tensor) -> Tensor:
        total = torch.zeros(())
        for node, parents in self.scm.parents.items():
            ctx = torch.cat([self.x[p][rows] for p in parents], -1) if parents else None
            total = total - self.scm.mechanisms[node](ctx).log_prob(self.x[node][rows]).sum()
        return total


def _fit(ctx: Context, steps_per_epoch: int, epochs: int) -> dict[str, Tensor]:
    df = zoo.ZOO["triangle"]().sample(256, seed=0)
    scm = SCM({"x1": [], "x2": ["x1"], "x3": ["x1", "x2"]}, "flow", seed=0)
    x = {c: torch.tensor(df[c].to_numpy(), dtype=torch.float32)[:, None] for c in df}
    # Plain SGD without clipping: unlike Adam, it is not invariant to the gradient's scale, so
    # a wrong averaging over ranks would show.
    loop = Loop(_SCMLoss(scm, x), ctx, grad_clip=None,
                optimizer=lambda ps: torch.optim.SGD(ps, lr=1e-3))
    for epoch in range(epochs):
        loop.epoch(epoch, len(df), 64, seed=3, limit=steps_per_epoch)
    return {k: v.detach().clone() for k, v in scm.state_dict().items()}


def _worker(rank: int, world: int, port: int, out: str, task: str) -> None:
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    ctx = setup("cpu")
    try:
        if task == "scm":
            state = _fit(ctx, steps_per_epoch=3, epochs=2)
        else:
            from models.data import load_dataset
            from models.train_vae import train_run

            data = load_dataset("pendulum", size=32, split="train", n=32, progress=False)
            result = train_run(out, data=data, epochs=1, image_size=32, batch_size=16,
                               progress=False, ctx=ctx, channels=8, hidden=32, flow_layers=1,
                               flow_hidden=(8,))
            state = result.model.state_dict()
        torch.save({k: v.detach().clone() for k, v in state.items()},
                   f"{out}.rank{rank}.pt")
    finally:
        teardown(ctx)


def _spawn(world: int, out: str, task: str) -> list[dict[str, Tensor]]:
    port = _free_port()
    mp.start_processes(_worker, args=(world, port, out, task), nprocs=world, join=True,
                       start_method="fork")
    # Files we wrote a moment ago in this test, not user input: torch.load is safe here.
    return [torch.load(f"{out}.rank{r}.pt", weights_only=True) for r in range(world)]


def test_shard_splits_a_global_batch_without_overlap() -> None:
    batch = torch.arange(10)
    parts = [shard(batch, Context(rank=r, world=3)) for r in range(3)]
    assert sorted(torch.cat(parts).tolist()) == list(range(10))


def test_epoch_batches_are_seeded_permutations() -> None:
    a, b = epoch_batches(100, 32, 0, 1), epoch_batches(100, 32, 0, 1)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert sorted(torch.cat(a).tolist()) == list(range(100))
    assert not torch.equal(torch.cat(a), torch.cat(epoch_batches(100, 32, 0, 2)))


def test_two_gloo_processes_match_one_process(tmp_path) -> None:  # noqa: ANN001
    """Same global batches, gradients averaged over ranks with the loss scaled by the world
    size: 6 Adam steps of 2 processes equal 6 steps of 1 process on the whole batch. The
    tolerance (1e-5) covers float32 summation order (two half-batch sums vs one sum)."""
    single = _fit(Context(), steps_per_epoch=3, epochs=2)
    ranks = _spawn(2, str(tmp_path / "scm"), "scm")
    for state in ranks:
        for k, v in single.items():
            assert torch.allclose(state[k], v, atol=1e-5, rtol=1e-5), k
    moved = _fit(Context(), steps_per_epoch=0, epochs=1)  # the initial weights
    assert any(not torch.allclose(moved[k], single[k]) for k in single)


def test_caufvae_trains_under_ddp(cache, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    ranks = _spawn(2, str(out), "caufvae")
    for k in ranks[0]:  # DDP keeps the replicas identical
        assert torch.equal(ranks[0][k], ranks[1][k]), k
    record = json.loads((out / "run.json").read_text())
    assert record["epoch"] == 1 and record["step"] == 2  # 32 images, global batch 16


def test_bad_device_is_named() -> None:
    with pytest.raises(ValueError, match="device must be"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            pick_device("cuda")


def test_single_process_setup_is_a_world_of_one(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = setup("cpu")
    assert (ctx.rank, ctx.world, ctx.is_main, ctx.distributed) == (0, 1, True, False)
