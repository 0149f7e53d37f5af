"""The closed-form linearity check that ``"auto"`` consults before keeping a linear mechanism."""

import math

import pytest
import torch

from scm.linearity import check_linearity


def _rows(n: int, seed: int, width: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, width, generator=gen), torch.randn(n, 1, generator=gen)


def test_linear_gaussian_rows_pass_on_every_seed():
    """y = A x + b + Gaussian noise, three parents: each statistic is about χ² with 9 (mean)
    or 6 (scale) degrees of freedom, against BIC penalties of 77 and 51 at n = 5,000, so a
    rejection has odds far below 1e-6 and none of 20 seeds may reject."""
    for seed in range(20):
        x, noise = _rows(5000, seed, width=3)
        y = x @ torch.tensor([[0.8], [-1.5], [0.3]]) + 2.0 + 0.7 * noise
        check = check_linearity(y, x)
        assert check is not None and not check.rejects_linear, (seed, check)
        assert math.isclose(check.mean_penalty, 9 * math.log(5000))


def test_a_near_linear_mean_is_rejected():
    """tanh(x / 2) + noise of std 0.5: the best line leaves a curvature of 1.1% of the noise
    variance, worth at most 2.8 nats over 500 held-out rows to a perfect model (a fitted flow
    gets less), but n log(1.011) = 55 expected over 5,000 rows against a penalty of 17: the
    five seeds measure 42-76, so twice the penalty leaves room."""
    for seed in range(5):
        x, noise = _rows(5000, seed)
        check = check_linearity(torch.tanh(x / 2) + 0.5 * noise, x)
        assert check is not None and check.mean > 2 * check.mean_penalty, check
        assert check.rejects_linear


def test_noise_whose_spread_depends_on_the_parent_is_rejected():
    """A linear mean with a spread exp(0.3 x): the scale check rejects, the mean check not."""
    x, noise = _rows(5000, 0)
    check = check_linearity(x + torch.exp(0.3 * x) * noise, x)
    assert check is not None and check.rejects_linear
    assert check.scale > check.scale_penalty and check.mean < check.mean_penalty


def test_a_saturating_mean_with_constant_spread_is_not_called_heteroscedastic():
    """1.5 tanh(2x) + 0.3 x + noise of std 0.7: the spread is constant, so the scale statistic
    is about χ² with 2 degrees of freedom against a BIC penalty of 17 at n = 5,000 (odds of a
    rejection ~2e-4 per seed); the mean check rejects a line. A cubic alone left the tanh's
    misfit in the residuals, and the scale statistic measured 60-176 on these ten seeds (the
    spline terms: 0-4.5)."""
    for seed in range(10):
        x, noise = _rows(5000, seed)
        check = check_linearity(1.5 * torch.tanh(2 * x) + 0.3 * x + 0.7 * noise, x)
        assert check is not None and check.scale <= check.scale_penalty, (seed, check)
        assert check.mean > check.mean_penalty


def test_vector_nodes_and_few_rows():
    """A 2-wide node on a 4-wide context is checked as a whole (the mean penalty counts both
    outputs); with fewer than five rows per coefficient there is no verdict."""
    x, _ = _rows(3000, 1, width=4)
    y = torch.stack([x[:, 0] - x[:, 1], torch.sin(2 * x[:, 2])], -1)
    y = y + 0.3 * torch.randn(3000, 2, generator=torch.Generator().manual_seed(2))
    check = check_linearity(y, x)
    assert check is not None and check.rejects_linear
    assert math.isclose(check.mean_penalty, (4 + 4 + 6) * 2 * math.log(3000))
    assert check_linearity(y[:40], x[:40]) is None


def test_wide_contexts_leave_out_the_pairwise_products():
    """Past ``MAX_INTERACTING`` parent columns the mean check keeps squares and cubes only, so
    its cost grows linearly with the context (here 12 columns: 24 extra terms, not 90)."""
    from scm.linearity import MAX_INTERACTING

    x, noise = _rows(4000, 3, width=MAX_INTERACTING + 2)
    check = check_linearity(x.sum(-1, keepdim=True) + noise, x)
    assert check is not None and not check.rejects_linear
    assert math.isclose(check.mean_penalty, 2 * (MAX_INTERACTING + 2) * math.log(4000))


def test_auto_flows_turn_homoscedastic_where_the_spread_check_passes(tmp_path):
    """``mark_homoscedastic_flows`` (``scm.auto.HOMOSCEDASTIC_AUTO``) flags the flow of a node
    with additive noise and not that of a node whose spread grows with its parent; the flag
    is part of the saved spec."""
    import numpy as np
    import pandas as pd

    from scm import SCM
    from scm.auto import mark_homoscedastic_flows
    from scm.fit import standardize_mechanisms
    from scm.frame import to_tensors

    rng = np.random.default_rng(0)
    x1 = rng.normal(size=4000)
    df = pd.DataFrame({"x1": x1,
                       "add": np.tanh(x1) + 0.5 * rng.normal(size=4000),
                       "spread": x1 + np.exp(0.5 * x1) * rng.normal(size=4000)})
    m = SCM({"x1": [], "add": ["x1"], "spread": ["x1"]}, "auto")
    rows = to_tensors(df, m.dims)
    standardize_mechanisms(m, rows)
    mark_homoscedastic_flows(m, rows)
    assert m.mechanisms["add"].homoscedastic and not m.mechanisms["spread"].homoscedastic
    m.save(tmp_path / "m")
    assert SCM.load(tmp_path / "m").mechanisms["add"].homoscedastic


def test_a_constant_node_is_checked_and_fitted():
    """A node whose every row is the same value: nothing varies, so neither statistic rejects
    (the spread statistic was a log of zero), and an ``"auto"`` fit keeps it at that value."""
    import numpy as np
    import pandas as pd

    from scm import SCM

    x, _ = _rows(2000, 4)
    check = check_linearity(torch.full((2000, 1), 3.0), x)
    assert check is not None and not check.rejects_linear and check.scale == 0.0
    df = pd.DataFrame({"a": x[:, 0].numpy(), "b": np.full(2000, 3.0)})
    m = SCM({"a": [], "b": ["a"]}, "auto")
    with pytest.warns(UserWarning, match="node 'b' is constant"):
        m.fit(df, steps=100, progress=False, seed=0)
    assert np.allclose(m.sample(500, seed=0)["b"], 3.0, atol=1e-4)


def test_spline_knots_are_torch_quantiles():
    """The spread check's knots are ``torch.quantile``'s (linear interpolation), computed from
    order statistics so that tables of over 2**24 elements, which ``torch.quantile`` refuses,
    are checked too."""
    from scm.linearity import _spline_terms

    x = torch.randn(4001, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    q = torch.quantile(x, torch.tensor([0.2, 0.4, 0.6, 0.8], dtype=x.dtype), dim=0)
    expected = (x[:, None, :] - q).clamp_min(0).pow(3).flatten(1)
    torch.testing.assert_close(_spline_terms(x), expected, rtol=0, atol=1e-12)
