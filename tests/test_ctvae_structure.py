"""The interventional structure read-outs (models/ctvae/effects.py, readback.py, graphscore.py):
on a hand-built transition whose propagation is known (a planted chain ``a -> b -> c`` plus an
isolated ``d``) the read-out recovers the planted graph, and fails without the propagation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.ctvae import CTVAE
from models.ctvae.effects import factor_effects, model_probs, slot_shifts
from models.ctvae.graphscore import (
    edge_auroc,
    edge_scores,
    effect_graph,
    random_auroc_pvalue,
    true_edges,
)
from models.ctvae.readback import action_effects, factor_shifts, soft_decode
from models.ctvae.structure import compare_graphs
from models.metrics import FactorReader

K = 4  # codes per slot
NAMES = ("a", "b", "c", "d")
TRUTH = {"a": (), "b": ("a",), "c": ("b",), "d": ()}
ASSIGNMENT = np.array([0, 0, 1, 1, 2, 2, 3, 3])  # two slots per factor
ACTION_FACTOR = [0, 0, 1, 1, 3, 3]  # a+, a-, b+, b-, d+, d- (c has no action)


def planted(propagate: bool):  # noqa: ANN201
    """A transition over 8 slots: an action on a factor shifts its own two slots' codes (the
    intervention mask); with ``propagate``, b's codes are recomputed from a's and c's from b's
    (the mechanisms b = a + 1, c = b + 2 mod K), as the learned graph would carry them."""

    def predict(codes: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        new = codes.clone()
        for row, act in enumerate(actions.tolist()):
            if act == 0:
                continue
            f = ACTION_FACTOR[act - 1]
            step = 1 if act % 2 else -1
            new[row, 2 * f : 2 * f + 2] = (codes[row, 2 * f : 2 * f + 2] + step) % K
            if propagate and f == 0:
                new[row, 2:4] = (new[row, 0:2] + 1) % K
            if propagate and f in (0, 1):
                new[row, 4:6] = (new[row, 2:4] + 2) % K
        return torch.nn.functional.one_hot(new, K).double()

    return predict


@pytest.fixture(scope="module")
def scenes() -> torch.Tensor:
    """200 scenes drawn from the planted model: a and d free, b and c by their mechanisms."""
    gen = torch.Generator().manual_seed(0)
    a, d = torch.randint(K, (200, 2), generator=gen), torch.randint(K, (200, 2), generator=gen)
    b = (a + 1) % K
    return torch.cat([a, b, (b + 2) % K, d], dim=1)


def readout(scenes: torch.Tensor, *, propagate: bool) -> np.ndarray:
    shifts = slot_shifts(planted(propagate), scenes, len(ACTION_FACTOR))
    return factor_effects(shifts, ASSIGNMENT, ACTION_FACTOR, len(NAMES))


def test_readout_recovers_the_planted_chain(scenes):
    effects = readout(scenes, propagate=True)
    # every action rewrites its own slots and its descendants' in every scene, nothing else
    expected = np.array([[1, 1, 1, 0], [0, 1, 1, 0], [np.nan] * 4, [0, 0, 0, 1]])
    np.testing.assert_allclose(effects, expected, atol=1e-12)
    found = effect_graph(effects, NAMES)
    assert set(found.edges) == {("a", "b"), ("b", "c")}  # a -> c removed by the reduction
    assert compare_graphs(found, TRUTH)["shd"] == 0
    scores = edge_scores(effects, NAMES)
    assert len(scores) == 9  # sources a, b, d (the ones with actions) x 3 other factors
    assert edge_auroc(scores, true_edges(TRUTH, ancestral=True)) == 1.0
    # against the direct graph the total effect a -> c ties with the true edges: (2 * 6 + 1) / 14
    assert edge_auroc(scores, true_edges(TRUTH)) == pytest.approx(13 / 14)


def test_relative_scores_do_not_depend_on_an_action_s_strength(scenes):
    effects = readout(scenes, propagate=True)
    effects[3] = [0.3, 0.3, 0.3, 3.0]  # a strong d action with 10% cross-talk everywhere
    effects[1] *= 0.1  # a weak b action: b -> c at 0.1
    rel, raw = edge_scores(effects, NAMES), edge_scores(effects, NAMES, relative=False)
    assert rel[("b", "c")] == pytest.approx(1.0) and rel[("d", "a")] == pytest.approx(0.1)
    assert raw[("b", "c")] < raw[("d", "a")]  # raw ranks d's cross-talk above b's child
    truth = true_edges(TRUTH, ancestral=True)
    assert edge_auroc(rel, truth) == 1.0 and edge_auroc(raw, truth) < 1.0


def test_readout_without_propagation_misses_the_chain(scenes):
    effects = readout(scenes, propagate=False)
    found = effect_graph(effects, NAMES)
    assert found.number_of_edges() == 0
    assert compare_graphs(found, TRUTH)["shd"] == 2
    assert edge_auroc(edge_scores(effects, NAMES), true_edges(TRUTH)) == 0.5


def test_readout_without_reduction_keeps_the_ancestral_edge(scenes):
    found = effect_graph(readout(scenes, propagate=True), NAMES, reduce=False)
    assert compare_graphs(found, TRUTH) == {"shd": 1, "missing": 0, "extra": 1, "reversed": 0,
                                            "true_edges": 2}
    with pytest.raises(ValueError, match="rel_threshold"):
        effect_graph(np.eye(4), NAMES, rel_threshold=0.0)


def test_random_auroc_pvalue_is_the_exact_rank_chance():
    assert random_auroc_pvalue(1, 1, 1.0) == 0.5
    assert random_auroc_pvalue(4, 2, 1.0) == pytest.approx(1 / 15)  # one of C(6, 4) placements
    assert random_auroc_pvalue(2, 7, 0.0) == 1.0
    rng = np.random.default_rng(0)  # Monte Carlo agrees with the enumeration (3 true, 6 false)
    draws = [edge_auroc(dict(enumerate(rng.random(9))), {0, 1, 2}) for _ in range(4000)]
    assert np.mean(np.array(draws) >= 0.75) == pytest.approx(random_auroc_pvalue(3, 6, 0.75),
                                                              abs=0.02)


def test_model_shifts_are_distances_with_a_zero_null():
    torch.manual_seed(0)
    model = CTVAE(("none", "a+", "a-"), image_size=16, n_codes=8, code_dim=4).eval()
    codes = torch.randint(8, (10, model.vq.n_nodes))
    shifts = slot_shifts(model_probs(model), codes, 2)
    assert shifts.shape == (3, model.vq.n_nodes)
    assert np.all(shifts[0] == 0) and np.all((shifts >= 0) & (shifts <= 1))
    with pytest.raises(ValueError, match="codes"):
        slot_shifts(model_probs(model), codes[0], 2)


def test_soft_decode_of_one_hot_codes_is_the_hard_decode():
    torch.manual_seed(0)
    model = CTVAE(("none", "a+", "a-"), image_size=16, n_codes=8, code_dim=4).eval()
    codes = torch.randint(8, (3, model.vq.n_nodes))
    hard = model.vq.decode_codes(codes).clamp(0, 1)
    soft = soft_decode(model, torch.nn.functional.one_hot(codes, 8).float())
    torch.testing.assert_close(soft, hard)  # same code vectors in the same layout


def test_factor_shifts_and_action_effects():
    torch.manual_seed(0)
    model = CTVAE(("none", "a+", "a-", "b+", "b-"), image_size=16, n_codes=8, code_dim=4).eval()
    reader = FactorReader(["a", "b", "c"], image_size=16).eval()
    shifts = factor_shifts(model, reader, torch.randint(8, (6, model.vq.n_nodes)), batch=4)
    assert shifts.shape == (5, 3) and np.all(shifts[0] == 0) and np.all(shifts >= 0)
    effects = action_effects(np.arange(15.0).reshape(5, 3), [0, 0, 1, 1], 3)
    np.testing.assert_allclose(effects[:2], [[4.5, 5.5, 6.5], [10.5, 11.5, 12.5]])
    assert np.isnan(effects[2]).all()  # c has no action
    with pytest.raises(ValueError, match="action_factor"):
        action_effects(np.zeros((5, 3)), [0, 1], 3)
