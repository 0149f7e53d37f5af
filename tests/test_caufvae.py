"""CauF-VAE on a tiny configuration: 64 pendulum images at 32x32, small networks, few steps."""

from __future__ import annotations

import json

import numpy as np
import pyro
import pytest
import torch
from pyro import poutine
from pyro.util import check_model_guide_match
from tiny_caufvae import GRAPH, TINY

from guides.encoder import FactorGuide, as_image_batch, factor_guide
from models.caufvae import MODEL_NAMES, CauFVAE
from models.checkpoint import WEIGHTS, load_model
from models.data import ImageSet, load_dataset
from models.intervene import intervene_grid
from models.metrics import (
    dci_lite,
    evaluate_run,
    factor_scores,
    intervention_fidelity,
    mig,
    recovery,
    ssim,
    train_reader,
)
from models.train_vae import labelled_mask, train_run


@pytest.fixture
def data(tiny_pendulum):  # noqa: ANN001, ANN201
    return tiny_pendulum


@pytest.fixture(scope="module")
def test_data(cache):  # noqa: ANN001, ANN201
    return load_dataset("pendulum", size=32, split="test", n=32, progress=False)


def _train(out, data, **kw):  # noqa: ANN001, ANN003, ANN202
    opts = {"epochs": 2, "image_size": 32, "batch_size": 16, "progress": False, **TINY, **kw}
    return train_run(out, data=data, **opts)


