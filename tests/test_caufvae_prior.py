"""The label-conditioned noise prior ``p(eps | u)`` of CauF-VAE (``prior_conditional=True``)."""

from __future__ import annotations

import json

import pyro
import pytest
import torch
from pyro import poutine
from tiny_caufvae import GRAPH, TINY
from torch.distributions import Normal, kl_divergence

from models.caufvae import MODEL_NAMES, CauFVAE
from models.checkpoint import RECORD, load_model
from models.label_prior import ConditionalNoise, LabelPrior
from models.train_vae import train_run


@pytest.fixture
def data(tiny_pendulum):  # noqa: ANN001, ANN201
    return tiny_pendulum


def _perturb(module: torch.nn.Module, seed: int, size: float = 0.3) -> None:
    """Move trained-from-zero weights (flows, label maps) away from their identity start."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(size * torch.randn(p.shape, generator=gen))


def _vae(kind: str = "caufvae", **kw: object) -> CauFVAE:
    vae = CauFVAE(GRAPH, kind=kind, image_size=32, prior_conditional=True, **TINY, **kw)
    if kind != "betavae":
        _perturb(vae.prior, 1)
    assert vae.label_prior is not None
    _perturb(vae.label_prior, 2)
    return vae


def _site_log_probs(vae: CauFVAE, z: dict, *args: object) -> dict[str, torch.Tensor]:
    """Per-row ``log p`` of each factor site of ``vae.model(*args)`` at the values ``z``."""
    tr = poutine.trace(poutine.condition(vae.model, data=z)).get_trace(*args)
    return {f: tr.nodes[f]["fn"].log_prob(z[f]) for f in vae.factors}


# --------------------------------------------------------------------- the label maps
def test_label_prior_starts_at_standard_normal_and_masks_rows() -> None:
    prior = LabelPrior(3, {"a": 1, "b": 2})
    u, m = torch.randn(5, 3), torch.tensor([True, False, True, False, True])
    for loc, scale in prior(u, m).values():
        assert torch.equal(loc, torch.zeros_like(loc))
        # softplus(c) + 1e-3 with c chosen to give 1: float32 rounding only
        torch.testing.assert_close(scale, torch.ones_like(scale), atol=1e-6, rtol=0)
    _perturb(prior, 0)
    out = prior(u, m)
    for loc, scale in out.values():
        assert torch.equal(loc[~m], torch.zeros_like(loc[~m]))  # unlabelled rows: exactly N(0, I)
        assert torch.equal(scale[~m], torch.ones_like(scale[~m]))
        assert (loc[m] != 0).all() and (scale[m] > 0).all()
    assert {k: v[0].shape for k, v in out.items()} == {"a": (5, 1), "b": (5, 2)}
    with pytest.raises(ValueError, match=r"labels must have shape \(n, 3\)"):
        prior(torch.randn(5, 2))


def test_conditional_noise_needs_a_pushed_forward_site() -> None:
    def program() -> torch.Tensor:
        return pyro.sample("a", pyro.distributions.Normal(torch.zeros(2, 1), 1.0).to_event(1))

    with pytest.raises(TypeError, match="site 'a'"):
        ConditionalNoise({"a": (torch.zeros(2, 1), torch.ones(2, 1))})(program)()


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="does not combine with learn_graph"):
        CauFVAE(GRAPH, image_size=32, prior_conditional=True, learn_graph=True, **TINY)
    with pytest.raises(TypeError, match="prior_conditional must be a bool"):
        CauFVAE(GRAPH, image_size=32, prior_conditional="yes", **TINY)  # type: ignore[arg-type]


# --------------------------------------------------------------------- the density
@pytest.mark.parametrize("kind", MODEL_NAMES)
def test_log_prob_is_the_flow_of_the_conditional_noise(kind: str) -> None:
    """``log p(z | u) = log p(z) + log N(eps; mu(u), sigma(u)) - log N(eps; 0, I)`` with
    ``eps`` the prior's abducted noise (same flow, only the base changes); unlabelled rows
    keep ``log p(z)`` exactly."""
    vae = _vae(kind)
    n = 8
    x, u = torch.rand(n, 3, 32, 32), torch.randn(n, 4)
    m = torch.tensor([True, False] * 4)
    z = {f: torch.randn(n, 1) for f in vae.factors}
    cond = _site_log_probs(vae, z, x, u, m)
    plain = _site_log_probs(vae, z, x)  # no labels: the unconditional prior
    eps = {}
    for f, parents in vae.prior.parents.items():  # each mechanism's inverse at its parents
        context = torch.cat([z[p] for p in parents], -1) if parents else None
        eps[f] = vae.prior.mechanisms[f].abduct(z[f], context)
    params = vae.label_prior(u, m)
    for f in vae.factors:
        loc, scale = params[f]
        shift = (Normal(loc, scale).log_prob(eps[f]) - Normal(0.0, 1.0).log_prob(eps[f])).sum(-1)
        # float32 flow inverse: a few 1e-5 nats
        torch.testing.assert_close(cond[f], plain[f] + shift, atol=1e-4, rtol=1e-5)
        assert torch.equal(cond[f][~m], plain[f][~m])


def test_elbo_kl_matches_the_closed_form() -> None:
    """For the beta-VAE (``z = eps``) the ELBO's KL term is ``KL(q(z|x) || N(mu(u), sigma(u)))``
    in closed form; the model/guide traces' one-particle estimate, averaged over 4,000 copies
    of one image, must agree within 4 standard errors (seeded)."""
    vae = _vae("betavae", beta=1.0)
    n = 4000
    x = torch.rand(1, 3, 32, 32).expand(n, 3, 32, 32)
    u = torch.randn(1, 4).expand(n, 4)
    m = torch.ones(n, dtype=torch.bool)
    with torch.no_grad():
        qloc, qscale = vae.encoder.encoder(x[:1])
        mu, sigma = (torch.cat(t, -1)[:1] for t in zip(*vae.label_prior(u[:1]).values(),
                                                         strict=True))
        exact = float(kl_divergence(Normal(qloc, qscale), Normal(mu, sigma)).sum())
        guide_tr = poutine.trace(vae.guide).get_trace(x, u, m)
        model_tr = poutine.trace(poutine.replay(vae.model, trace=guide_tr)).get_trace(x, u, m)
        per_row = sum(guide_tr.nodes[f]["fn"].log_prob(guide_tr.nodes[f]["value"])
                      - model_tr.nodes[f]["fn"].log_prob(guide_tr.nodes[f]["value"])
                      for f in vae.factors)
    se = float(per_row.std()) / n**0.5
    assert abs(float(per_row.mean()) - exact) < 4 * se, (float(per_row.mean()), exact, se)
    assert exact > 10 * se  # the label maps moved the prior: the check is not trivially 0 = 0
    # loss_parts reads the same traces
    pyro.set_rng_seed(0)
    assert vae.loss_parts(x, u, m)["kl"] == pytest.approx(exact, abs=4 * se)


def test_labels_of_unlabelled_rows_do_not_matter() -> None:
    vae = _vae()
    x, u = torch.rand(6, 3, 32, 32), torch.randn(6, 4)
    m = torch.tensor([True, True, False, False, True, False])
    losses = []
    for shift in (0.0, 100.0):
        pyro.set_rng_seed(3)
        losses.append(vae.loss(x, u + shift * (~m)[:, None], m))
    assert torch.equal(losses[0], losses[1])
    pyro.set_rng_seed(3)
    assert not torch.equal(losses[0], vae.loss(x, u + 1.0, m))  # labelled rows do


def test_untrained_label_prior_is_the_unconditional_model() -> None:
    plain = CauFVAE(GRAPH, image_size=32, **TINY)
    cond = CauFVAE(GRAPH, image_size=32, prior_conditional=True, **TINY)
    x, u = torch.rand(4, 3, 32, 32), torch.randn(4, 4)
    pyro.set_rng_seed(7)
    a = plain.loss(x, u)
    pyro.set_rng_seed(7)
    b = cond.loss(x, u)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-3)  # N(0, 1.0000001) vs N(0, 1)


def test_sampling_and_interventions_ignore_the_label_prior() -> None:
    vae = _vae()
    pyro.set_rng_seed(5)
    a = vae.model(n=6)
    vae.label_prior = None  # the same model without the conditional prior
    pyro.set_rng_seed(5)
    b = vae.model(n=6)
    assert all(torch.equal(a[f], b[f]) for f in a)


# --------------------------------------------------------------------- files
def test_save_load_and_resume_carry_the_label_prior(data, tmp_path) -> None:  # noqa: ANN001
    opts = {"data": data, "image_size": 32, "batch_size": 16, "progress": False,
            "labelled_fraction": 0.5, "prior_conditional": True, "label_hidden": 8, **TINY}
    straight = train_run(tmp_path / "a", epochs=2, **opts)
    train_run(tmp_path / "b", epochs=1, **opts)
    resumed = train_run(tmp_path / "b", epochs=2, resume=True, **opts)
    s1, s2 = straight.model.state_dict(), resumed.model.state_dict()
    assert any(k.startswith("label_prior.") for k in s1)
    assert s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)
    loaded, record = load_model(tmp_path / "a")
    assert record["model"]["prior_conditional"] is True and record["model"]["label_hidden"] == 8
    assert loaded.label_prior is not None and loaded.label_prior.net[0].out_features == 8
    x, u = torch.rand(4, 3, 32, 32), torch.randn(4, 4)
    losses = []
    for vae in (straight.model, loaded):
        pyro.set_rng_seed(11)
        losses.append(vae.loss(x, u))
    assert torch.equal(losses[0], losses[1])
    # training moved the label maps off their N(0, I) start
    assert straight.model.label_prior.net[-1].weight.abs().max() > 0


def test_runs_saved_before_the_option_still_load(data, tmp_path) -> None:  # noqa: ANN001
    train_run(tmp_path / "old", data=data, epochs=1, image_size=32, batch_size=16,
              progress=False, **TINY)
    record = json.loads((tmp_path / "old" / RECORD).read_text())
    for key in ("prior_conditional", "label_hidden"):
        del record["model"][key]  # as written by the code before the option existed
    del record["record_sha256"]  # which wrote no checksum of the record either
    (tmp_path / "old" / RECORD).write_text(json.dumps(record))
    vae, _ = load_model(tmp_path / "old")
    assert vae.label_prior is None and vae.options["prior_conditional"] is False


# --------------------------------------------------------------------- CLI
def test_cli_flag_reaches_the_saved_run(cache, tmp_path) -> None:  # noqa: ANN001
    from typer.testing import CliRunner

    from cli import app

    train = ["train", "caufvae", "--image-size", "32", "--n-train", "64", "--max-steps", "2",
             "--epochs", "1", "--labelled", "0.5"]
    r = CliRunner().invoke(app, [*train, "--prior-conditional", "--out", str(tmp_path / "r")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "r" / RECORD).read_text())["model"]["prior_conditional"]
    r = CliRunner().invoke(app, [*train, "--prior-conditional", "--learn-graph",
                                 "--out", str(tmp_path / "g")])
    assert r.exit_code == 2 and "does not combine with learn_graph" in r.output
