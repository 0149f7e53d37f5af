"""A black-box VAE with an optional context module: ELBO, generation and reconstruction in a
context.

Without a module it is the base VAE, ``h ~ N(0, I)``, the same in every context. With one, the
latent is the module's concepts ``z ~ p_c(z)`` (see :mod:`models.context.module`) and the
decoder reads ``module.to_latent(z)``. ``use_labels=False`` is the ablation that ignores the
context labels (always the observational architecture, in training and in generation).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from .backbone import BlackBox
from .module import ContextModule


def dequantize(images: np.ndarray | Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """uint8 ``(n, H, W, 3)`` -> float ``(n, 3, H, W)``, ``(pixel + U(0, 1)) / 256`` in (0, 1).

    Uniform dequantisation makes the Gaussian ELBO a bound on the discrete log-likelihood
    (Theis et al., "A note on the evaluation of generative models", ICLR 2016).
    """
    t = torch.as_tensor(images)
    if t.dim() != 4 or t.shape[-1] != 3 or t.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 (n, H, W, 3); got {t.dtype} {tuple(t.shape)}")
    t = t.permute(0, 3, 1, 2).float()
    return (t + torch.rand(t.shape, generator=generator)) / 256.0


def bits_per_dim(elbo: Tensor, dims: int) -> float:
    """``-ELBO / (dims ln 2) + 8``: the bound in bits per 8-bit sub-pixel of images on [0, 1]
    (the ``+ 8`` converts a density on [0, 1] into probabilities of the 256 bins)."""
    return float(-elbo.mean() / (dims * math.log(2.0)) + 8.0)


class ContextVAE(nn.Module):
    """``backbone`` (any :class:`BlackBox`) with an optional :class:`ContextModule`."""

    def __init__(
        self, backbone: BlackBox, module: ContextModule | None = None, *, use_labels: bool = True
    ) -> None:
        super().__init__()
        if not isinstance(backbone, BlackBox):
            raise TypeError(f"backbone must implement BlackBox (encode, decode, log_likelihood, "
                            f"latent_dim, image_size); got {type(backbone).__name__}")
        if module is not None and module.latent_dim != backbone.latent_dim:
            raise ValueError(f"module.latent_dim ({module.latent_dim}) must equal the backbone's "
                             f"latent_dim ({backbone.latent_dim})")
        self.backbone, self.module, self.use_labels = backbone, module, use_labels

    def _context(self, context: Collection[str]) -> tuple[str, ...]:
        return tuple(context) if self.use_labels else ()

    @property
    def noise_dim(self) -> int:
        """Width of the standard normal noise of one posterior draw (see :meth:`elbo`)."""
        return self.backbone.latent_dim if self.module is None else self.module.n * self.module.d

    def elbo(
        self, images: Tensor, context: Collection[str] = (), *, eps: Tensor | None = None
    ) -> Tensor:
        """Single-sample ELBO of ``images (m, 3, H, W)``, all in ``context``, ``(m,)`` nats
        (see :meth:`elbo_rows`)."""
        return self.elbo_rows(images, [tuple(context)] * len(images), eps=eps)

    def elbo_rows(
        self, images: Tensor, contexts: Sequence[Collection[str]], *, eps: Tensor | None = None
    ) -> Tensor:
        """Single-sample ELBO of ``images (m, 3, H, W)``, row ``j`` in ``contexts[j]``,
        ``(m,)`` nats.

        Only the KL term depends on the context: row ``j``'s posterior is compared with the
        concept prior of its own context (the module's architecture switched to it, Markham
        et al., arXiv 2507.04754, Sec. 3), so a batch may mix contexts. ``eps (m,
        noise_dim)``: the standard normal noise of the reparameterised posterior draw
        (default: drawn from torch's global RNG). Passing it makes the loss a function of the
        rows alone, which the trainer uses to give every process count the same draws. The
        module's Gaussian algebra (Cholesky, solves, KL) runs in float32 even under autocast:
        bfloat16 has no Cholesky and too few bits for it.
        """
        if len(contexts) != len(images):
            raise ValueError(f"contexts must give one context per image ({len(images)}); got "
                             f"{len(contexts)}")
        loc, scale = self.backbone.encode(images)
        with torch.autocast(device_type=images.device.type, enabled=False):
            loc, scale = loc.float(), scale.float()
            if self.module is None:
                q = Normal(loc, scale)
                h = q.rsample() if eps is None else loc + scale * eps
                kl = kl_divergence(q, Normal(torch.zeros_like(loc), torch.ones_like(scale))).sum(1)
            else:
                q = self.module.posterior(loc, scale)
                z = q.rsample() if eps is None else q.loc + (q.scale_tril @ eps[..., None])[..., 0]
                kl = kl_divergence(q, self._row_priors(contexts))
                h = self.module.to_latent(z)
        return self.backbone.log_likelihood(images, self.backbone.decode(h)) - kl

    def _row_priors(self, contexts: Sequence[Collection[str]]) -> MultivariateNormal:
        """The concept prior of each row's context, batched ``(m,)`` (one per distinct one)."""
        assert self.module is not None
        keys = [self._context(c) for c in contexts]
        distinct = list(dict.fromkeys(frozenset(k) for k in keys))
        priors = [self.module.prior(tuple(sorted(c))) for c in distinct]
        index = torch.tensor([distinct.index(frozenset(k)) for k in keys],
                             device=priors[0].loc.device)
        return MultivariateNormal(torch.stack([p.loc for p in priors])[index],
                                  scale_tril=torch.stack([p.scale_tril for p in priors])[index])

    def penalty(self, *, acyclicity: float, sparsity: float) -> Tensor:
        """``acyclicity * h(A) + sparsity * sum |A_jk|`` of the module's graph (0 without one)."""
        if self.module is None:
            return torch.zeros(())
        return acyclicity * self.module.acyclicity() + sparsity * self.module.sparsity()

    def latent_sample(self, eps: Tensor, context: Collection[str] = ()) -> Tensor:
        """Decoder inputs ``(m, L)`` in ``context`` from standard normal noise ``eps``."""
        if self.module is None:
            return eps
        return self.module.to_latent(self.module.sample(eps, self._context(context)))

    @torch.no_grad()
    def generate(self, n: int, context: Collection[str] = (), *, seed: int = 0) -> Tensor:
        """``n`` images ``(n, 3, H, W)`` in [0, 1] (decoder means) generated in ``context``."""
        gen = torch.Generator().manual_seed(seed)
        eps = torch.randn(n, self.noise_dim, generator=gen)
        return self.backbone.decode(self.latent_sample(eps, context)).clamp(0.0, 1.0)

    @torch.no_grad()
    def reconstruct(self, images: Tensor) -> Tensor:
        """Decoder means at the posterior mean, ``(m, 3, H, W)`` clamped to [0, 1]."""
        loc, _ = self.backbone.encode(images)
        if self.module is not None:
            loc = self.module.to_latent(self.module.read(loc))
        return self.backbone.decode(loc).clamp(0.0, 1.0)
