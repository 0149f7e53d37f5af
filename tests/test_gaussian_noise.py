"""``"auto"`` takes linear-Gaussian before training where a flow cannot win (scm.gaussian_noise)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from scm import SCM
from scm.gaussian_noise import choose_linear_before_training, negentropy


def test_negentropy_is_near_zero_for_gaussian_samples_only() -> None:
    """20,000 rows: a Gaussian sample's estimate is its sampling noise, about 1/n per row
    (< 2e-4 here); Laplace's true negentropy is .072 nats and uniform's .176, and the estimate
    of each is far above that noise (either approximation alone undershoots uniform's)."""
    rng = np.random.default_rng(0)
    n = 20_000
    assert negentropy(torch.tensor(rng.standard_normal(n))) < 2e-4
    for sample in (rng.laplace(size=n), rng.uniform(size=n), np.tanh(rng.standard_normal(n)),
                   np.r_[rng.normal(-2, 1, n // 2), rng.normal(2, 1, n // 2)]):
        assert negentropy(torch.tensor(sample)) > 0.03


def _rows(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Roots a (Gaussian) and b (Laplace); c = a - b + Gaussian noise (a line), d = tanh(2c)
    + Gaussian noise (curved), e = a + (0.2 + |a|) noise (spread moving with a), f = 2c +
    uniform noise (a line with non-Gaussian noise)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n)
    b = rng.laplace(size=n)
    c = a - b + 0.5 * rng.standard_normal(n)
    d = np.tanh(2 * c) + 0.3 * rng.standard_normal(n)
    e = a + (0.2 + np.abs(a)) * rng.standard_normal(n)
    f = 2 * c + rng.uniform(-1, 1, n)
    return pd.DataFrame({"a": a, "b": b, "c": c, "d": d, "e": e, "f": f})


GRAPH = {"a": [], "b": [], "c": ["a", "b"], "d": ["c"], "e": ["a"], "f": ["c"]}


def test_only_gaussian_lines_are_chosen_before_training() -> None:
    """Gaussian root and Gaussian line: linear before training; Laplace root, curved mean,
    moving spread and uniform noise: their flows train (a flow may win there)."""
    df = _rows()
    scm = SCM(GRAPH, "auto")
    rows = {k: torch.tensor(df[k].to_numpy(np.float32))[:, None] for k in df}
    chosen = choose_linear_before_training(scm, rows, n_choose=500)
    assert chosen == ["a", "c"]
    assert {k: scm.mechanisms[k].kind for k in GRAPH} == {
        "a": "linear", "b": "flow", "c": "linear", "d": "flow", "e": "flow", "f": "flow"}


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_linear_gaussian_table_fits_in_one_step_as_linear_would() -> None:
    """Every node a Gaussian line: "auto" trains no flow (one history entry, as a declared
    linear SCM) and answers counterfactuals as ``"linear"`` does, to float rounding."""
    rng = np.random.default_rng(1)
    n = 3000
    x1 = rng.standard_normal(n)
    x2 = 10 * x1 - rng.standard_normal(n)
    x3 = 0.25 * x2 + 2 * rng.standard_normal(n)
    df = pd.DataFrame({"x1": x1, "x2": x2, "x3": x3})
    graph = {"x1": [], "x2": ["x1"], "x3": ["x2"]}
    auto = SCM(graph, "auto")
    history = auto.fit(df, seed=0, progress=False).history
    assert len(history) == 1
    assert {m.kind for m in auto.mechanisms.values()} == {"linear"}
    linear = SCM(graph, "linear").fit(df, seed=0, progress=False)
    factual = df.iloc[:200]
    do = {"x1": factual["x1"].to_numpy()[::-1].copy()}
    np.testing.assert_allclose(auto.counterfactual(factual, do).to_numpy(),
                               linear.counterfactual(factual, do).to_numpy(), atol=1e-4)



def test_a_flow_outside_every_stack_is_not_retired() -> None:
    """With one flow node left (the others linear before training) its own flow trains
    outside the stacks, beside its rival's stack; when the rival leads by more than
    RETIRE_GAP, the own flow is kept training (it raised StopIteration looking for its
    stack)."""
    from scm.auto import retire_losing_flows

    candidates = {"y": ["y", "y@0"]}
    retire_losing_flows(candidates, {"y": 1.5, "y@0": 1.3}, 200, [["y@0"]], [object()])
    assert candidates == {"y": ["y", "y@0"]}
