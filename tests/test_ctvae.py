"""CT-VAE building blocks: shapes renderer, factor grids, action pairs, quantizer, GATv2,
transition layer, retrieval scoring, structure read-out (no training here)."""

import networkx as nx
import numpy as np
import pytest
import torch

from models.ctvae import (
    CTVAE,
    CausalTransition,
    MultiQuantizer,
    action_names,
    build_pairs,
    factor_grid,
    parse_action,
    retrieval_accuracy,
    straight_through_bernoulli,
    undirected,
)
from models.ctvae.gatv2 import DenseGATv2
from models.ctvae.pairs import step
from models.ctvae.structure import code_graph, compare_graphs
from models.data import flow_scenes, pendulum_scenes, render_pendulum
from models.data.shapes import (
    imbalanced_probs,
    load_shapes,
    render_shapes,
    shapes_scenes,
    shapes_test_mask,
)


# ----------------------------------------------------------------------------- shapes
def test_shapes_render_is_deterministic_and_coloured():
    idx = shapes_scenes()[[0, 1234, 4799]]
    a, b = render_shapes(idx, size=32), render_shapes(idx, size=32)
    assert a.shape == (3, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    # a green (colour 1) shape has no red or blue beyond anti-aliasing of the green channel
    green = render_shapes([[0, 3, 0, 2, 2, 1]], size=32)[0]
    assert green[..., 1].max() == 200 and green[..., 0].max() <= 40


def test_shapes_x_step_moves_the_centroid_by_one_grid_step():
    def centroid_x(img: np.ndarray) -> float:
        mass = img.sum(-1).astype(float)
        return float((mass * np.arange(img.shape[1])[None, :]).sum() / mass.sum())

    a, b = render_shapes([[0, 2, 0, 1, 2, 0], [0, 2, 0, 2, 2, 0]], size=64)
    # x steps by 0.125 of the side: 8 pixels at 64 px (tolerance: anti-aliasing, < 0.1 px)
    assert centroid_x(b) - centroid_x(a) == pytest.approx(8.0, abs=0.1)


def test_shapes_bad_index_names_the_problem():
    with pytest.raises(ValueError, match="grid indices"):
        render_shapes([[3, 0, 0, 0, 0, 0]], size=32)
    with pytest.raises(ValueError, match="shape"):
        render_shapes([[0, 0, 0]], size=32)


def test_imbalanced_probs_ratio_and_sum():
    p = imbalanced_probs([3, 4], ratio=10.0)
    assert p.sum() == pytest.approx(1.0)
    grid = p.reshape(3, 4)
    assert grid[0, 0] / grid[2, 0] == pytest.approx(10.0)  # first vs last value of factor 0
    with pytest.raises(ValueError, match="ratio"):
        imbalanced_probs([3], ratio=0.5)


def test_load_shapes_imbalanced_skews_factor_values(cache):
    bal = load_shapes(size=16, split="train", n=500)
    imb = load_shapes(size=16, split="train", n=500, imbalanced=True)
    assert bal.images.shape == (500, 16, 16, 3)
    # ratio 10 puts ~60% of x on its two lowest values against 40% uniformly
    assert (imb.grid[:, 3] <= 1).mean() > (bal.grid[:, 3] <= 1).mean() + 0.1
    assert not shapes_test_mask()[bal.index].any()


# ----------------------------------------------------------------------------- grids
def test_pendulum_grid_matches_the_data_set_enumeration():
    grid = factor_grid("pendulum")
    scenes = grid.scenes()
    assert len(scenes) == len(pendulum_scenes()) == grid.n_scenes
    roots = pendulum_scenes()
    assert np.allclose(grid.factors(scenes)[:, :2], roots)
    assert np.array_equal(grid.scene_number(scenes), np.arange(grid.n_scenes))
    one = scenes[[100]]
    assert np.array_equal(grid.render(one, size=32), render_pendulum(*roots[100], size=32))


def test_flow_grid_matches_the_data_set_enumeration():
    grid = factor_grid("flow")
    scenes = grid.scenes()
    roots = flow_scenes()  # columns ball, hole, u_water
    f = grid.factors(scenes)
    assert np.allclose(f[:, 0], roots[:, 0]) and np.allclose(f[:, 2], roots[:, 1])
    assert np.allclose(f[:, 1], roots[:, 0] ** 3 + roots[:, 2])  # water = ball^3 + u_water
    assert np.array_equal(grid.scene_number(scenes), np.arange(grid.n_scenes))


def test_unknown_dataset():
    with pytest.raises(ValueError, match="shapes"):
        factor_grid("dsprites")


# ----------------------------------------------------------------------------- pairs
@pytest.mark.parametrize("name", ["shapes", "pendulum", "flow"])
def test_pairs_differ_by_one_step_of_the_named_axis(name):
    grid = factor_grid(name)
    pairs = build_pairs(grid, 300, seed=1)
    scenes = grid.scenes()
    diff = scenes[pairs.y] - scenes[pairs.x]
    axis = undirected(pairs.action)
    sign = np.where((pairs.action - 1) % 2 == 0, 1, -1)
    assert (np.abs(diff).sum(1) == 1).all()
    assert np.array_equal(diff[np.arange(len(diff)), axis], sign)
    test = grid.test_mask()
    assert not test[pairs.x].any() and not test[pairs.y].any()
    held = build_pairs(grid, 100, split="test", seed=2)
    assert test[held.x].all()


def test_pendulum_action_moves_the_named_factor_only_among_roots():
    grid = factor_grid("pendulum")
    pairs = build_pairs(grid, 200, seed=0)
    fx, fy = grid.factors(grid.scenes()[pairs.x]), grid.factors(grid.scenes()[pairs.y])
    light = undirected(pairs.action) == 1
    assert np.allclose(fx[light, 0], fy[light, 0]) and (fx[light, 1] != fy[light, 1]).all()


def test_imbalanced_pairs_skew_the_start_scenes():
    grid = factor_grid("shapes")
    bal = build_pairs(grid, 2000, seed=0)
    imb = build_pairs(grid, 2000, imbalanced=True, seed=0)
    x_bal, x_imb = grid.scenes()[bal.x][:, 3], grid.scenes()[imb.x][:, 3]
    assert x_imb.mean() < x_bal.mean() - 0.3  # geometric weights, ratio 10: mean 1.3 vs 2.0


def test_action_names_and_parse():
    grid = factor_grid("pendulum")
    assert action_names(grid) == ("none", "theta+", "theta-", "light+", "light-")
    assert parse_action(grid, "light+") == 3
    assert step(grid, np.array([[5, 5]]), np.array([4])).tolist() == [[5, 4]]
    with pytest.raises(ValueError, match="light"):
        parse_action(grid, "sun+")


# ----------------------------------------------------------------------------- layers
def test_quantizer_straight_through_and_nearest_codes():
    torch.manual_seed(0)
    q = MultiQuantizer(2, 8, 3)
    z = torch.randn(4, 6, 2, 2, requires_grad=True)
    out = q(z)
    assert out.codes.shape == (4, 2, 2, 2) and out.perplexity.shape == (2,)
    out.z_q.sum().backward()
    # straight-through: the gradient of the normalised chunks themselves (identity after them)
    z2 = z.detach().clone().requires_grad_(True)
    torch.nn.functional.normalize(z2.view(4, 2, 3, 2, 2), dim=2).sum().backward()
    assert torch.allclose(z.grad, z2.grad)
    q.eval()
    again = q(z.detach())
    assert torch.allclose(q.lookup(again.codes), again.z_q)
    # every code is the nearest codebook vector of its (normalised) chunk
    chunk = torch.nn.functional.normalize(z.detach()[:, :3].permute(0, 2, 3, 1), dim=-1)
    dist = torch.cdist(chunk.reshape(-1, 3), q.embed[0])
    assert torch.equal(dist.argmin(-1), again.codes[:, 0].reshape(-1))


def test_quantizer_ema_follows_the_data():
    torch.manual_seed(0)
    q = MultiQuantizer(1, 2, 2, decay=0.5)
    data = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).repeat(32, 1)  # two unit directions
    z = data.T.reshape(1, 2, 8, 8)
    for _ in range(20):
        q(z)
    targets = {tuple(v) for v in data.unique(dim=0).tolist()}
    got = {tuple(round(x, 3) for x in v) for v in q.embed[0].tolist()}
    assert got == targets


