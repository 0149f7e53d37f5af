"""The causal NF paper's SCMs (scm.zoo_causal_nf): exact counterfactuals and known moments."""

from __future__ import annotations

import numpy as np
import pytest

from scm import zoo
from scm.zoo_causal_nf import CAUSAL_NF


@pytest.mark.parametrize("name", sorted(CAUSAL_NF))
def test_in_the_zoo_and_an_empty_counterfactual_is_the_factual(name: str) -> None:
    truth = zoo.ZOO[name]()
    rows = truth.sample(500, seed=0)
    assert list(rows.columns) == truth.nodes and np.isfinite(rows.to_numpy()).all()
    np.testing.assert_allclose(truth.counterfactual(rows, {}).to_numpy(), rows.to_numpy(),
                               atol=1e-9)


def test_the_quadratic_chain_counterfactual_by_hand() -> None:
    """x2 = x1² - u2, x3 = 0.25 x2 + 2 u3: under do(x1 = a) each row keeps its noises, so
    x2' = x2 + a² - x1² and x3' = x3 + 0.25 (x2' - x2), to float rounding."""
    truth = zoo.ZOO["cnf_chain_nlin3"]()
    rows = truth.sample(300, seed=1)
    a = np.linspace(-2, 2, 300)
    cf = truth.counterfactual(rows, {"x1": a})
    x2 = rows.x2 + a**2 - rows.x1**2
    np.testing.assert_allclose(cf.x1, a)
    np.testing.assert_allclose(cf.x2, x2, atol=1e-9)
    np.testing.assert_allclose(cf.x3, rows.x3 + 0.25 * (x2 - rows.x2), atol=1e-9)


def test_moments_that_follow_from_the_equations() -> None:
    """200,000 rows; tolerances are about 5 standard errors of each estimate.
    Linear chain: var x2 = 100 + 1, var x3 = 0.0625 * 101 + 4. Bounded-root chain: x1 =
    sigmoid(u1) has mean 1/2 by symmetry. Large backdoor: x9 around its location is
    Laplace(0, 0.6), variance 2 * 0.36; x1 = softplus(1.8 u1) - 1 > -1."""
    n = 200_000
    lin = zoo.ZOO["cnf_chain_lin"]().sample(n, seed=2)
    assert lin.x2.var() == pytest.approx(101, rel=0.02)
    assert lin.x3.var() == pytest.approx(0.0625 * 101 + 4, rel=0.02)
    bounded = zoo.ZOO["cnf_chain_nlin2"]().sample(n, seed=3)
    assert bounded.x1.mean() == pytest.approx(0.5, abs=0.003)
    assert ((bounded.x1 > 0) & (bounded.x1 < 1)).all()
    backdoor = zoo.ZOO["cnf_backdoor"]()
    rows = backdoor.sample(n, seed=4)
    eq = backdoor.equations["x9"]
    resid = rows.x9 - eq.loc({k: rows[k].to_numpy() for k in rows})
    assert resid.var() == pytest.approx(0.72, rel=0.03)
    assert rows.x1.min() > -1