def _generic_prior(vae: CauFVAE, seed: int = 1) -> CauFVAE:
    """Perturb the prior's weights (flows and linear maps start independent of the parents)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in vae.prior.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return vae


# --------------------------------------------------------------------- guide contract
def test_factor_guide_sites_and_shapes() -> None:
    guide = factor_guide({"a": 1, "b": 3}, image_size=32, channels=8, hidden=16)
    tr = poutine.trace(guide).get_trace(torch.rand(5, 3, 32, 32))
    sites = {k: v["value"].shape for k, v in tr.nodes.items() if v["type"] == "sample"
             and not v["is_observed"] and k != "rows"}
    assert sites == {"a": (5, 1), "b": (5, 3)}
    assert all(f.name == "rows" for f in tr.nodes["a"]["cond_indep_stack"])


def test_factor_guide_rejects_wrong_width() -> None:
    from guides.encoder import ConvEncoder

    with pytest.raises(ValueError, match="need 4"):
        FactorGuide(ConvEncoder(3, image_size=32), {"a": 1, "b": 3})


@pytest.mark.parametrize("kind", MODEL_NAMES)
def test_model_and_guide_share_sites(kind: str) -> None:
    vae = CauFVAE(GRAPH, kind=kind, image_size=32, **TINY)
    x, u = torch.rand(6, 3, 32, 32), torch.randn(6, 4)
    labelled = torch.tensor([True, False] * 3)
    guide_tr = poutine.trace(vae.guide).get_trace(x, u, labelled)
    model_tr = poutine.trace(poutine.replay(vae.model, trace=guide_tr)).get_trace(x, u, labelled)
    check_model_guide_match(model_tr, guide_tr)  # warns (= error in tests) on a mismatch
    latent = [k for k, v in guide_tr.nodes.items() if v["type"] == "sample" and k != "rows"]
    assert latent == vae.factors
    for name in latent:
        assert guide_tr.nodes[name]["value"].shape == model_tr.nodes[name]["value"].shape == (6, 1)
        assert guide_tr.nodes[name]["fn"].event_shape == model_tr.nodes[name]["fn"].event_shape
    assert model_tr.nodes["x"]["fn"].event_shape == (3, 32, 32)
    assert torch.isfinite(vae.loss(x, u, labelled))


def test_vector_factor_dims() -> None:
    vae = CauFVAE({"a": [], "b": ["a"]}, dims={"b": 2}, image_size=32, **TINY)
    z = vae.model(n=3)
    assert {k: tuple(v.shape) for k, v in z.items()} == {"a": (3, 1), "b": (3, 2)}
    assert vae.decode(z).shape == (3, 3, 32, 32)


def test_bad_options_name_the_argument() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        CauFVAE(GRAPH, kind="vae")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="image_size must be a positive multiple of 16"):
        CauFVAE(GRAPH, image_size=30)


# --------------------------------------------------------------------- training
@pytest.mark.parametrize("kind", MODEL_NAMES)
def test_loss_drops(kind: str, data, tmp_path) -> None:  # noqa: ANN001
    result = _train(tmp_path / kind, data, model=kind, epochs=5, lr=5e-3)
    losses = [h["loss"] for h in result.history]
    # 20 Adam steps (seeded): the per-image loss falls by 54-67% across the three models;
    # 40% leaves room for platform float differences without passing a flat curve.
    assert losses[-1] < losses[0] - 0.4 * abs(losses[0]), losses


def test_semi_supervised_mask() -> None:
    mask = labelled_mask(100, 0.25, seed=0)
    assert mask.sum() == 25
    assert np.array_equal(mask, labelled_mask(100, 0.25, seed=0))
    with pytest.raises(ValueError, match="labelled_fraction"):
        labelled_mask(10, 1.5, seed=0)


def test_unlabelled_rows_do_not_enter_the_loss() -> None:
    vae = CauFVAE(GRAPH, image_size=32, **TINY)
    x, u = torch.rand(4, 3, 32, 32), torch.randn(4, 4)
    none = torch.zeros(4, dtype=torch.bool)
    pyro.set_rng_seed(3)
    a = vae.loss(x, u, none)
    pyro.set_rng_seed(3)
    b = vae.loss(x, u + 100.0, none)
    assert torch.equal(a, b)


# --------------------------------------------------------------------- interventions
@pytest.mark.parametrize("kind", ["caufvae", "causalvae-linear"])
def test_do_on_root_moves_only_descendants(kind: str) -> None:
    vae = _generic_prior(CauFVAE(GRAPH, kind=kind, image_size=32, **TINY))
    pyro.set_rng_seed(5)
    before = vae.model(n=16)
    pyro.set_rng_seed(5)
    after = poutine.do(vae.model, data={"pendulum": torch.tensor(2.0)})(n=16)
    assert torch.equal(after["pendulum"], torch.full((16, 1), 2.0))
    assert torch.equal(after["light"], before["light"])  # non-descendant: bit for bit
    for child in ("shadow_len", "shadow_pos"):
        assert (after[child] - before[child]).abs().max() > 1e-3


@pytest.mark.parametrize("kind", MODEL_NAMES)
def test_counterfactual_keeps_non_descendants(kind: str) -> None:
    vae = _generic_prior(CauFVAE(GRAPH, kind=kind, image_size=32, **TINY))
    x = torch.rand(8, 3, 32, 32)
    z = vae.encode(x)
    images, cf = vae.counterfactual(x, {"light": -1.0})
    assert images.shape == x.shape
    assert torch.equal(cf["pendulum"], z["pendulum"])
    assert torch.all(cf["light"] == -1.0)
    moved = (cf["shadow_len"] - z["shadow_len"]).abs().max()
    assert (moved > 1e-3) if kind != "betavae" else (moved == 0)
    # identity: abduction then prediction with the factual value reproduces the factual factors
    _, same = vae.counterfactual(x, {"light": z["light"][:, 0]})
    for name in vae.factors:
        # float32 spline inverse-then-forward round trip
        torch.testing.assert_close(same[name], z[name], atol=1e-4, rtol=1e-4)


def test_interventional_resamples_descendants_only() -> None:
    vae = _generic_prior(CauFVAE(GRAPH, image_size=32, **TINY))
    x = torch.rand(8, 3, 32, 32)
    z = vae.encode(x)
    _, a = vae.interventional(x, {"pendulum": 0.5}, seed=0)
    _, b = vae.interventional(x, {"pendulum": 0.5}, seed=1)
    assert torch.equal(a["light"], z["light"]) and torch.equal(b["light"], z["light"])
    assert not torch.equal(a["shadow_len"], b["shadow_len"])


# --------------------------------------------------------------------- checkpoints
def test_resume_reproduces_an_uninterrupted_run(data, tmp_path) -> None:  # noqa: ANN001
    straight = _train(tmp_path / "a", data, epochs=2)
    _train(tmp_path / "b", data, epochs=1)
    resumed = _train(tmp_path / "b", data, epochs=2, resume=True)
    s1, s2 = straight.model.state_dict(), resumed.model.state_dict()
    assert s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)
    # same loss in the step after the checkpoint: the resumed epoch matches exactly
    assert straight.history[1]["loss"] == resumed.history[1]["loss"]
    rec_a = json.loads((tmp_path / "a" / "run.json").read_text())
    rec_b = json.loads((tmp_path / "b" / "run.json").read_text())
    assert rec_a["sha256"] == rec_b["sha256"]  # weights and optimizer state, byte for byte
    # the metrics files of the resumed run hold each epoch once, as the straight run's do
    for name in ("metrics.jsonl", "metrics.csv"):
        lines_a = (tmp_path / "a" / name).read_text().splitlines()
        lines_b = (tmp_path / "b" / name).read_text().splitlines()
        assert len(lines_a) == len(lines_b) == (2 if name.endswith("jsonl") else 3)
    rows_b = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows_b] == [1, 2]


def test_load_model_gives_the_same_loss(data, tmp_path) -> None:  # noqa: ANN001
    trained = _train(tmp_path / "r", data, epochs=1).model
    loaded, record = load_model(tmp_path / "r")
    assert record["epoch"] == 1 and loaded.kind == "caufvae"
    x = as_image_batch(data.images[:8])
    losses = []
    for vae in (trained, loaded):
        pyro.set_rng_seed(11)
        losses.append(vae.loss(x))
    assert torch.equal(losses[0], losses[1])
    assert torch.equal(trained.label_loc, loaded.label_loc)


def test_altered_checkpoint_is_rejected(data, tmp_path) -> None:  # noqa: ANN001
    _train(tmp_path / "r", data, epochs=1)
    blob = bytearray((tmp_path / "r" / WEIGHTS).read_bytes())
    blob[-1] ^= 0xFF
    (tmp_path / "r" / WEIGHTS).write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="checksum"):
        load_model(tmp_path / "r")


def test_an_edited_run_record_is_refused(data, tmp_path) -> None:  # noqa: ANN001
    """run.json carries its own SHA-256: an edited image size resumed into a long traceback."""
    _train(tmp_path / "r", data, epochs=1)
    load_model(tmp_path / "r")  # the record as written reads back
    file = tmp_path / "r" / "run.json"
    record = json.loads(file.read_text())
    record["train"]["image_size"] = 64
    file.write_text(json.dumps(record, indent=2))
    with pytest.raises(ValueError, match="run.json was edited after it was written"):
        _train(tmp_path / "r", data, epochs=2, resume=True)


def test_existing_run_needs_resume(data, tmp_path) -> None:  # noqa: ANN001
    _train(tmp_path / "r", data, epochs=1)
    with pytest.raises(ValueError, match="resume=True"):
        _train(tmp_path / "r", data, epochs=1)


def _user_images(seed: int, n: int = 24) -> ImageSet:
    """Random 32x32 images with Pendulum-named factors: images a user hands to train_run."""
    rng = np.random.default_rng(seed)
    return ImageSet(images=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                    factors=rng.normal(size=(n, 4)).astype(np.float32),
                    factor_names=("pendulum", "light", "shadow_len", "shadow_pos"),
                    graph={k: tuple(v) for k, v in GRAPH.items()}, split="train",
                    name="pendulum", index=np.arange(n))


def test_a_run_on_user_images_is_resumed_and_scored_with_them_only(data, tmp_path) -> None:  # noqa: ANN001
    """A run records where its images came from and their SHA-256: a resume without the user's
    images, or with others, is refused (it trained on the rendered Pendulum set, 5 -> 691
    steps, silently), as is a command that would score it on built-in test images; a run
    on the built-in set records that and resumes by name."""
    mine = _user_images(0)
    _train(tmp_path / "u", mine, epochs=1)
    record = json.loads((tmp_path / "u" / "run.json").read_text())
    assert record["train"]["data"] == "user" and len(record["train"]["data_sha256"]) == 64
    with pytest.raises(ValueError, match="trained on images passed as data="):
        train_run(tmp_path / "u", epochs=2, resume=True, progress=False)
    with pytest.raises(ValueError, match="data= differs from the images this run was trained"):
        _train(tmp_path / "u", _user_images(1), epochs=2, resume=True)
    with pytest.raises(ValueError, match="cannot be reloaded here"):
        intervene_grid(tmp_path / "u", {"light": 0.5}, n=2, out=tmp_path / "g.png")
    assert _train(tmp_path / "u", mine, epochs=2, resume=True).history[-1]["epoch"] == 2
    _train(tmp_path / "b", data, epochs=1)
    assert json.loads((tmp_path / "b" / "run.json").read_text())["train"]["data"] == "built-in"
    with pytest.raises(ValueError, match="holds no run"):
        _train(tmp_path / "empty", data, epochs=1, resume=True)
    with pytest.raises(ValueError, match="images are 32x32 px but image_size is 64"):
        _train(tmp_path / "size", mine, epochs=1, image_size=64)


# --------------------------------------------------------------------- metrics
def test_metric_oracles() -> None:
    rng = np.random.default_rng(0)
    f = rng.normal(size=(500, 3))
    perfect = factor_scores(f, f, ["a", "b", "c"])
    assert all(v["r2"] == 1.0 and v["spearman"] == pytest.approx(1.0) for v in perfect.values())
    assert mig(f, f) > 0.5  # one code per factor: a large gap
    assert mig(np.c_[f[:, :1], f[:, :1]], f[:, :1]) == pytest.approx(0.0)  # duplicated code
    dci = dci_lite(f, f)
    assert dci["disentanglement"] > 0.95 and dci["completeness"] > 0.95  # identity weights
    img = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(ssim(img, img), torch.ones(2))
    assert float(ssim(img, torch.rand(2, 3, 32, 32)).max()) < 0.2  # independent noise


def test_fidelity_recovery_and_grid(data, test_data, tmp_path) -> None:  # noqa: ANN001
    result = _train(tmp_path / "r", data, epochs=1)
    reader = train_reader(data, steps=5, batch_size=16, progress=False)
    fid = intervention_fidelity(result.model, test_data, reader, n=8)
    assert set(fid) == {*result.model.factors, "mean"}
    assert np.isnan(fid["shadow_len"]["descendant_mae"])  # a sink has no descendants
    assert all(np.isfinite(v) for v in fid["mean"].values())
    rec = recovery(result.model, test_data)
    assert set(rec["factors"]) == set(result.model.factors)
    path = intervene_grid(tmp_path / "r", {"light": 1.5}, n=3, out=tmp_path / "grid.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = evaluate_run(tmp_path / "r", n_test=16, n_interventions=4, reader=reader,
                           progress=False)
    written = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert written["summary"] == pytest.approx(metrics["summary"], nan_ok=True)
    assert written["run"]["n_test"] == 16


def test_flow_dataset_trains_and_scores(cache, tmp_path) -> None:  # noqa: ANN001
    train = load_dataset("flow", size=32, split="train", n=32, progress=False)
    test = load_dataset("flow", size=32, split="test", n=8, progress=False)
    result = _train(tmp_path / "flow", train, epochs=1)
    assert result.model.factors == ["ball", "water", "hole", "flow"]
    reader = train_reader(train, steps=2, batch_size=8, progress=False)
    fid = intervention_fidelity(result.model, test, reader, n=4)
    assert np.isfinite(fid["ball"]["descendant_mae"])  # ball -> water -> flow