def test_straight_through_bernoulli_is_binary_with_gradients():
    logits = torch.zeros(1000, requires_grad=True)
    sample = straight_through_bernoulli(logits, tau=1.0, hard_eval=False)
    assert set(sample.detach().unique().tolist()) <= {0.0, 1.0}
    assert 0.4 < float(sample.detach().mean()) < 0.6  # Bernoulli(1/2), 1000 draws: sd 0.016
    sample.sum().backward()
    assert (logits.grad > 0).all()
    hard = straight_through_bernoulli(torch.tensor([-1.0, 2.0]), tau=1.0, hard_eval=True)
    assert hard.tolist() == [0.0, 1.0]


def test_gatv2_messages_follow_the_adjacency():
    torch.manual_seed(0)
    layer = DenseGATv2(8, heads=2)
    h = torch.randn(1, 4, 8)
    adj = torch.zeros(4, 4)
    adj[0, 1] = 1.0  # only edge: 0 -> 1
    base = layer(h, adj)
    moved = h.clone()
    moved[0, 0] += 1.0
    out = layer(moved, adj)
    assert not torch.allclose(out[0, 1], base[0, 1])  # child of 0 changes
    assert torch.allclose(out[0, 2:], base[0, 2:])  # the others do not


def test_transition_no_action_never_intervenes():
    t = CausalTransition(8, 2, 16, 4, 3)
    assert torch.equal(t.mask_probs()[0], torch.zeros(8))
    masks, adj = t.sample_structure()
    assert torch.equal(masks[0], torch.zeros(8))
    assert torch.equal(torch.diagonal(adj, dim1=1, dim2=2), torch.zeros(4, 8))
    with pytest.raises(ValueError, match="actions"):
        t(torch.randn(1, 8, 4), torch.zeros(1, 8, dtype=torch.long), torch.tensor([4]))


