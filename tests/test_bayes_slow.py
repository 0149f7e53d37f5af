"""Statistical checks of NUTS at realistic settings (slow: each needs full MCMC runs)."""

import time

import arviz as az
import numpy as np
import pytest

from scm import SCM, zoo
from scm.bayes import compare_graphs, posterior_dataset, summary


@pytest.mark.slow
def test_default_nuts_converges_and_recovers_weights():
    """Default settings (4 chains x 500 draws after 500 warm-up) on the zoo chain, 500 rows.

    Slow: 4,000 NUTS iterations (about a minute on one free core)."""
    truth = zoo.chain()
    df = truth.sample(500, seed=0)
    start = time.perf_counter()
    scm = SCM(truth.graph, mechanisms="bayes-linear").fit(df, inference="nuts", progress=False)
    elapsed = time.perf_counter() - start
    table = summary(scm)
    print(f"\nNUTS defaults on chain (500 rows): {elapsed:.1f} s\n{table.to_string()}")
    # az.summary rounds R-hat to 2 decimals (1.005 shows as 1.01): test the unrounded values.
    rhat = az.rhat(posterior_dataset(scm))
    worst = max(float(rhat[v].max()) for v in rhat.data_vars)
    print(f"max unrounded r_hat {worst:.4f}")
    assert worst < 1.01
    assert table["ess_bulk"].min() > 400
    post = posterior_dataset(scm)
    # Posterior sd of each coefficient is about noise_sd / (parent sd * sqrt(500)): 0.045
    # for x2 <- x1 and 0.02 for x3 <- x2; 0.15 and 0.08 are about 3-4 sd plus this data
    # set's own sampling error.
    assert float(post["x2.coef"].mean()) == pytest.approx(1.5, abs=0.15)
    assert float(post["x3.coef"].mean()) == pytest.approx(-1.2, abs=0.08)
    assert int(scm.posterior.sample_stats["diverging"].sum()) == 0


@pytest.mark.slow
def test_ate_interval_coverage_over_seeds():
    """90% HDIs of the ATE of x on y (truth 0.8) cover the truth in >= 85% of 20 data sets.

    Slow: 20 NUTS fits (one chain of 200 draws after 150 warm-up steps, 200 rows each).
    With exact calibration the number of misses is Binomial(20, 0.1); the seeds are fixed,
    so the outcome is deterministic."""
    w = np.array([[0.0, 0.8], [0.0, 0.0]])
    truth = zoo.linear_gaussian(w, np.array([1.0, 0.5]), ["x", "y"])
    covered = []
    for seed in range(20):
        df = truth.sample(200, seed=seed)
        scm = SCM(truth.graph, mechanisms="bayes-linear").fit(
            df,
            inference="nuts",
            num_chains=1,
            num_samples=200,
            warmup_steps=150,
            seed=seed,
            progress=False,
        )
        lo, hi = scm.ate("x", "y", n=10).interval(0.9).loc["ate"]
        covered.append(lo <= 0.8 <= hi)
    print(f"\ncoverage of 90% HDIs over 20 seeds: {np.mean(covered):.2f}")
    assert np.mean(covered) >= 0.85


@pytest.mark.slow
def test_compare_ranks_true_collider_above_chain():
    """az.compare (PSIS-LOO) prefers the true collider x1 -> x3 <- x2 over the chain
    x1 -> x3 -> x2 (x2 <- x3 reversed: no longer a v-structure, so outside the collider's
    equivalence class and with a different likelihood). Slow: two NUTS fits."""
    truth = zoo.collider()
    df = truth.sample(300, seed=0)
    chain = {"x1": [], "x3": ["x1"], "x2": ["x3"]}
    table = compare_graphs(
        {"collider": truth.graph, "chain": chain},
        df,
        num_chains=2,
        num_samples=150,
        warmup_steps=150,
    )
    print(f"\n{table.to_string()}")
    assert list(table.index) == ["collider", "chain"]
    # The gap is many standard errors, not a coin flip.
    assert table.loc["chain", "elpd_diff"] > 4 * table.loc["chain", "dse"]
