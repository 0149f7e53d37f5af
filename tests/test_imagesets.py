"""Tests of the offline Pendulum and Flow image sets (models/data). Fast: tiny renders at 32 px."""

from __future__ import annotations

import logging
import math
import zipfile
from pathlib import Path

import matplotlib
import numpy as np
import pytest

import models.data.imageset as imageset_module
from models.data import (
    FLOW_FACTORS,
    FLOW_GRAPH,
    PENDULUM_FACTORS,
    PENDULUM_GRAPH,
    ImageSet,
    counterfactual_factors,
    counterfactual_flow,
    counterfactual_pendulum,
    draw_flow,
    draw_pendulum,
    flow_factors,
    flow_jet_noise,
    flow_scenes,
    flow_test_mask,
    load_dataset,
    pendulum_factors,
    pendulum_scenes,
    pendulum_test_mask,
    render_flow,
    render_pendulum,
)
from models.data._canvas import area_weights

SIZE = 32  # every render in this file is 32 x 32 unless it tests the size itself


def _changed_pixels(a: np.ndarray, b: np.ndarray) -> int:
    """Number of pixels where two (H, W, 3) images differ in any channel."""
    return int(np.any(a != b, axis=-1).sum())


# ---------------------------------------------------------------- enumeration and splits


def test_pendulum_enumerates_7308_distinct_scenes() -> None:
    roots = pendulum_scenes()
    assert roots.shape == (7308, 2)
    assert len(np.unique(roots, axis=0)) == 7308
    np.testing.assert_allclose(roots[0], [-40 * math.pi / 200, 60 * math.pi / 200])
    np.testing.assert_allclose(roots[-1], [43 * math.pi / 200, 147 * math.pi / 200])
    # j = 100 (light straight down, phi = pi/2) is left out.
    assert not np.any(np.isclose(roots[:, 1], math.pi / 2))


def test_pendulum_split_is_every_fourth_scene() -> None:
    mask = pendulum_test_mask(7308)
    assert mask.sum() == 1827 and (~mask).sum() == 5481
    assert np.array_equal(np.flatnonzero(mask)[:3], [3, 7, 11])


def test_flow_enumerates_8100_scenes_and_seeded_fifth_to_test() -> None:
    roots = flow_scenes()
    assert roots.shape == (8100, 3)
    assert len(np.unique(roots, axis=0)) == 8100
    mask = flow_test_mask(8100)
    assert mask.sum() == 1620
    assert np.array_equal(mask, flow_test_mask(8100))  # deterministic
    assert not np.array_equal(mask, flow_test_mask(8100, seed=1))  # and it is the seed's doing


def test_load_dataset_subset_stays_in_split(tmp_path: Path) -> None:
    test = load_dataset("pendulum", size=SIZE, split="test", n=5, cache_dir=tmp_path,
                        progress=False)
    train = load_dataset("pendulum", size=SIZE, split="train", n=5, cache_dir=tmp_path,
                         progress=False)
    mask = pendulum_test_mask(7308)
    assert mask[test.index].all() and not mask[train.index].any()
    # Evenly spaced over the split: first and last scene of the split are kept.
    assert test.index[0] == 3 and test.index[-1] == np.flatnonzero(mask)[-1]
    assert test.images.shape == (5, SIZE, SIZE, 3) and test.images.dtype == np.uint8
    assert test.factors.shape == (5, 4) and test.factors.dtype == np.float32


# ---------------------------------------------------------------- factor equations


def test_pendulum_shadow_matches_hand_geometry() -> None:
    # theta = 0, phi = pi/4: pivot projects to 10 - 11 = -1, rod tip (10, 1) to 10 - 1.5 = 8.5.
    # theta = 0, phi = 3pi/4: pivot to 10 + 11 = 21, tip to 11.5.
    f = pendulum_factors([0.0, 0.0], [math.pi / 4, 3 * math.pi / 4])
    np.testing.assert_allclose(f[:, 2:], [[9.5, 3.75], [9.5, 16.25]], atol=1e-12)
    # phi = pi/2 + theta: the light runs along the rod, the shadow collapses onto the pivot's
    # projection 10 + 11 tan(theta) and is held at the minimum length 3.
    theta = math.pi / 5
    f = pendulum_factors(theta, math.pi / 2 + theta)
    np.testing.assert_allclose(f[0, 2:], [3.0, 10 + 11 * math.tan(theta)], atol=1e-9)


