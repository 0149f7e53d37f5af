"""Vector quantization with several codebooks, EMA codebook updates and a commitment loss.

The encoder's map ``(n, G * d, h, w)`` is cut into ``G`` chunks of ``d`` channels; chunk ``g``
of every cell snaps to its nearest vector in codebook ``g`` (``K`` codes). Gradients pass
straight through (van den Oord et al., NeurIPS 2017, Eq. 3: ``z + sg(e - z)``); the encoder
pays the commitment loss ``||z - sg(e)||^2`` (ibid., third term, beta = 0.25 by default).

Our choice for the codebook term: exponential moving averages of assignment counts and sums
(ibid., Appendix A.1; Razavi et al. 2019), not the codebook loss, since EMA codebooks train
stably without tuning on a CPU budget. Codes unused for a while (EMA count below
``dead_threshold``) are restarted on random encoder outputs of the current batch, which keeps
the perplexity up on small data sets. Each codebook's first training batch initialises it.
Encoder vectors and codes are L2-normalised before the nearest-code search (Yu et al.,
"Vector-quantized image modeling with improved VQGAN", ICLR 2022, Sec. 3.2): without it the
Pendulum codebooks collapsed to one code per slot (perplexity 1, MSE stuck at the mean image).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class Quantized:
    """What :class:`MultiQuantizer` returns.

    Attributes:
        z_q: straight-through quantized map ``(n, G * d, h, w)``.
        codes: code indices ``(n, G, h, w)``, int64.
        commitment: ``mean ||z - sg(e)||^2`` (scalar).
        perplexity: ``exp(entropy)`` of each codebook's code usage in the batch, ``(G,)``.
    """

    z_q: Tensor
    codes: Tensor
    commitment: Tensor
    perplexity: Tensor


class MultiQuantizer(nn.Module):
    """``G`` codebooks of ``K`` codes of dimension ``d`` with EMA updates.

    Example:
        >>> q = MultiQuantizer(2, 16, 4)
        >>> out = q(torch.randn(3, 8, 5, 5))
        >>> out.z_q.shape, out.codes.shape
        (torch.Size([3, 8, 5, 5]), torch.Size([3, 2, 5, 5]))
    """

    def __init__(
        self,
        n_codebooks: int,
        n_codes: int,
        code_dim: int,
        *,
        decay: float = 0.95,
        eps: float = 1e-5,
        dead_threshold: float = 0.05,
    ) -> None:
        super().__init__()
        for name, value in {"n_codebooks": n_codebooks, "n_codes": n_codes,
                            "code_dim": code_dim}.items():
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be a positive int; got {value!r}")
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must lie in (0, 1); got {decay!r}")
        self.n_codebooks, self.n_codes, self.code_dim = n_codebooks, n_codes, code_dim
        self.decay, self.eps, self.dead_threshold = decay, eps, dead_threshold
        self.register_buffer("embed", torch.randn(n_codebooks, n_codes, code_dim))
        self.register_buffer("cluster_size", torch.ones(n_codebooks, n_codes))
        self.register_buffer("embed_sum", self.embed.clone())
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def forward(self, z: Tensor) -> Quantized:
        """Quantize ``z`` ``(n, G * d, h, w)``; in training mode also update the codebooks."""
        n, channels, h, w = z.shape
        if channels != self.n_codebooks * self.code_dim:
            raise ValueError(
                f"z must have {self.n_codebooks * self.code_dim} channels "
                f"(n_codebooks x code_dim); got {channels}"
            )
        flat = z.view(n, self.n_codebooks, self.code_dim, h, w).permute(1, 0, 3, 4, 2)
        flat = flat.reshape(self.n_codebooks, -1, self.code_dim)  # (G, M, d)
        flat = nn.functional.normalize(flat, dim=-1)  # unit vectors: see the module docstring
        if self.training:
            self._update(flat.detach())
        codes = self._nearest(flat.detach())  # (G, M)
        e = torch.gather(self.embed, 1, codes[..., None].expand(-1, -1, self.code_dim))
        commitment = ((flat - e) ** 2).mean()
        q = flat + (e - flat).detach()
        z_q = q.view(self.n_codebooks, n, h, w, self.code_dim).permute(1, 0, 4, 2, 3)
        counts = torch.nn.functional.one_hot(codes, self.n_codes).float().mean(1)  # (G, K)
        entropy = -(counts * (counts + 1e-10).log()).sum(-1)
        return Quantized(
            z_q=z_q.reshape(n, channels, h, w),
            codes=codes.view(self.n_codebooks, n, h, w).permute(1, 0, 2, 3),
            commitment=commitment,
            perplexity=entropy.exp(),
        )

    def lookup(self, codes: Tensor) -> Tensor:
        """Code vectors of indices ``(n, G, h, w)``: ``(n, G * d, h, w)``."""
        n, g, h, w = codes.shape
        if g != self.n_codebooks:
            raise ValueError(f"codes must have {self.n_codebooks} codebooks; got {g}")
        flat = codes.permute(1, 0, 2, 3).reshape(g, -1)
        e = torch.gather(self.embed, 1, flat[..., None].expand(-1, -1, self.code_dim))
        return e.view(g, n, h, w, self.code_dim).permute(1, 0, 4, 2, 3).reshape(n, -1, h, w)

    def _nearest(self, flat: Tensor) -> Tensor:
        distance = torch.cdist(flat, self.embed)  # (G, M, K)
        return distance.argmin(-1)

    @torch.no_grad()
    def _update(self, flat: Tensor) -> None:
        g, m, d = flat.shape
        if not bool(self.initialised):
            pick = torch.randint(m, (g, self.n_codes))
            self.embed.copy_(torch.gather(flat, 1, pick[..., None].expand(-1, -1, d)))
            self.embed_sum.copy_(self.embed)
            self.cluster_size.fill_(1.0)
            self.initialised.fill_(True)
        codes = self._nearest(flat)
        onehot = torch.nn.functional.one_hot(codes, self.n_codes).to(flat.dtype)  # (G, M, K)
        self.cluster_size.mul_(self.decay).add_(onehot.sum(1), alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(onehot.transpose(1, 2) @ flat, alpha=1 - self.decay)
        total = self.cluster_size.sum(-1, keepdim=True)
        size = (self.cluster_size + self.eps) / (total + self.n_codes * self.eps) * total
        self.embed.copy_(nn.functional.normalize(self.embed_sum / size[..., None], dim=-1))
        dead = self.cluster_size < self.dead_threshold  # (G, K)
        if dead.any():
            pick = torch.randint(m, (g, self.n_codes))
            fresh = torch.gather(flat, 1, pick[..., None].expand(-1, -1, d))
            self.embed[dead] = fresh[dead]
            self.embed_sum[dead] = fresh[dead]
            self.cluster_size[dead] = 1.0
