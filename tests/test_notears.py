"""NOTEARS acyclicity h(A) = tr(exp(A * A)) - d and the SHD of a thresholded adjacency."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.notears import acyclicity, learned_graph, shd

PENDULUM = {"pendulum": [], "light": [], "shadow_len": ["pendulum", "light"],
            "shadow_pos": ["pendulum", "light"]}
NODES = list(PENDULUM)


def _adjacency(parents: dict[str, list[str]], weight: float = 0.8) -> torch.Tensor:
    a = torch.zeros(len(NODES), len(NODES), dtype=torch.float64)
    for child, ps in parents.items():
        for p in ps:
            a[NODES.index(p), NODES.index(child)] = weight
    return a


@pytest.mark.parametrize("d", [1, 3, 6])
def test_zero_for_random_dags(d: int) -> None:
    gen = torch.Generator().manual_seed(d)
    upper = torch.randn(d, d, generator=gen, dtype=torch.float64).triu(1)
    perm = torch.randperm(d, generator=gen)
    a = upper[perm][:, perm]  # a DAG under a random node order
    # exp of a nilpotent matrix has unit diagonal: exact up to float rounding
    assert acyclicity(a).item() == pytest.approx(0.0, abs=1e-12)


def test_two_cycle_matches_closed_form() -> None:
    # (A * A) has eigenvalues +-ab, so tr exp = 2 cosh(ab)
    a, b = 0.7, -1.3
    h = acyclicity(torch.tensor([[0.0, a], [b, 0.0]], dtype=torch.float64))
    assert h.item() == pytest.approx(2 * math.cosh(a * b) - 2, rel=1e-12)


def test_three_cycle_matches_closed_form() -> None:
    # a unit 3-cycle has eigenvalues the cube roots of unity
    a = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    expected = math.e + 2 * math.exp(-0.5) * math.cos(math.sqrt(3) / 2) - 3
    assert acyclicity(a).item() == pytest.approx(expected, rel=1e-12)
    assert expected > 0


def test_positive_for_any_cycle_and_grows_with_weight() -> None:
    cyc = _adjacency({**PENDULUM, "pendulum": ["shadow_len"]})  # shadow_len -> pendulum closes
    values = [acyclicity(c * cyc).item() for c in (0.5, 1.0, 2.0)]
    assert values[0] > 0 and values[0] < values[1] < values[2]
    assert acyclicity(_adjacency(PENDULUM)).item() == pytest.approx(0.0, abs=1e-12)


def test_gradient_matches_closed_form_and_autograd() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(4, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(acyclicity(a), a)
    expected = torch.linalg.matrix_exp(a.detach() ** 2).T * 2 * a.detach()  # Zheng et al. eq. 9
    torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(acyclicity, (a,))


def test_gradient_vanishes_on_a_dag_support() -> None:
    # on a DAG, exp(A*A)^T is lower triangular where A is upper: the gradient is zero on A's edges
    a = _adjacency(PENDULUM).requires_grad_(True)
    (grad,) = torch.autograd.grad(acyclicity(a), a)
    assert torch.all(grad[a.detach() != 0] == 0)


def test_rejects_non_square() -> None:
    with pytest.raises(ValueError, match="square"):
        acyclicity(torch.zeros(2, 3))


def test_shd_counts() -> None:
    truth = _adjacency(PENDULUM)
    assert shd(truth, PENDULUM, NODES) == 0
    missing = truth.clone()
    missing[0, 2] = 0.0
    assert shd(missing, PENDULUM, NODES) == 1
    extra = truth.clone()
    extra[0, 1] = 0.9
    assert shd(extra, PENDULUM, NODES) == 1
    reversed_ = truth.clone()
    reversed_[0, 2], reversed_[2, 0] = 0.0, 0.8
    assert shd(reversed_, PENDULUM, NODES) == 1
    assert shd(torch.zeros(4, 4), PENDULUM, NODES) == 4


def test_threshold_and_two_cycle_resolution() -> None:
    a = np.zeros((4, 4))
    a[0, 2], a[2, 0] = 0.5, -0.9  # both above threshold: the stronger, shadow_len -> pendulum
    a[1, 3] = 0.2  # below the threshold
    g = learned_graph(a, NODES, threshold=0.3)
    assert g.directed == [("shadow_len", "pendulum")]
    assert learned_graph(a, NODES, threshold=0.1).directed == [
        ("light", "shadow_pos"), ("shadow_len", "pendulum")]
    with pytest.raises(ValueError, match="shape"):
        learned_graph(a[:3], NODES)
    with pytest.raises(ValueError, match="threshold"):
        learned_graph(a, NODES, threshold=-1.0)