def test_pendulum_shadow_length_floor_is_active_in_the_data_set() -> None:
    f = pendulum_factors(*pendulum_scenes().T)
    assert f[:, 2].min() == 3.0
    assert 0 < (f[:, 2] == 3.0).sum() < len(f)  # the floor binds for some scenes, not all


def test_flow_factors_follow_the_equations() -> None:
    # water = 0.125 + 1 = 1.125; flow = sqrt(2 * 0.98 * 1.125 * 2) = sqrt(4.41) = 2.1.
    np.testing.assert_allclose(flow_factors(0.5, 2.5, 1.0), [[0.5, 1.125, 2.5, 2.1]])
    roots = flow_scenes()
    f = flow_factors(*roots.T)
    np.testing.assert_allclose(f[:, 1], roots[:, 0] ** 3 + roots[:, 2])
    np.testing.assert_allclose(f[:, 3] ** 2, 2 * 0.98 * f[:, 1] * (f[:, 2] - 0.5))


def test_flow_jet_noise_is_never_below_a_hundredth() -> None:
    eps = flow_jet_noise(8100)
    assert eps.min() == pytest.approx(0.01)
    assert 0.5 < np.mean(eps == 0.01) < 0.8  # P(|z| <= 1) = 0.68
    assert np.array_equal(eps, flow_jet_noise(8100))


# ---------------------------------------------------------------- renderers


def _pendulum_batch() -> np.ndarray:
    return pendulum_factors([-0.5, 0.0, 0.3, 0.6], [1.0, 1.3, 1.9, 2.2])


def _flow_batch() -> np.ndarray:
    return flow_factors([0.2, 0.5, 0.8, 1.1], [2.0, 3.0, 4.0, 4.6], [1.0, 2.0, 3.0, 3.9])


def test_renderers_are_deterministic_and_independent_of_the_batch() -> None:
    f = _pendulum_batch()
    images = draw_pendulum(f, size=SIZE)
    assert images.shape == (4, SIZE, SIZE, 3) and images.dtype == np.uint8
    assert np.array_equal(images, draw_pendulum(f, size=SIZE))
    # The figure is reused between scenes: no state may leak from one scene to the next.
    assert np.array_equal(images[2:], draw_pendulum(f[2:], size=SIZE))
    g = _flow_batch()
    flows = draw_flow(g, jet_noise=0.02, size=SIZE)
    assert np.array_equal(flows, draw_flow(g, jet_noise=0.02, size=SIZE))
    assert np.array_equal(flows[3:], draw_flow(g[3:], jet_noise=0.02, size=SIZE))


def test_render_from_roots_equals_draw_of_their_factors() -> None:
    assert np.array_equal(
        render_pendulum([0.1, 0.2], [1.1, 2.0], size=SIZE),
        draw_pendulum(pendulum_factors([0.1, 0.2], [1.1, 2.0]), size=SIZE),
    )
    assert np.array_equal(
        render_flow(0.5, 3.0, 2.0, size=SIZE), draw_flow(flow_factors(0.5, 3.0, 2.0), size=SIZE)
    )


@pytest.mark.parametrize("column", range(4))
def test_pendulum_image_changes_with_each_factor(column: int) -> None:
    f = pendulum_factors(0.2, 1.2)
    moved = f.copy()
    moved[0, column] += [0.3, 0.5, 4.0, 3.0][column]
    a, b = draw_pendulum(np.concatenate([f, moved]), size=SIZE)
    assert _changed_pixels(a, b) >= 3


@pytest.mark.parametrize("column", range(4))
def test_flow_image_changes_with_each_factor(column: int) -> None:
    f = flow_factors(0.5, 3.0, 2.0)
    moved = f.copy()
    moved[0, column] += [0.4, 2.0, 1.5, 2.0][column]
    a, b = draw_flow(np.concatenate([f, moved]), size=SIZE)
    assert _changed_pixels(a, b) >= 3


def test_small_images_are_area_reductions_of_the_96_pixel_drawing() -> None:
    f = _pendulum_batch()
    big = draw_pendulum(f, size=96).astype(np.float64)
    block_mean = big.reshape(4, 32, 3, 32, 3, 3).mean(axis=(2, 4))
    assert np.array_equal(np.rint(block_mean).astype(np.uint8), draw_pendulum(f, size=32))
    np.testing.assert_allclose(area_weights(96, 64).sum(axis=1), 1.0)
    assert draw_pendulum(f[:1], size=64).shape == (1, 64, 64, 3)


