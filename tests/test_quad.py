"""The quad concept SCM (scm.zoo) and its renderer / context-labelled data (models.data.quad)."""

import numpy as np
import pytest
from scipy import stats

from models.data import quad as q
from scm.zoo import (
    QUAD_INT_MEAN,
    QUAD_INT_VAR,
    QUAD_NODES,
    Redraw,
    quad,
    quad_intervention,
    quad_observational_std,
)

COL = {name: i for i, name in enumerate(QUAD_NODES)}
RED, MAGENTA = (255, 0, 0), (255, 0, 255)


def _latents(**phi_sign: float) -> np.ndarray:
    """One latent row: +-60 std pushes Phi to exactly 1 / 0; 0 gives Phi = 0.5."""
    row = np.zeros((1, len(QUAD_NODES)))
    for name, sign in phi_sign.items():
        row[0, COL[name]] = sign * 60.0 * quad_observational_std()[COL[name]]
    return row


def test_quad_graph_is_the_issue_graph():
    truth = {("quad2", "quad1"), ("quad3", "quad2"), ("quad4", "quad1"), ("quad4", "quad3"),
             ("color", "quad1"), ("color", "size"), ("shape", "quad2"), ("shape", "color"),
             ("orientation", "quad1"), ("orientation", "size"), ("orientation", "shape")}
    assert set(quad().to_networkx().edges) == truth
    assert set(quad(independent=True).to_networkx().edges) == set()


def test_observational_std_matches_monte_carlo():
    sample = quad().sample(100_000, seed=1)[list(QUAD_NODES)].to_numpy()
    # std error of a sample std is sd / sqrt(2n) ~ 0.22%; 2% is > 9 standard errors
    np.testing.assert_allclose(sample.std(0), quad_observational_std(), rtol=0.02)
    np.testing.assert_allclose(sample.mean(0), 0.0, atol=0.06)


@pytest.mark.parametrize("target", ["quad1", "size", "orientation"])
def test_intervention_marginal_after_phi_map(target):
    k = COL[target]
    raw = q.sample_latents((target,), 20_000, seed=3)
    phi = q.to_unit(raw)
    back = stats.norm.ppf(phi[:, k]) * quad_observational_std()[k]  # invert standardise + Phi
    ks = stats.kstest(back, "norm", args=(QUAD_INT_MEAN[k], np.sqrt(QUAD_INT_VAR[k])))
    assert ks.pvalue > 0.01, ks  # fixed seed; a wrong mean or variance gives p ~ 0
    observational = stats.norm.ppf(q.to_unit(q.sample_latents((), 20_000, seed=3))[:, k])
    assert stats.kstest(observational, "norm").pvalue > 0.01  # standardised obs ~ N(0, 1)


def test_redraw_keeps_non_descendants_exactly():
    obs = quad().sample(500, seed=4)
    hit = quad().do(quad_intervention(["color"])).sample(500, seed=4)
    for name in ("orientation", "shape", "quad4", "quad3"):  # not color's descendants
        np.testing.assert_array_equal(hit[name], obs[name])
    assert not np.allclose(hit["size"], obs["size"])  # color -> size


def test_redraw_counterfactual_reuses_noise():
    scm = quad()
    factual = scm.sample(50, seed=5)
    cf = scm.counterfactual(factual, {"quad3": Redraw(2.0, 0.5)})
    u = factual["quad3"] - (-0.72) * factual["quad4"]  # abducted noise times its std
    np.testing.assert_allclose(cf["quad3"], 2.0 + 0.5 * u / np.sqrt(1.0050), rtol=1e-10)
    np.testing.assert_array_equal(cf["quad4"], factual["quad4"])


def test_redraw_rejects_bad_scale():
    with pytest.raises(ValueError, match="scale > 0"):
        Redraw(0.0, -1.0)
    with pytest.raises(ValueError, match="quad intervention target"):
        quad_intervention(["nope"])


def test_known_pixel_colours():
    # quadrants: quad1 Phi 0 (red), quad2 Phi 1 (magenta), quad3 Phi 0.5 (hue 5/12), quad4 red;
    # the smallest shape (size Phi 0: s = 9.6 px) in the color latent's hue, Phi 1 = magenta
    image = q.draw_quad(_latents(quad1=-1, quad2=1, quad4=-1, size=-1, color=1), size=64)[0]
    assert tuple(image[63, 0]) == RED  # bottom-left
    assert tuple(image[63, 63]) == MAGENTA  # bottom-right
    assert tuple(image[0, 0]) == (0, 255, 128)  # top-left: hue 5/12 = (0, 1, 0.5)
    assert tuple(image[0, 63]) == RED  # top-right
    assert tuple(image[31, 31]) == MAGENTA  # the shape's centre


def test_shapes_and_size():
    # size Phi 1: s = 48. A square's corner region (22, 22) from the centre is inside it but
    # outside the circle of diameter 48 (radius 24 < 31).
    corner = (32 - 22, 32 + 22)  # (row, column): top-right, in quad4
    assert q.shape_index(np.array([0.0, 0.2, 0.5, 0.9, 1.0])).tolist() == [0, 1, 2, 3, 3]
    circle_row = _latents(size=1, shape=-1, color=1, quad4=-1)
    square_row = circle_row.copy()
    square_row[0, COL["shape"]] = stats.norm.ppf(1 / 3) * quad_observational_std()[COL["shape"]]
    images = q.draw_quad(np.concatenate([circle_row, square_row]), size=64)
    assert tuple(images[0][corner]) == RED  # circle: the quadrant shows
    assert tuple(images[1][corner]) == MAGENTA  # square: covered


def test_draw_sizes_average_the_fine_grid():
    latents = q.sample_latents((), 3, seed=0)
    big, small = q.draw_quad(latents, size=64), q.draw_quad(latents, size=32)
    pooled = big.astype(float).reshape(3, 32, 2, 32, 2, 3).mean((2, 4))
    assert np.abs(pooled - small).max() <= 1.0  # both round one common fine grid
    with pytest.raises(ValueError, match="size must be one of"):
        q.draw_quad(latents, size=48)


def test_load_quad_is_seeded_labelled_and_cached(cache, monkeypatch):
    data = q.load_quad(n_train=6, n_test=4, size=16, seed=1, progress=False)
    assert data.train.images.shape == (6 * len(q.QUAD_TRAIN_CONTEXTS), 16, 16, 3)
    assert np.bincount(data.heldout.context).tolist() == [4, 4, 4]
    assert data.heldout.contexts == q.QUAD_HELDOUT_CONTEXTS
    size_k = COL["size"]
    np.testing.assert_allclose(  # the size context's size latents are its own redraws
        data.train.latents[data.train.context == 5][:, size_k],
        q.sample_latents(("size",), 6, seed=int(np.random.SeedSequence([1, 0, 5])
                                                 .generate_state(1)[0]))[:, size_k],
        rtol=1e-6)

    def boom(*args, **kwargs):
        raise AssertionError("rendered again instead of reading the cache")

    monkeypatch.setattr(q, "draw_quad", boom)
    again = q.load_quad(n_train=6, n_test=4, size=16, seed=1, progress=False)
    np.testing.assert_array_equal(again.train.images, data.train.images)


def test_contexts_parse_and_name():
    assert q.parse_context("size,quad1") == ("quad1", "size")
    assert q.parse_context("obs") == () and q.context_name(()) == "obs"
    assert q.context_name(("quad1", "size")) == "quad1+size"
    with pytest.raises(ValueError, match="context concept must be one of"):
        q.parse_context("quad9")
