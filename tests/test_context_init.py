"""The context module's read-out from interventional latent moments, on a linear-Gaussian toy
whose true read-out is known (an analytic oracle: ``h = z M``, so ``z = h M^{-1}``)."""

import numpy as np
import pytest
import torch

from models.context import ContextModule, init_from_moments, interventional_readout
from models.context.moments import context_moments

NAMES = ["a", "b", "c", "d"]
EDGES = {(0, 1): 1.5, (1, 2): -1.2, (0, 3): 0.8, (2, 3): 1.0}  # (i, j): weight of i -> j
HARD = {"a": (1.5, 0.6), "b": (-1.2, 0.8), "c": (1.0, 0.5)}  # d is never intervened on
CONTEXTS = [(), ("a",), ("b",), ("c",)]
N = 20_000


def _latents(context: tuple[str, ...], gen: np.random.Generator) -> np.ndarray:
    """``(N, 4)`` draws of the toy SEM (topological order a, b, c, d) in ``context``."""
    z = np.zeros((N, 4))
    for j, name in enumerate(NAMES):
        if name in context:
            mean, sd = HARD[name]
            z[:, j] = mean + sd * gen.standard_normal(N)
        else:
            parents = sum(w * z[:, i] for (i, k), w in EDGES.items() if k == j)
            z[:, j] = parents + gen.standard_normal(N)
    return z


@pytest.fixture(scope="module")
def toy() -> tuple[torch.Tensor, torch.Tensor, list[tuple[str, ...]]]:
    """``(h (4N, 4), M (4, 4), contexts)``: the toy's latents in every context, mixed by M."""
    gen = np.random.default_rng(0)
    z = np.concatenate([_latents(c, gen) for c in CONTEXTS])
    mix = torch.as_tensor(gen.standard_normal((4, 4)), dtype=torch.float32)
    h = torch.as_tensor(z, dtype=torch.float32) @ mix
    return h, mix, [c for c in CONTEXTS for _ in range(N)]


def _cosines(weight: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """``|cos|`` of row ``k``'s functional of the latents (``h w = z M w``) with ``z_k``."""
    functionals = weight @ mix.T  # row k: M w_k
    return functionals.diagonal().abs() / functionals.norm(dim=1)


def test_readout_recovers_each_intervened_concept_up_to_scale(toy):
    h, mix, contexts = toy
    weight, _, identified = interventional_readout(h, torch.full_like(h, 1e-3), contexts,
                                                   NAMES, 1)
    assert identified == [0, 1, 2]
    # the moments of 20k rows per context are accurate to ~1%, so the rows' cosine with the
    # truth is ~0.999; a row mixing in a parent or child (cosine <= 0.8 here) fails 0.99
    assert (_cosines(weight, mix)[:3] > 0.99).all(), _cosines(weight, mix)


def test_the_observational_precision_would_read_the_noise_instead(toy):
    """The control: with the observational precision instead of the interventional one the
    direction for ``b`` is its noise ``z_b - 1.5 z_a`` (``B^T e_b``), not ``z_b``, so the test
    above measures the identity, not an easy toy."""
    h, mix, contexts = toy
    obs = torch.tensor([c == () for c in contexts])
    b = torch.tensor([c == ("b",) for c in contexts])
    shift = torch.linalg.solve(torch.cov(h[obs].T), h[b].mean(0) - h[obs].mean(0))
    assert _cosines(shift[None].expand(4, -1), mix)[1] < 0.7  # 1 / sqrt(1 + 1.5^2) = 0.55


def test_readout_is_invertible_and_standardises_the_observational_concepts(toy):
    h, _, contexts = toy
    scale = torch.full_like(h, 1e-3)
    weight, bias, _ = interventional_readout(h, scale, contexts, NAMES, 1)
    obs = torch.tensor([c == () for c in contexts])
    mean, cov = context_moments(h[obs], scale[obs])
    torch.testing.assert_close(weight @ mean + bias, torch.zeros(4), atol=1e-4, rtol=0)
    torch.testing.assert_close((weight @ cov @ weight.T).diagonal(), torch.ones(4),
                               atol=1e-3, rtol=0)
    assert torch.linalg.matrix_rank(weight) == 4


def test_free_slots_take_the_remaining_directions_with_several_rows_per_concept(toy):
    h, mix, contexts = toy
    wide = torch.cat([h, 0.1 * torch.randn(len(h), 4, generator=torch.Generator().manual_seed(0))],
                     dim=1)
    weight, _, identified = interventional_readout(wide, torch.full_like(wide, 1e-3),
                                                   contexts, NAMES, 2)
    assert identified == [0, 1, 2] and weight.shape == (8, 8)
    assert torch.linalg.matrix_rank(weight) == 8
    first = weight[[0, 2, 4], :4]  # row 0 of the identified blocks, on the mixed coordinates
    assert (_cosines(first, mix)[:3] > 0.99).all()


def test_init_from_moments_sets_the_interventional_prior(toy):
    h, _, contexts = toy
    torch.manual_seed(0)
    module = ContextModule(4, 1, latent_dim=4, hidden=8, names=NAMES)
    with torch.no_grad():
        module.edges.normal_()
        module.int_loc.normal_()
    scale = torch.full_like(h, 1e-3)
    assert init_from_moments(module, h, scale, contexts) == [0, 1, 2]
    assert not module.edges.any() and not module.obs_loc.any()
    with torch.no_grad():
        concepts = module.read(h)
    for k, name in enumerate(NAMES[:3]):
        rows = torch.tensor([c == (name,) for c in contexts])
        torch.testing.assert_close(module.int_loc[k, 0], concepts[rows, k].mean(), atol=1e-3,
                                   rtol=1e-3)
        torch.testing.assert_close(module.int_log_scale[k, 0].exp(), concepts[rows, k].std(),
                                   atol=1e-3, rtol=1e-2)
    assert module.int_loc[3].item() == 0.0  # d has no interventional context


def test_readout_rejects_too_narrow_latents_and_no_observational_rows(toy):
    h, _, contexts = toy
    with pytest.raises(ValueError, match="latent width"):
        interventional_readout(h, h, contexts, NAMES, 2)
    with pytest.raises(ValueError, match="observational"):
        interventional_readout(h[N:], h[N:], contexts[N:], NAMES, 1)