def test_gradients_reach_the_transition_parameters():
    torch.manual_seed(0)
    model = CTVAE(("none", "a+", "a-"), image_size=16, n_codes=8, code_dim=4)
    codes = torch.randint(8, (5, model.vq.n_nodes))
    terms = model.transition_terms(codes, torch.tensor([0, 1, 2, 1, 2]), codes.roll(1, 1))
    sum(terms.values()).backward()
    for name, p in model.transition.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_retrieval_accuracy_merges_directions():
    got = retrieval_accuracy(np.array([1, 2, 3, 4]), np.array([1, 1, 4, 1]))
    assert got == {"accuracy": 0.25, "undirected": 0.75}  # axes (0, 0, 1, 1) vs (0, 0, 1, 0)
    with pytest.raises(ValueError, match="equal-length"):
        retrieval_accuracy(np.array([1]), np.array([1, 2]))


def test_structure_readout_and_shd():
    model = CTVAE(("none", "a+", "a-"), image_size=16, n_codes=8, code_dim=4)
    g = code_graph(model, threshold=0.0)
    assert isinstance(g, nx.DiGraph) and g.number_of_nodes() == model.vq.n_nodes
    found = nx.DiGraph([("a", "b"), ("c", "b"), ("d", "a")])
    found.add_node("e")
    scores = compare_graphs(found, {"a": (), "b": ("a",), "c": ("b",), "d": (), "e": ()})
    # a->b right, c->b reversed (truth b->c), d->a extra
    assert scores == {"shd": 2, "missing": 0, "extra": 1, "reversed": 1, "true_edges": 2}
