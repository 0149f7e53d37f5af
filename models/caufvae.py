"""CauF-VAE (arXiv 2304.09010): a VAE whose latent factors follow a causal-flow SCM prior.

The generative model is an SCM over ``k`` factor nodes plus an image node::

    z = scm.model(n)                          # one site per factor in plate "rows"
    x ~ Normal(decoder(z), pixel_scale)       # site "x", event (3, H, W), plate "images"
    u ~ Normal(z[:, :1], tau)                 # site "labels": standardised labels, where known

The prior is :class:`scm.SCM` with ``"flow"`` mechanisms: each factor is a stack of
rational-quadratic spline layers whose conditioner sees only that factor's parents in the
known graph, so the whole prior is an adjacency-masked autoregressive flow of the exogenous
noise ``eps ~ N(0, I)``. The baselines swap the prior and keep everything else:
``"causalvae-linear"`` (linear-Gaussian SCM, CausalVAE-style) and ``"betavae"`` (fixed
``N(0, I)``, KL weighted by ``beta``).

Why a Gaussian pixel likelihood with a fixed scale: the images are RGB renders with
intermediate (anti-aliased, shaded) values, for which a Bernoulli is not a density; a
continuous Bernoulli is, but its mean is not its parameter, so the decoded image is not the
decoder output. With a fixed scale the reconstruction term is the pixel MSE divided by
``2 pixel_scale**2``, the same quantity intervention fidelity is scored with.

Why supervision is a likelihood site: ``labels ~ Normal(z_first_coord, tau)`` with
``tau = (2 * supervision) ** -0.5`` adds ``supervision * E_q||z - u||^2 =
supervision * (||mu - u||^2 + sigma^2)`` per labelled row to the loss: it aligns each
factor's posterior mean with its standardised label (and keeps the posterior narrow).
Unlabelled rows are masked with ``poutine.mask`` (the semi-supervised setting).

Why an optional label-conditioned noise prior (``prior_conditional=True``): iVAE
(Khemakhem et al. 2020, Eq. 7) and CausalVAE make the prior ``p(z | u)`` given the labels; here
the exogenous noise becomes ``eps ~ N(mu(u), diag sigma(u)^2)`` on labelled rows
(:mod:`models.label_prior`), the causal flow is applied on top unchanged, and the KL term of
the ELBO is taken against ``p(z | u)``. Unlabelled rows, sampling and interventions keep
``eps ~ N(0, I)``. For ``"betavae"`` this is exactly iVAE's prior; for
``"causalvae-linear"`` the linear SCM's noise is conditioned the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal, get_args

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO
from torch import Tensor, nn

from guides.encoder import FactorGuide, factor_guide
from models.decoder import ConvDecoder
from models.graph_learning import GatedFlowPrior, GraphLearner
from models.label_prior import ConditionalNoise, LabelPrior
from scm import SCM
from scm.graph import GraphLike, as_parent_dict, descendants
from scm.interventions import Interventions, resolve

ModelName = Literal["caufvae", "betavae", "causalvae-linear"]
MODEL_NAMES: tuple[str, ...] = get_args(ModelName)


class CauFVAE(nn.Module):
    """Encoder (an amortized guide), causal prior over factors, image decoder.

    Args:
        graph: the known factor graph ``{child: [parents]}``.
        kind: ``"caufvae"`` (causal-flow prior), ``"causalvae-linear"`` or ``"betavae"``.
        dims: widths of vector factors (default 1 each).
        image_size: image side (a multiple of 16).
        channels: conv width of encoder and decoder.
        hidden: MLP width of encoder and decoder.
        flow_layers: spline layers per factor in the causal-flow prior.
        bins: spline bins.
        flow_hidden: conditioner MLP widths of each factor's flow.
        pixel_scale: fixed standard deviation of the Gaussian pixel likelihood.
        beta: weight of the KL term (``poutine.scale`` on the factor sites of model and
            guide); default 1, or 4 for ``"betavae"``.
        supervision: weight ``w`` of the label term (``tau = (2 w) ** -0.5``); 0 turns it off.
        seed: seeds the initial weights.
        learn_graph: learn the factor graph instead of trusting ``graph`` (whose edges are
            then ignored; ``kind="caufvae"`` only): the prior starts as a
            :class:`~models.graph_learning.GraphLearner` over all factors and becomes a causal
            flow over the learned DAG at :meth:`fix_graph`.
        graph_fixed: with ``learn_graph``, whether ``graph`` already is the learned DAG (set by
            :meth:`fix_graph`, so that a saved run rebuilds the same model).
        graph_sparsity: L1 weight on the learner's gates.
        factor_order: the order of the factors (label columns, decoder input); default the
            topological order of ``graph``.
        prior_conditional: give the noise of labelled rows the learned prior
            ``N(mu(u), sigma(u))`` (iVAE-style ``p(eps | u)``, see :mod:`models.label_prior`)
            instead of ``N(0, I)``; not with ``learn_graph``. Off by default: on Pendulum (32 px,
            6 epochs, 10% or all images labelled, two seeds) its effect on CauF-VAE's factor
            recovery stayed within seed-to-seed spread (``bench/caufvae_pendulum.py``).
        label_hidden: hidden width of the label maps ``mu(u), sigma(u)``.

    Example:
        >>> vae = CauFVAE({"a": [], "b": ["a"]}, image_size=32, channels=8, hidden=32)
        >>> {k: v.shape for k, v in vae.model(n=3).items()}
        {'a': torch.Size([3, 1]), 'b': torch.Size([3, 1])}
    """

    def __init__(
        self,
        graph: GraphLike,
        *,
        kind: ModelName = "caufvae",
        dims: Mapping[str, int] | None = None,
        image_size: int = 64,
        channels: int = 32,
        hidden: int = 256,
        flow_layers: int = 3,
        bins: int = 8,
        flow_hidden: Sequence[int] = (32, 32),
        pixel_scale: float = 0.1,
        beta: float | None = None,
        supervision: float = 500.0,
        seed: int = 0,
        learn_graph: bool = False,
        graph_fixed: bool = False,
        graph_sparsity: float = 0.02,
        factor_order: Sequence[str] | None = None,
        prior_conditional: bool = False,
        label_hidden: int = 32,
    ) -> None:
        super().__init__()
        if kind not in MODEL_NAMES:
            raise ValueError(f"kind must be one of {MODEL_NAMES}, got {kind!r}")
        if not pixel_scale > 0:
            raise ValueError(f"pixel_scale must be positive, got {pixel_scale!r}")
        if supervision < 0:
            raise ValueError(f"supervision must be >= 0, got {supervision!r}")
        beta = (4.0 if kind == "betavae" else 1.0) if beta is None else float(beta)
        if not beta > 0:
            raise ValueError(f"beta must be positive, got {beta!r}")
        if learn_graph and kind != "caufvae":
            raise ValueError(f"learn_graph needs kind='caufvae', got kind={kind!r}")
        if not isinstance(prior_conditional, bool):
            raise TypeError(f"prior_conditional must be a bool, got {prior_conditional!r}")
        if prior_conditional and learn_graph:
            raise ValueError("prior_conditional=True does not combine with learn_graph=True "
                             "(the graph learner's prior has no per-factor noise sites)")
        self.graph = {k: list(v) for k, v in as_parent_dict(graph).items()}
        order = list(self.graph) if factor_order is None else list(factor_order)
        if sorted(order) != sorted(self.graph):
            raise ValueError(f"factor_order {order} must list the graph's nodes {list(self.graph)}")
        self.kind = kind
        learning = learn_graph and not graph_fixed
        self.options: dict[str, Any] = {
            "image_size": image_size, "channels": channels, "hidden": hidden,
            "flow_layers": flow_layers, "bins": bins, "flow_hidden": list(flow_hidden),
            "pixel_scale": pixel_scale, "beta": beta, "supervision": supervision, "seed": seed,
            "learn_graph": learn_graph, "graph_fixed": graph_fixed,
            "graph_sparsity": graph_sparsity, "factor_order": order,
            "prior_conditional": prior_conditional, "label_hidden": label_hidden,
        }
        self.pixel_scale, self.beta, self.supervision = pixel_scale, beta, supervision
        self.graph_learner: GraphLearner | None = None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # While the graph is being learned the SCM prior is edgeless and unused: it only
            # carries the factor widths until fix_graph() builds the flow over the learned DAG.
            prior_graph = {k: [] for k in self.graph} if learning else self.graph
            self.prior = _build_prior(prior_graph, kind, dims, flow_layers, bins, flow_hidden, seed)
            self.dims = {name: self.prior.dims[name] for name in order}
            if learning:
                self.graph_learner = GraphLearner(
                    self.dims, bins=bins, hidden=flow_hidden, sparsity=graph_sparsity
                )
            self.encoder: FactorGuide = factor_guide(
                self.dims, image_size=image_size, channels=channels, hidden=hidden
            )
            self.decoder = ConvDecoder(
                sum(self.dims.values()), image_size=image_size, channels=channels, hidden=hidden
            )
            self.label_prior: LabelPrior | None = (
                LabelPrior(len(self.dims), self.dims, hidden=label_hidden)
                if prior_conditional else None
            )
        k = len(self.dims)
        self.register_buffer("label_loc", torch.zeros(k))
        self.register_buffer("label_scale", torch.ones(k))

    # ----------------------------------------------------------------- description
    @property
    def factors(self) -> list[str]:
        """Factor names in the model's order (label columns, decoder input)."""
        return list(self.dims)

    def config(self) -> dict[str, Any]:
        """JSON-able keyword arguments that rebuild this model (weights aside)."""
        return {"graph": self.graph, "kind": self.kind, "dims": self.dims, **self.options}

    def set_label_stats(self, loc: Sequence[float], scale: Sequence[float]) -> None:
        """Set the label standardisation: latent value ``(raw - loc) / scale``."""
        self.label_loc.copy_(torch.as_tensor(np.asarray(loc, dtype=np.float64).copy()))
        self.label_scale.copy_(torch.as_tensor(np.asarray(scale, dtype=np.float64).copy()))

    def to_latent(self, interventions: Mapping[str, Any]) -> dict[str, Any]:
        """Raw-unit factor values (numbers or per-row arrays) -> standardised latent units."""
        out = {}
        for name, value in interventions.items():
            if name not in self.dims:
                raise ValueError(f"unknown factor {name!r}; the factors are {self.factors}")
            if self.dims[name] != 1:
                raise ValueError(
                    f"factor {name!r} has dimension {self.dims[name]}; give latent values"
                )
            i = self.factors.index(name)
            loc, scale = float(self.label_loc[i]), float(self.label_scale[i])
            out[name] = (np.asarray(value, dtype=np.float64) - loc) / scale
        return out

    def to_raw(self, z: Mapping[str, Tensor]) -> np.ndarray:
        """First coordinate of each factor in raw label units, ``(n, k)`` float64."""
        first = torch.cat([z[name][:, :1] for name in self.factors], -1)
        return (first * self.label_scale + self.label_loc).double().cpu().numpy()

    # ----------------------------------------------------------------- Pyro program
    def model(
        self,
        images: Tensor | None = None,
        labels: Tensor | None = None,
        labelled: Tensor | None = None,
        *,
        n: int | None = None,
    ) -> dict[str, Tensor]:
        """The generative model; ``images (n, 3, H, W)`` in [0, 1] observed at site ``"x"``.

        ``labels (n, k)`` are standardised factor labels, ``labelled (n,)`` a bool mask of
        the rows that carry them (default: all). Without images, ``n`` rows are drawn. With
        ``prior_conditional``, labelled rows draw their noise from ``p(eps | u)``. Returns the
        factors.
        """
        n = _rows(images, n)
        pyro.module("caufvae_decoder", self.decoder)
        if self.graph_learner is not None:
            pyro.module("caufvae_graph", self.graph_learner)
            with poutine.scale(scale=self.beta), pyro.plate("rows", n):
                z = self.unstack(pyro.sample("factors", GatedFlowPrior(self.graph_learner, n)))
        else:
            if self.kind != "betavae":
                pyro.module("caufvae_prior", self.prior)
            noise = {}
            if self.label_prior is not None and labels is not None:
                pyro.module("caufvae_label_prior", self.label_prior)
                noise = self.label_prior(labels, labelled)
            with poutine.scale(scale=self.beta), ConditionalNoise(noise):
                z = self.prior.model(n)
        # The prior closed its plate "rows"; a plate's name is a site in the trace, so the
        # image and label sites (absent from the guide) live in a second plate over the rows.
        with pyro.plate("images", n):
            loc = self.decoder(self.stack(z))
            pyro.sample("x", dist.Normal(loc, self.pixel_scale).to_event(3), obs=images)
            if labels is not None and self.supervision > 0:
                tau = (2.0 * self.supervision) ** -0.5
                first = torch.cat([z[name][:, :1] for name in self.factors], -1)
                with poutine.mask(mask=True if labelled is None else labelled):
                    pyro.sample("labels", dist.Normal(first, tau).to_event(1), obs=labels)
        return z

    def guide(
        self,
        images: Tensor | None = None,
        labels: Tensor | None = None,
        labelled: Tensor | None = None,
        *,
        n: int | None = None,
    ) -> dict[str, Tensor]:
        """The amortized guide ``q(z | images)`` (factor sites scaled by ``beta``, as the prior)."""
        if images is None:
            raise ValueError("the guide needs images (n, 3, H, W)")
        if self.graph_learner is not None:  # one joint site, as the gated prior's
            pyro.module(self.encoder.name, self.encoder)
            loc, scale = self.encoder.encoder(images)
            with poutine.scale(scale=self.beta), pyro.plate("rows", images.shape[0]):
                return self.unstack(
                    pyro.sample("factors", dist.Normal(loc, scale).to_event(1))
                )
        with poutine.scale(scale=self.beta):
            return self.encoder(images)

    def loss(
        self, images: Tensor, labels: Tensor | None = None, labelled: Tensor | None = None
    ) -> Tensor:
        """Negative ELBO (with the label term) summed over the batch, one particle, by
        ``Trace_ELBO().differentiable_loss``; while the graph is learned, plus the learner's
        acyclicity and sparsity penalty for each row."""
        loss = Trace_ELBO().differentiable_loss(self.model, self.guide, images, labels, labelled)
        if self.graph_learner is not None:
            loss = loss + images.shape[0] * self.graph_learner.penalty()
        return loss

    def loss_parts(
        self, images: Tensor, labels: Tensor | None = None, labelled: Tensor | None = None
    ) -> dict[str, float]:
        """Per-image ``recon`` (-log p(x|z)), ``kl`` (beta-weighted log q - log p) and ``sup``."""
        with torch.no_grad():
            guide_tr = poutine.trace(self.guide).get_trace(images, labels, labelled)
            model_tr = poutine.trace(poutine.replay(self.model, trace=guide_tr)).get_trace(
                images, labels, labelled
            )
            model_tr.compute_log_prob()
            guide_tr.compute_log_prob()
        n = images.shape[0]
        parts = {"recon": -float(model_tr.nodes["x"]["log_prob_sum"]) / n}
        sites = ["factors"] if self.graph_learner is not None else self.factors
        kl = sum(float(guide_tr.nodes[f]["log_prob_sum"] - model_tr.nodes[f]["log_prob_sum"])
                 for f in sites)
        parts["kl"] = kl / n
        sup = model_tr.nodes.get("labels")
        parts["sup"] = -float(sup["log_prob_sum"]) / n if sup else 0.0
        return parts

    # ----------------------------------------------------------------- the learned graph
    @property
    def learning_graph(self) -> bool:
        """Whether the factor graph is still being learned (no causal queries yet)."""
        return self.graph_learner is not None

    def fix_graph(self, threshold: float = 0.5) -> dict[str, list[str]]:
        """End the graph search: the learner's DAG (gates above ``threshold``) becomes
        ``self.graph`` and a fresh causal-flow prior over it replaces the learner.

        Returns the learned graph ``{child: [parents]}``.
        """
        if self.graph_learner is None:
            raise ValueError("this model is not learning its graph (learn_graph=False or fixed)")
        learned = self.graph_learner.dag(threshold)
        o = self.options
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(o["seed"] + 1)
            self.prior = _build_prior(learned, self.kind, self.dims, o["flow_layers"], o["bins"],
                                      o["flow_hidden"], o["seed"])
        self.graph = {k: list(v) for k, v in as_parent_dict(learned).items()}
        self.graph_learner = None
        o["graph_fixed"] = True
        return self.graph

    def _require_graph(self) -> None:
        if self.graph_learner is not None:
            raise ValueError(
                "the factor graph is still being learned; call fix_graph() (train_run does at "
                "the end of its graph epochs) before intervening or sampling"
            )

    # ----------------------------------------------------------------- encode, decode, act
    def stack(self, z: Mapping[str, Tensor]) -> Tensor:
        """``{factor: (n, dim)}`` -> ``(n, sum dims)`` in factor order."""
        return torch.cat([z[name] for name in self.factors], -1)

    def unstack(self, z: Tensor) -> dict[str, Tensor]:
        """``(n, sum dims)`` -> ``{factor: (n, dim)}``, the inverse of :meth:`stack`."""
        return dict(zip(self.factors, z.split(list(self.dims.values()), dim=-1), strict=True))

    def encode(self, images: Tensor) -> dict[str, Tensor]:
        """Posterior means ``{factor: (n, dim)}`` (standardised latent units) of float images
        ``(n, 3, S, S)`` in [0, 1] (:func:`guides.encoder.as_image_batch` makes them from uint8
        ``(n, S, S, 3)``); other images raise ``ValueError`` naming what is wrong."""
        self._check_images(images)
        with torch.no_grad():
            return self.encoder.mean(images)

    def _check_images(self, images: Tensor) -> None:
        size = self.options["image_size"]
        expected = f"float images (n, 3, {size}, {size}) in [0, 1]"
        hint = "guides.encoder.as_image_batch converts uint8 (n, H, W, 3)"
        if not isinstance(images, Tensor) or not images.is_floating_point():
            what = images.dtype if hasattr(images, "dtype") else type(images).__name__
            raise ValueError(f"expected {expected}, got {what}; {hint}")
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(f"expected {expected}, got shape {tuple(images.shape)}; {hint}")
        if len(images) and not (images.min() >= 0.0 and images.max() <= 1.0):
            raise ValueError(f"expected {expected}, got values in [{images.min().item():.3g}, "
                             f"{images.max().item():.3g}] (0-255 images: divide by 255)")

    def decode(self, z: Mapping[str, Tensor]) -> Tensor:
        """Mean image ``(n, 3, H, W)`` of the factors, clamped to [0, 1]."""
        missing = [f for f in self.factors if f not in z]
        if missing:
            raise ValueError(f"decode needs every factor; missing {missing}")
        with torch.no_grad():
            return self.decoder(self.stack(z)).clamp(0.0, 1.0)

    def counterfactual(
        self, images: Tensor, interventions: Interventions
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Encode (posterior mean), abduct the prior's noise, ``do``, recompute the
        descendants with that noise held fixed, decode. Values in latent units.

        Returns:
            ``(images (n, 3, H, W), factors {name: (n, dim)})``.
        """
        self._require_graph()
        z = self.encode(images)
        cf, _ = self.prior._counterfactual(z, interventions)
        return self.decode(cf), cf

    def interventional(
        self, images: Tensor, interventions: Interventions, *, seed: int = 0
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Like :meth:`counterfactual`, but descendants are resampled from their mechanisms
        (non-descendants keep their encoded values): ``poutine.do`` on the conditioned prior."""
        self._require_graph()
        z = self.encode(images)
        n = images.shape[0]
        actions = resolve(interventions, self.dims, n)
        if not all(a.is_hard and a.all_rows for a in actions.values()):
            raise ValueError(
                "interventional() takes hard values for every row (no NaN, no callables)"
            )
        hard = {k: torch.as_tensor(a.value, dtype=z[k].dtype) for k, a in actions.items()}
        changed = set(hard) | descendants(self.prior.parents, hard)
        fixed = {k: v for k, v in z.items() if k not in changed}
        program = poutine.do(poutine.condition(self.prior.model, data=fixed), data=hard)
        with _seeded(seed), torch.no_grad():
            new = program(n)
        return self.decode(new), new

    def sample(self, n: int, interventions: Interventions | None = None, *, seed: int = 0
               ) -> tuple[Tensor, dict[str, Tensor]]:
        """Draw ``n`` factor sets from the (intervened) prior and decode their mean images."""
        self._require_graph()
        with _seeded(seed), torch.no_grad():
            z = self.prior.do(dict(interventions or {})).model(n)
        return self.decode(z), z


def _build_prior(
    graph: dict[str, list[str]],
    kind: str,
    dims: Mapping[str, int] | None,
    flow_layers: int,
    bins: int,
    flow_hidden: Sequence[int],
    seed: int,
) -> SCM:
    if kind == "caufvae":
        prior = SCM(graph, "flow", dims=dims, seed=seed, transforms=flow_layers, bins=bins,
                    hidden=tuple(flow_hidden))
    elif kind == "causalvae-linear":
        prior = SCM(graph, "linear", dims=dims, seed=seed)
    else:
        prior = SCM({k: [] for k in graph}, "linear", dims=dims, seed=seed)  # N(0, I), fixed
        prior.requires_grad_(False)
    prior.untrained = {}  # trained with the VAE (or fixed), not by SCM.fit: scm.untrained
    return prior


def _rows(images: Tensor | None, n: int | None) -> int:
    if images is None:
        if n is None:
            raise ValueError("give images (n, 3, H, W) or the number of rows n")
        return n
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (n, 3, H, W), got {tuple(images.shape)}")
    if n is not None and n != images.shape[0]:
        raise ValueError(f"n={n} but images has {images.shape[0]} rows")
    return images.shape[0]


@contextmanager
def _seeded(seed: int):  # noqa: ANN202 - generator context manager
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield

