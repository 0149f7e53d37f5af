"""The context module's architecture switch, composition, graph export and metrics."""

import copy

import networkx as nx
import numpy as np
import pytest
import torch

from models.context import ContextModule, concept_graph, score_graph, sliced_wasserstein
from scm.zoo import QUAD_EDGES, QUAD_NODES, quad

NAMES = ["a", "b", "c", "d"]


def _module(seed: int = 0) -> ContextModule:
    torch.manual_seed(seed)
    m = ContextModule(4, 2, latent_dim=8, hidden=8, names=NAMES)
    with torch.no_grad():
        for p in (m.obs_loc, m.obs_log_scale, m.int_loc, m.int_log_scale):
            p.normal_(0.0, 0.5)
        m.edges.normal_(0.0, 0.3)
    return m


def _eps(n: int = 32) -> torch.Tensor:
    return torch.randn(n, 8, generator=torch.Generator().manual_seed(1))


def _block(z: torch.Tensor, k: int) -> torch.Tensor:
    return z[:, 2 * k : 2 * k + 2]


def test_intervened_concept_ignores_its_incoming_edges():
    m = _module()
    z = m.sample(_eps(), ["c"])
    # z_c is exactly its interventional exogenous block
    expected = m.int_loc[2] + m.int_log_scale[2].exp() * _block(_eps(), 2)
    torch.testing.assert_close(_block(z, 2), expected)
    changed = copy.deepcopy(m)
    with torch.no_grad():
        changed.edges[:, 2] += 5.0  # every edge into c
    torch.testing.assert_close(changed.sample(_eps(), ["c"]), z)
    torch.testing.assert_close(changed.prior(["c"]).mean, m.prior(["c"]).mean)
    # ... while in the observational context the same change moves c
    assert not torch.allclose(changed.sample(_eps(), []), m.sample(_eps(), []))


def test_non_intervened_concepts_use_observational_weights():
    m = _module()
    changed = copy.deepcopy(m)
    with torch.no_grad():
        changed.int_loc[[0, 1, 3]] += 3.0  # interventional weights of a, b, d
        changed.int_log_scale[[0, 1, 3]] -= 1.0
    for ctx in ([], ["c"]):
        torch.testing.assert_close(changed.sample(_eps(), ctx), m.sample(_eps(), ctx))
        torch.testing.assert_close(changed.prior(ctx).covariance_matrix,
                                   m.prior(ctx).covariance_matrix)
    # observational weights of a non-intervened concept do matter
    with torch.no_grad():
        changed.obs_loc[0] += 1.0
    assert not torch.allclose(changed.sample(_eps(), ["c"]), m.sample(_eps(), ["c"]))


def test_composition_equals_applying_both_switches():
    m = _module()
    manual = copy.deepcopy(m)  # bake both switches into the observational architecture
    with torch.no_grad():
        for k in (0, 2):
            manual.obs_loc[k] = m.int_loc[k]
            manual.obs_log_scale[k] = m.int_log_scale[k]
            manual.edges[:, k] = 0.0
    composed = m.sample(_eps(), ["a", "c"])
    torch.testing.assert_close(composed, manual.sample(_eps(), []))
    torch.testing.assert_close(m.prior(["a", "c"]).covariance_matrix,
                               manual.prior([]).covariance_matrix)
    # switching c on top of a module whose a-switch is baked in: the same again
    torch.testing.assert_close(manual.sample(_eps(), ["c"]), composed)


def test_prior_is_the_law_of_sample():
    m = _module()
    eps = torch.randn(40_000, 8, generator=torch.Generator().manual_seed(2))
    z = m.sample(eps, ["b"])
    prior = m.prior(["b"])
    # 40k draws: the standard error of a mean is sd/200; the entries here are O(1)
    torch.testing.assert_close(z.mean(0), prior.mean, atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(z.T), prior.covariance_matrix, atol=0.08, rtol=0.05)


def test_unknown_context_concept_is_named():
    with pytest.raises(ValueError, match="context concept must be one of"):
        _module().prior(["zz"])


def test_concept_graph_recovers_planted_quad_graph():
    m = ContextModule(8, 1, latent_dim=8, names=QUAD_NODES)
    with torch.no_grad():
        for (i, j), w in QUAD_EDGES.items():
            m.edges[i, j] = w
    graph = concept_graph(m, threshold=0.05)
    assert nx.is_directed_acyclic_graph(graph)
    assert set(graph.edges) == set(quad().to_networkx().edges)
    assert score_graph(graph, quad())["shd_dag"] == 0
    assert score_graph(graph, quad(independent=True))["shd_dag"] == len(QUAD_EDGES)


def test_concept_graph_breaks_cycles():
    m = ContextModule(2, 1, latent_dim=2, names=["x", "y"])
    with torch.no_grad():
        m.edges[0, 1], m.edges[1, 0] = 0.9, 0.5
    assert list(concept_graph(m, threshold=0.1).edges) == [("x", "y")]


def test_sliced_wasserstein_of_a_translation():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 50))
    # translating by v gives SW_2 = sqrt(E (theta . v)^2) = |v| / sqrt(D) for uniform theta
    shift = np.full(50, 0.4)
    sw = sliced_wasserstein(a, a + shift, n_projections=2000, seed=0)
    assert sw == pytest.approx(np.linalg.norm(shift) / np.sqrt(50), rel=0.05)
    assert sliced_wasserstein(a, a, seed=0) < 1e-12
    with pytest.raises(ValueError, match="same width"):
        sliced_wasserstein(a, a[:, :3])


def test_module_hands_the_decoder_a_unit_scale_input_at_init():
    """He-initialised concept MLPs and a 1/fan-in write map: unit-scale concepts reach the
    decoder at about unit scale, like the base VAE's N(0, I) latent (torch's default Linear
    init gave ~0.3, a low-gain path that slowed end-to-end training)."""
    torch.manual_seed(0)
    m = ContextModule(8, 2, latent_dim=16, hidden=32)
    with torch.no_grad():
        out = m.to_latent(torch.randn(4096, 16, generator=torch.Generator().manual_seed(1)))
    rms = out.pow(2).mean().sqrt()
    # RMS ~1.0 (the ReLU features' second moment is kept); the old init gave ~0.35
    assert 0.7 < float(rms) < 1.4, float(rms)
