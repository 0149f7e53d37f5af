"""Learning the CauF-VAE factor graph: the gated-flow learner and its place in training."""

from __future__ import annotations

import pytest
import torch

from models.caufvae import CauFVAE
from models.checkpoint import load_model
from models.data import load_dataset
from models.graph_learning import GraphLearner
from models.notears import shd
from models.train_vae import train_run
from scm import zoo

TINY = {"channels": 8, "hidden": 32, "flow_layers": 2, "flow_hidden": (16, 16)}


def _set_gates(learner: GraphLearner, edges: dict[tuple[int, int], float]) -> None:
    with torch.no_grad():
        learner.logits.fill_(-10.0)
        for (j, i), logit in edges.items():
            learner.logits[j, i] = logit


def test_dag_breaks_cycles_at_the_weakest_edge() -> None:
    learner = GraphLearner({"a": 1, "b": 1, "c": 1})
    # a -> b (strong), b -> c (strong), c -> a (weaker): a 3-cycle; a <-> b: a 2-cycle.
    _set_gates(learner, {(0, 1): 4.0, (1, 2): 3.0, (2, 0): 1.0, (1, 0): 2.0})
    assert learner.dag() == {"a": [], "b": ["a"], "c": ["b"]}
    assert learner.acyclicity().detach().item() > 0.1  # the gates themselves are cyclic


def test_acyclicity_vanishes_on_a_dag() -> None:
    learner = GraphLearner({"a": 1, "b": 1, "c": 1})
    _set_gates(learner, {(0, 1): 30.0, (1, 2): 30.0})  # sigmoid(-10) ~ 5e-5 elsewhere
    assert learner.acyclicity().detach().item() < 1e-6


def test_fixed_point_sampling_is_ancestral_on_a_dag() -> None:
    learner = GraphLearner({"a": 1, "b": 2, "c": 1}).eval()
    _set_gates(learner, {(0, 1): 5.0, (1, 2): 5.0, (0, 2): 5.0})
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in learner.mechanisms.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
        torch.manual_seed(0)
        z = learner.sample(50)
        torch.manual_seed(0)
        noise = [torch.randn(50, d) for d in (1, 2, 1)]
        # abduct each factor from its own mechanism: the noise that drew it comes back exactly
        contexts = learner._contexts(z)
        parts = learner._split(z)
        for m, c, v, u in zip(learner.mechanisms, contexts, parts, noise, strict=True):
            # float32 round trip through two autoregressive spline layers whose weights were
            # jittered by 0.3 std: up to 1e-3 measured (in float64 1e-13); a wrong sampling
            # order gives errors of order 1
            assert torch.allclose(m.abduct(v, c), u, atol=3e-3)


def test_learner_recovers_a_collider() -> None:
    """x1 -> x3 <- x2 (nonlinear, heteroscedastic-free) is identified by its v-structure;
    the search (seeded) must return exactly that DAG."""
    df = zoo.ZOO["collider"]().sample(2000, seed=0)
    x = torch.tensor(((df - df.mean()) / df.std()).to_numpy(), dtype=torch.float32)
    torch.manual_seed(0)
    learner = GraphLearner({c: 1 for c in df.columns})
    opt = torch.optim.Adam(learner.parameters(), lr=1e-2)
    for _ in range(8):
        for _ in range(100):
            idx = torch.randint(0, len(x), (256,))
            loss = -learner.log_prob(x[idx]).mean() + learner.penalty()
            opt.zero_grad()
            loss.backward()
            opt.step()
        learner.update_multipliers()
    learned = learner.dag()
    adj = torch.tensor([[float(j in learned[i]) for i in learned] for j in learned])
    assert shd(adj, {"x1": [], "x2": [], "x3": ["x1", "x2"]}, list(learned)) == 0


def test_caufvae_learns_then_fixes_its_graph(cache, tmp_path) -> None:  # noqa: ANN001
    data = load_dataset("pendulum", size=32, split="train", n=64, progress=False)
    run = train_run(tmp_path / "r", data=data, epochs=3, graph_epochs=2, image_size=32,
                    batch_size=16, progress=False, learn_graph=True, **TINY)
    hist = run.history
    assert all("h" in e and "shd" in e for e in hist[:2]) and "h" not in hist[2]
    learned = hist[1]["learned_graph"]
    assert not run.model.learning_graph and run.model.graph == learned
    assert set(learned) == set(data.graph)
    assert run.model.factors == list(data.graph)  # label order survives the new graph
    assert all(torch.isfinite(torch.tensor(e["loss"])) for e in hist)
    loaded, record = load_model(tmp_path / "r")
    assert loaded.graph == learned and record["model"]["graph_fixed"] is True
    s1, s2 = run.model.state_dict(), loaded.state_dict()
    assert s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)


def test_resume_mid_search_matches_a_straight_run(cache, tmp_path) -> None:  # noqa: ANN001
    data = load_dataset("pendulum", size=32, split="train", n=32, progress=False)
    opts = {"data": data, "image_size": 32, "batch_size": 16, "progress": False,
            "graph_epochs": 2, "learn_graph": True, **TINY}
    straight = train_run(tmp_path / "a", epochs=3, **opts)
    stopped = train_run(tmp_path / "b", epochs=1, **opts)
    assert stopped.model.learning_graph  # stopped inside the search: not fixed, resumable
    resumed = train_run(tmp_path / "b", epochs=3, resume=True, **opts)
    s1, s2 = straight.model.state_dict(), resumed.model.state_dict()
    assert s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)


def test_queries_wait_for_the_graph() -> None:
    vae = CauFVAE({"a": [], "b": ["a"]}, image_size=32, learn_graph=True, **TINY)
    with pytest.raises(ValueError, match="still being learned"):
        vae.sample(2)
    with pytest.raises(ValueError, match="learn_graph needs kind='caufvae'"):
        CauFVAE({"a": [], "b": ["a"]}, kind="betavae", image_size=32, learn_graph=True)
