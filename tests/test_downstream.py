"""Downstream sample efficiency on a tiny configuration: 64 + 32 pendulum images at 32x32."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor

from models.caufvae import CauFVAE
from models.data import load_dataset
from models.data.imageset import ImageSet
from models.downstream import (
    encode_features,
    fit_logistic,
    format_curves,
    pixel_features,
    sample_efficiency,
)

SIZES = (10, 20, 50)


@pytest.fixture(scope="module")
def train(cache) -> ImageSet:  # noqa: ANN001
    return load_dataset("pendulum", size=32, split="train", n=64, progress=False)


@pytest.fixture(scope="module")
def test(cache) -> ImageSet:  # noqa: ANN001
    return load_dataset("pendulum", size=32, split="test", n=32, progress=False)


class FactorOracle:
    """``encode`` returns each image's true factors, looked up by its pixels: a perfect
    representation, so that any misalignment of images and labels in the plumbing shows."""

    def __init__(self, *sets: ImageSet, noise: float = 0.0) -> None:
        self.table = {img.tobytes(): f for s in sets for img, f in zip(s.images, s.factors,
                                                                        strict=True)}
        self.names = sets[0].factor_names
        self.noise = noise
        self.gen = torch.Generator().manual_seed(0)

    def encode(self, images: Tensor) -> dict[str, Tensor]:
        raw = (images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        f = torch.as_tensor(np.stack([self.table[img.tobytes()] for img in raw]))
        f = f + self.noise * torch.randn(f.shape, generator=self.gen)
        return {name: f[:, i : i + 1] for i, name in enumerate(self.names)}


class NoiseEncoder:
    """``encode`` returns seeded noise: a representation carrying nothing."""

    def __init__(self) -> None:
        self.gen = torch.Generator().manual_seed(0)

    def encode(self, images: Tensor) -> Tensor:
        return torch.randn(len(images), 4, generator=self.gen)


def test_pixel_table_is_unique(train: ImageSet, test: ImageSet) -> None:
    # the oracle needs one image per scene; two equal renders would make it ambiguous
    assert len(FactorOracle(train, test).table) == len(train) + len(test)


def test_keys_and_ranges(train: ImageSet, test: ImageSet) -> None:
    res = sample_efficiency(FactorOracle(train, test), train, test, sizes=SIZES, repeats=2)
    assert set(res) == {"target", "threshold", "sizes", "chance", "factors", "pixels"}
    assert res["sizes"] == list(SIZES)
    assert res["threshold"] == pytest.approx(float(np.median(train.factors[:, 2])))
    for curve in (res["factors"], res["pixels"]):
        assert list(curve) == list(SIZES)
        assert all(0.0 <= a <= 1.0 for a in curve.values())
    assert 0.0 <= res["chance"] <= 1.0
    assert "pixels" not in sample_efficiency(FactorOracle(train, test), train, test,
                                             sizes=(10,), repeats=1, baseline=False)


def test_true_factors_give_near_perfect_accuracy(train: ImageSet, test: ImageSet) -> None:
    res = sample_efficiency(FactorOracle(train, test), train, test, sizes=SIZES, repeats=3)
    # the target itself is a feature: only test points next to the threshold can be missed
    assert res["factors"][50] >= 0.9
    # and a representation carrying nothing stays near chance on the same draws
    noise = sample_efficiency(NoiseEncoder(), train, test, sizes=SIZES, repeats=3,
                              baseline=False)
    assert noise["factors"][50] <= 0.75
    assert res["factors"][50] - noise["factors"][50] >= 0.2


def test_seeded_and_repeatable(train: ImageSet, test: ImageSet) -> None:
    oracle = FactorOracle(train, test, noise=1.0)
    a = sample_efficiency(oracle, train, test, sizes=(10,), repeats=2, seed=3)
    b = sample_efficiency(oracle, train, test, sizes=(10,), repeats=2, seed=3)
    assert a["pixels"] == b["pixels"]  # pixels are deterministic given the draws


def test_threshold_option(train: ImageSet, test: ImageSet) -> None:
    top = float(max(train.factors[:, 2].max(), test.factors[:, 2].max())) + 1.0  # one class
    res = sample_efficiency(FactorOracle(train, test), train, test, sizes=(10,),
                            threshold=top, repeats=1)
    assert res["threshold"] == top
    assert res["chance"] == 1.0 and res["factors"][10] == 1.0 and res["pixels"][10] == 1.0


def test_rejects_bad_arguments(train: ImageSet, test: ImageSet) -> None:
    oracle = FactorOracle(train, test)
    with pytest.raises(ValueError, match="target must be one of"):
        sample_efficiency(oracle, train, test, target="shadow")
    with pytest.raises(ValueError, match="sizes must be"):
        sample_efficiency(oracle, train, test, sizes=(10, 500))
    with pytest.raises(ValueError, match="repeats"):
        sample_efficiency(oracle, train, test, sizes=(10,), repeats=0)


def test_fit_logistic_separable_and_one_class() -> None:
    x = np.linspace(-1, 1, 40)[:, None]
    y = x[:, 0] > 0.1
    assert (fit_logistic(x, y)(x) == y).all()
    const = fit_logistic(x[:5], np.zeros(5, bool))
    assert not const(x).any()
    with pytest.raises(ValueError, match="same non-zero length"):
        fit_logistic(x, y[:3])


def test_fit_logistic_matches_closed_form_1d() -> None:
    # symmetric classes about 0 with equal spacing: the fitted boundary is at 0 by symmetry
    x = np.concatenate([np.linspace(-3, -0.5, 10), np.linspace(0.5, 3, 10)])[:, None]
    x = x + np.random.default_rng(0).normal(scale=1.0, size=x.shape)  # overlapping classes
    x = np.concatenate([x, -x])  # symmetrise: boundary exactly at 0
    y = np.concatenate([np.arange(20) >= 10, np.arange(20) < 10])
    predict = fit_logistic(x, y)
    assert predict(np.array([[1e-3], [-1e-3]])).tolist() == [True, False]


def test_features_shapes(train: ImageSet) -> None:
    assert pixel_features(train.images).shape == (64, 32 * 32 * 3)
    vae = CauFVAE({"pendulum": [], "light": [], "shadow_len": ["pendulum", "light"],
                   "shadow_pos": ["pendulum", "light"]}, dims={"light": 2}, image_size=32,
                  channels=8, hidden=32, flow_layers=2, flow_hidden=(16, 16))
    z = encode_features(vae, train.images, batch=16)  # batches must concatenate in order
    assert z.shape == (64, 5)
    assert np.allclose(z, encode_features(vae, train.images, batch=64))


def test_format_curves() -> None:
    text = format_curves({"caufvae": {10: 0.5, 20: 0.75}, "pixels": {10: 0.4, 20: 0.6}})
    assert "n=10" in text and "0.750" in text and text.count("\n") == 3