def test_user_rcparams_and_backend_do_not_leak_in_or_out() -> None:
    f = _pendulum_batch()
    reference = draw_pendulum(f, size=SIZE)
    backend = matplotlib.get_backend()
    with matplotlib.rc_context({"patch.linewidth": 6.0, "lines.linewidth": 9.0}):
        assert np.array_equal(draw_pendulum(f, size=SIZE), reference)
        assert matplotlib.rcParams["patch.linewidth"] == 6.0  # the user's setting is restored
    assert matplotlib.get_backend() == backend


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match="light angle phi must lie in"):
        pendulum_factors(0.0, 0.0)
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        draw_pendulum(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="'hole' must be > 0.5"):
        draw_flow([0.5, 1.0, 0.4, 1.0])
    with pytest.raises(ValueError, match="size must be between"):
        render_pendulum(0.0, 1.0, size=4)
    with pytest.raises(ValueError, match="name must be one of"):
        load_dataset("quad", progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="split must be one of"):
        load_dataset("flow", split="val", progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown factors"):
        counterfactual_pendulum(_pendulum_batch(), {"sun": 1.0}, size=SIZE)


# ---------------------------------------------------------------- counterfactuals


@pytest.mark.parametrize("name", ["pendulum", "flow"])
def test_identity_intervention_renders_the_factual_image_exactly(
    name: str, tmp_path: Path
) -> None:
    ds = load_dataset(name, size=SIZE, split="test", n=6, cache_dir=tmp_path, progress=False)
    root = ds.factor_names[0]
    for interventions in ({}, {root: ds.factors[:, 0]}):
        images, factors = ds.counterfactual(interventions)
        assert np.array_equal(images, ds.images)
        assert np.array_equal(factors, ds.factors.astype(np.float64))


def test_stored_images_are_the_render_of_the_stored_factors(tmp_path: Path) -> None:
    ds = load_dataset("flow", size=SIZE, split="train", n=4, cache_dir=tmp_path, progress=False)
    assert np.array_equal(draw_flow(ds.factors, jet_noise=ds.noise, size=SIZE), ds.images)
    assert not np.array_equal(draw_flow(ds.factors, jet_noise=0.5, size=SIZE), ds.images)


def test_do_light_moves_the_shadow_and_keeps_the_pendulum() -> None:
    f = _pendulum_batch()
    images, new = counterfactual_pendulum(f, {"light": 2.0}, size=SIZE)
    assert np.array_equal(new[:, 0], f[:, 0])  # pendulum angle is not a descendant of light
    assert np.all(new[:, 1] == 2.0)
    np.testing.assert_allclose(new, pendulum_factors(f[:, 0], 2.0), atol=1e-12)
    assert np.all(np.abs(new[:, 3] - f[:, 3]) > 0.5)  # every shadow moved
    factual = draw_pendulum(f, size=SIZE)
    assert all(_changed_pixels(a, b) > 0 for a, b in zip(images, factual, strict=True))


def test_do_on_shadow_length_draws_it_as_given_with_parents_kept() -> None:
    f = _pendulum_batch()
    images, new = counterfactual_pendulum(f, {"shadow_len": 12.0}, size=SIZE)
    assert np.array_equal(new[:, [0, 1, 3]], f[:, [0, 1, 3]])
    assert np.all(new[:, 2] == 12.0)
    assert np.array_equal(images, draw_pendulum(new, size=SIZE))
    assert all(_changed_pixels(a, b) > 0 for a, b in zip(images, draw_pendulum(f, size=SIZE),
                                                         strict=True))


def test_flow_do_ball_keeps_the_scene_water_noise() -> None:
    f = flow_factors([0.2, 0.9], [3.0, 4.0], [1.5, 2.5])
    _, new = counterfactual_flow(f, {"ball": 1.0}, jet_noise=[0.01, 0.02], size=SIZE)
    # Abduction: u_water = water - ball**3 = [1.5, 2.5]; prediction with ball = 1.
    np.testing.assert_allclose(new, flow_factors(1.0, [3.0, 4.0], [1.5, 2.5]), atol=1e-12)
    _, new = counterfactual_flow(f, {"flow": 5.0}, size=SIZE)
    assert np.array_equal(new[:, :3], f[:, :3]) and np.all(new[:, 3] == 5.0)


def test_counterfactual_factors_recomputes_only_descendants_of_what_changed() -> None:
    graph = {"a": (), "b": ("a",), "c": ()}
    eqs = {"b": lambda pa: 2 * pa["a"]}
    factual = np.array([[1.0, 2.5, 7.0], [2.0, 4.0, 8.0]])
    new = counterfactual_factors(factual, {"a": [1.0, 3.0]}, names=("a", "b", "c"),
                                 graph=graph, equations=eqs)
    # Row 0: a unchanged, so b keeps its value; row 1: b = 2 * 3 + (4 - 2 * 2) = 6.
    np.testing.assert_array_equal(new, [[1.0, 2.5, 7.0], [3.0, 6.0, 8.0]])


def test_identity_intervention_is_exact_even_where_abduction_would_round() -> None:
    # water - ball**3 + ball**3 != water in float64 for some rows; do(ball := ball) must still
    # return the factual factors bit for bit (descendants of unchanged values are not touched).
    rng = np.random.default_rng(0)
    f = flow_factors(rng.uniform(0.1, 1.2, 2000), 3.0, 0.0)
    f[:, 1] = rng.uniform(1.0, 6.0, 2000)
    new = counterfactual_factors(f, {"ball": f[:, 0]}, names=FLOW_FACTORS, graph=FLOW_GRAPH,
                                 equations={"water": lambda pa: pa["ball"] ** 3,
                                            "flow": lambda pa: np.sqrt(pa["water"])})
    assert np.array_equal(new, f)


def test_imageset_carries_the_graph() -> None:
    ds = ImageSet(
        images=np.zeros((1, SIZE, SIZE, 3), np.uint8),
        factors=np.zeros((1, 4), np.float32),
        factor_names=FLOW_FACTORS,
        graph=FLOW_GRAPH,
        split="all",
        name="flow",
        index=np.zeros(1, np.int64),
    )
    np.testing.assert_array_equal(
        ds.adjacency, [[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    )
    assert set(PENDULUM_GRAPH["shadow_pos"]) == {"pendulum", "light"}
    assert PENDULUM_FACTORS == ("pendulum", "light", "shadow_len", "shadow_pos")


# ---------------------------------------------------------------- cache


def _cache_file(tmp_path: Path) -> Path:
    (path,) = tmp_path.glob("*.npz")
    return path


def test_cache_round_trip_does_not_render_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_dataset("pendulum", size=SIZE, split="all", n=7, cache_dir=tmp_path,
                         progress=False)
    path = _cache_file(tmp_path)
    assert path.name == "pendulum-32px-all-n7-v1.npz"
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind

    def no_render(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("rendered although the cache was valid")

    monkeypatch.setattr(imageset_module, "draw_pendulum", no_render)
    second = load_dataset("pendulum", size=SIZE, split="all", n=7, cache_dir=tmp_path,
                          progress=False)
    assert np.array_equal(first.images, second.images)
    assert np.array_equal(first.factors, second.factors)
    assert np.array_equal(first.index, second.index)


def test_cache_dir_defaults_to_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAUFLOW_CACHE", str(tmp_path))
    load_dataset("flow", size=SIZE, split="test", n=2, progress=False)
    assert _cache_file(tmp_path).name == "flow-32px-test-n2-v1.npz"


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_content"])
def test_corrupt_cache_file_is_rebuilt(
    damage: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = load_dataset("flow", size=SIZE, split="test", n=3, cache_dir=tmp_path,
                        progress=False)
    path = _cache_file(tmp_path)
    if damage == "garbage":
        path.write_bytes(b"not an npz file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    else:
        np.savez_compressed(path, images=np.zeros((3, SIZE, SIZE, 3), np.uint8))
    with caplog.at_level(logging.WARNING, logger="models.data"):
        rebuilt = load_dataset("flow", size=SIZE, split="test", n=3, cache_dir=tmp_path,
                               progress=False)
    assert "rebuilding" in caplog.text
    assert np.array_equal(rebuilt.images, good.images)
    with zipfile.ZipFile(path) as archive:  # the file on disk is whole again
        assert archive.testzip() is None
    with np.load(path, allow_pickle=False) as stored:
        assert np.array_equal(stored["images"], good.images)
