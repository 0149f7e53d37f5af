"""A small NUTS fit of a Bayesian linear-Gaussian SCM, and every posterior query on it.

Truth: x = u_x;  y = 0.8 x + 0.5 u_y  (300 rows). The posterior sd of the coefficient is about
0.5 / sqrt(300) = 0.03, so a tolerance of 0.1 (3 sd) fails only if inference is off. The
fit is short (2 chains x 100 draws after 100 warm-up steps) to keep the default run fast;
tests/test_bayes_slow.py checks R-hat at the default settings.
"""

import copy

import numpy as np
import pytest

from scm import SCM, zoo
from scm.bayes import Draws, posterior_dataset, summary

W = np.array([[0.0, 0.8], [0.0, 0.0]])
TRUTH = zoo.linear_gaussian(W, np.array([1.0, 0.5]), ["x", "y"])


@pytest.fixture(scope="module")
def df():
    return TRUTH.sample(300, seed=0)


@pytest.fixture(scope="module")
def fitted(df):
    scm = SCM(TRUTH.graph, mechanisms="bayes-linear")
    return scm.fit(
        df, inference="nuts", num_chains=2, num_samples=100, warmup_steps=100, progress=False
    )


@pytest.fixture(scope="module")
def thinned(fitted):
    """The same fit with 10 draws per chain, for tests of plumbing rather than accuracy."""
    small = copy.deepcopy(fitted)
    small.posterior = fitted.posterior.thin(10)
    return small


def test_posterior_has_chain_and_draw_dims(fitted):
    assert fitted.posterior.method == "nuts"
    assert fitted.posterior.samples["y.weight"].shape == (2, 100, 1, 1)
    assert set(fitted.posterior.samples) == {"x.bias", "x.noise", "y.weight", "y.bias", "y.noise"}


def test_posterior_means_near_truth(fitted):
    post = posterior_dataset(fitted)
    coef = float(post["y.coef"].mean())
    noise = float(post["y.noise_sd"].mean())
    assert coef == pytest.approx(0.8, abs=0.1)  # 3 posterior sd
    # sd of a noise-scale estimate from 300 rows: 0.5 / sqrt(600) = 0.02.
    assert noise == pytest.approx(0.5, abs=0.06)


def test_summary_reports_rhat_and_ess(fitted):
    table = summary(fitted)
    assert {"r_hat", "ess_bulk", "ess_tail", "hdi_3%", "hdi_97%"} <= set(table.columns)
    assert table["r_hat"].max() < 1.05  # short chains: a loose bound; 1.01 at the defaults


def test_ate_returns_draws_around_truth(fitted):
    ate = fitted.ate("x", "y", a=0.0, b=1.0, n=50)
    assert isinstance(ate, Draws)
    assert ate["ate"].shape == (2, 100)
    lo, hi = ate.interval(0.94).loc["ate"]
    assert lo < 0.8 < hi
    # A linear SCM with common random numbers: each draw's effect is its coefficient exactly.
    coef = posterior_dataset(fitted)["y.coef"].to_numpy()[..., 0, 0]
    np.testing.assert_allclose(ate["ate"], coef, atol=1e-4)


def test_do_sample_returns_rows_per_draw(thinned):
    draws = thinned.do({"x": 1.0}).sample(64, seed=0)
    assert draws["y"].shape == (2, 10, 64)
    assert (draws["x"] == 1.0).all()
    table = draws.summary()
    assert table.loc["y", "mean"] == pytest.approx(0.8, abs=0.1)


def test_counterfactual_per_draw_is_exact(thinned, df):
    factual = df.head(5)
    cf = thinned.counterfactual(factual, {"x": 2.0})
    coef = posterior_dataset(thinned)["y.coef"].to_numpy()[..., 0, 0]
    expected = factual["y"].to_numpy() + coef[..., None] * (2.0 - factual["x"].to_numpy())
    np.testing.assert_allclose(cf["y"], expected, atol=1e-4)
    assert cf.summary(by_row=True).shape[0] == 2 * 5


def test_inference_data_groups(fitted):
    idata = fitted.to_inference_data()
    groups = set(idata.groups())
    assert {
        "posterior",
        "posterior_predictive",
        "log_likelihood",
        "observed_data",
        "sample_stats",
    } <= groups
    assert idata.log_likelihood["joint"].shape == (2, 100, 300)
    np.testing.assert_allclose(
        idata.log_likelihood["joint"], idata.log_likelihood["x"] + idata.log_likelihood["y"]
    )
    assert idata.posterior_predictive["y"].shape == (2, 100, 300)
    assert idata.sample_stats["diverging"].dtype == bool


def test_log_prob_is_posterior_predictive_density(fitted, df):
    from scipy.stats import norm

    lp = fitted.log_prob(df.head(20))
    post = posterior_dataset(fitted)
    coef = post["y.coef"].to_numpy().reshape(-1)
    icpt = post["y.intercept"].to_numpy().reshape(-1)
    sd = post["y.noise_sd"].to_numpy().reshape(-1)
    x, y = df["x"].to_numpy()[:20], df["y"].to_numpy()[:20]
    ly = norm.logpdf(y[None], icpt[:, None] + coef[:, None] * x[None], sd[:, None])
    mx = post["x.intercept"].to_numpy().reshape(-1)
    sx = post["x.noise_sd"].to_numpy().reshape(-1)
    lx = norm.logpdf(x[None], mx[:, None], sx[:, None])
    expected = np.log(np.exp(lx + ly).mean(0))
    np.testing.assert_allclose(lp, expected, atol=1e-3)


def test_save_load_round_trip(thinned, tmp_path):
    thinned.save(tmp_path / "run")
    back = SCM.load(tmp_path / "run")
    assert back.posterior is not None and back.posterior.method == "nuts"
    for group in ("samples", "sample_stats", "observed"):
        for k, v in getattr(thinned.posterior, group).items():
            assert getattr(back.posterior, group)[k].equal(v), (group, k)
    a = thinned.ate("x", "y", n=20)["ate"]
    np.testing.assert_array_equal(back.ate("x", "y", n=20)["ate"], a)


def test_tampered_posterior_is_rejected(thinned, tmp_path):
    thinned.save(tmp_path / "run")
    blob = tmp_path / "run" / "posterior.safetensors"
    blob.write_bytes(blob.read_bytes()[:-8])
    with pytest.raises(ValueError, match="checksum"):
        SCM.load(tmp_path / "run")


def test_ppc_png_and_netcdf(thinned, tmp_path):
    from scm.bayes import plot_ppc
    from scm.bayes._arviz import az
    from scm.bayes.arviz import write_netcdf

    png = plot_ppc(thinned, tmp_path / "ppc.png", num_pp_samples=20)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    nc = write_netcdf(thinned.to_inference_data(), tmp_path / "posterior.nc")
    back = az.from_netcdf(nc)
    assert back.posterior["y.coef"].shape == (2, 10, 1, 1)
    assert back.log_likelihood["joint"].shape == (2, 10, 300)
