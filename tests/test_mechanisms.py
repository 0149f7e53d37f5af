"""One contract, checked on every invertible mechanism: shapes, gradients, exact inverse,
log-density = base density + log|det J| (Jacobian by autograd), standardisation."""

import pytest
import torch

from scm.handlers import pull_noise, push_noise
from scm.mechanisms import make_mechanism

KINDS = ["flow", "linear", "additive"]
SHAPES = [(1, 0), (1, 2), (3, 0), (2, 3)]  # (dim, context_dim)


def _mechanism(kind, dim, context_dim):
    torch.manual_seed(0)
    m = make_mechanism(kind, dim, context_dim)
    # Move weights off their (often zero) initialisation so the checks see a generic map.
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
        m.loc.copy_(torch.randn(dim))
        m.scale.copy_(torch.rand(dim) + 0.5)
        if context_dim:
            m.context_loc.copy_(torch.randn(context_dim))
            m.context_scale.copy_(torch.rand(context_dim) + 0.5)
    return m


def _context(n, context_dim):
    return torch.randn(n, context_dim) if context_dim else None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("dim", "context_dim"), SHAPES)
def test_shapes(kind, dim, context_dim):
    m = _mechanism(kind, dim, context_dim)
    d = m(_context(7, context_dim))
    x = d.sample((7,)) if not context_dim else d.sample()
    assert x.shape == (7, dim)
    assert d.log_prob(x).shape == (7,)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("dim", "context_dim"), SHAPES)
def test_abduction_inverts_exactly(kind, dim, context_dim):
    m = _mechanism(kind, dim, context_dim)
    c = _context(50, context_dim)
    d = m(c).expand([50])
    u = torch.randn(50, dim)
    x = push_noise(d, u)
    # Data -> noise -> data is what a counterfactual relies on: float32 round-off only.
    torch.testing.assert_close(push_noise(d, pull_noise(d, x)), x, atol=1e-4, rtol=1e-4)
    # Noise -> data -> noise: splines invert analytically, but where a randomly perturbed
    # spline is nearly flat (slope ~1e-2) float32 round-off in x grows ~100x in u.
    torch.testing.assert_close(pull_noise(d, x), u, atol=5e-3, rtol=5e-3)
    torch.testing.assert_close(m.abduct(x, c), pull_noise(d, x), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("dim", "context_dim"), SHAPES)
@pytest.mark.parametrize("variant", ["plain", "homoscedastic", "log scale"])
def test_counterfactual_pair_answers_as_abduct_then_predict(kind, dim, context_dim, variant):
    """A flow's counterfactual noise skips its unconditional noise spline, which prediction
    undoes: the value at new parents must still be ``predict(abduct(x, c), c')``. The two
    differ by the spline's float32 round trip; where a perturbed spline is nearly flat
    (slope ~1e-2) that grows ~100x, hence 1e-4 on values of order 1."""
    m = _mechanism(kind, dim, context_dim)
    if variant == "homoscedastic" and kind == "flow":
        m.homoscedastic = True
    if variant == "log scale":
        m.set_log_scale(True, [True] * context_dim if context_dim else None)
    c, c_new = _context(50, context_dim), _context(50, context_dim)
    if variant == "log scale" and context_dim:
        c, c_new = c.exp(), c_new.exp()
    u = torch.randn(50, dim)
    x = m.predict(u, c)
    if variant == "log scale":
        assert (x > 0).all()
    noise = m.counterfactual_noise(x, c)
    torch.testing.assert_close(m.counterfactual_value(noise, c), x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m.counterfactual_value(noise, c_new),
                               m.predict(m.abduct(x, c), c_new), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(m.abduct(x, c), u, atol=5e-3, rtol=5e-3)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("dim", "context_dim"), [(1, 2), (3, 2)])
def test_log_prob_matches_autograd_jacobian(kind, dim, context_dim):
    m = _mechanism(kind, dim, context_dim)
    c = _context(1, context_dim)
    t = m.transform(c)
    x = push_noise(m(c), torch.randn(1, dim))[0]
    u = t.inv(x[None]).detach()[0]
    jac = torch.autograd.functional.jacobian(lambda v: t(v[None])[0], u)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(u).sum() - torch.linalg.slogdet(jac)[1]
    torch.testing.assert_close(m(c).log_prob(x[None])[0], expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_every_parameter(kind):
    m = _mechanism(kind, 2, 3)
    c = _context(64, 3)
    x = torch.randn(64, 2)
    m(c).log_prob(x).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kind", KINDS)
def test_standardize_sets_data_units(kind):
    m = make_mechanism(kind, 1, 1)
    x = 5.0 + 3.0 * torch.randn(2000, 1)
    c = -2.0 + 0.5 * torch.randn(2000, 1)
    m.standardize(x, c)
    torch.testing.assert_close(m.loc, x.mean(0))
    torch.testing.assert_close(m.scale, x.std(0))
    torch.testing.assert_close(m.context_scale, c.std(0))
    # An untrained mechanism is the identity in standardised units for linear/additive
    # (zero weights), so its samples have the data's mean and std.
    if kind != "flow":
        s = m(c).sample()
        assert abs(s.mean() - 5.0) < 0.3 and abs(s.std() - 3.0) < 0.3


def test_a_vector_flow_is_triangular_in_its_coordinates_order():
    """Every conditional spline layer of a vector node's flow runs in the coordinates' own
    order, so coordinate i's abducted noise depends on coordinates 0..i only (zuko's NSF
    alternates the order: coordinate 0's noise moved by 1.2 when only z[1] moved, and
    counterfactuals of a z0 -> z1 -> z2 node were off by .28 / .54 / .31 std). Checked on
    the noise-from-value Jacobian of an untrained flow, whose weights are random."""
    from scm.mechanisms import FlowMechanism

    torch.manual_seed(0)
    mech = FlowMechanism(4, 2, transforms=3)
    context, value = torch.randn(1, 2), torch.randn(1, 4)
    transform = mech.noise_transform(context).inv  # value -> noise
    jac = torch.autograd.functional.jacobian(transform, value)[0, :, 0, :]
    assert torch.all(jac.triu(1) == 0), jac
    assert torch.all(jac.diagonal().abs() > 0)
    assert jac.tril(-1).abs().sum() > 0.01  # the coordinates do depend on the earlier ones
