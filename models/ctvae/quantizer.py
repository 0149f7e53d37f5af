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

Under DistributedDataParallel the codebooks are buffers, not parameters: DDP averages gradients
but not them. With ``sync = True`` (set by the trainer when it runs in several processes) every
rank all-reduces the batch's assignment counts and sums before the EMA step, and draws
initial and restarted codes from the gathered global batch (in its order, with the same seeded
RNG on every rank). So each rank makes the one-process update on the global batch and all ranks
end with the same codebooks; statistics of the local shard alone would give each rank its own
codebooks (and DDP's buffer broadcast would then quietly impose rank 0's on the others).
The EMA runs in float32 even under bfloat16 autocast: counts and sums accumulate over many
steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .sync import all_sum, gather_rows


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
        self.sync = False  # share the EMA statistics across ranks (see the module docstring)

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
        flat = nn.functional.normalize(flat.float(), dim=-1)  # unit vectors (module docstring)
        if self.training:
            self._update(flat.detach(), n)
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
        """Nearest code ``(G, M)`` of each vector, by exact differences: cdist's matrix-product
        shortcut (``|a|^2 + |b|^2 - 2ab``) loses precision for near-duplicate codes, and its
        rounding depends on how many vectors are searched at once, so ties between the many
        near-equal background codes broke differently for a batch and its shards."""
        distance = torch.cdist(flat, self.embed, compute_mode="donot_use_mm_for_euclid_dist")
        return distance.argmin(-1)  # (G, M)

    def _global(self, flat: Tensor, n: int) -> Tensor:
        """The global batch's vectors ``(G, M_global, d)`` from this rank's ``(G, M, d)`` of
        ``n`` images (``flat`` itself unless ``sync``)."""
        if not self.sync:
            return flat
        g, _, d = flat.shape
        rows = flat.reshape(g, n, -1, d).transpose(0, 1).contiguous()  # (n, G, h * w, d)
        return gather_rows(rows).transpose(0, 1).reshape(g, -1, d)

    @torch.no_grad()
    def _update(self, flat: Tensor, n: int) -> None:
        with torch.autocast(flat.device.type, enabled=False):  # float32 EMA (module docstring)
            self._ema(flat, n)

    def _ema(self, flat: Tensor, n: int) -> None:
        g, _, d = flat.shape
        if not bool(self.initialised):
            pool = self._global(flat, n)
            pick = torch.randint(pool.shape[1], (g, self.n_codes), device=flat.device)
            self.embed.copy_(torch.gather(pool, 1, pick[..., None].expand(-1, -1, d)))
            self.embed_sum.copy_(self.embed)
            self.cluster_size.fill_(1.0)
            self.initialised.fill_(True)
        codes = self._nearest(flat)
        onehot = torch.nn.functional.one_hot(codes, self.n_codes).to(flat.dtype)  # (G, M, K)
        stats = torch.cat([onehot.sum(1)[..., None], onehot.transpose(1, 2) @ flat], -1)
        if self.sync:
            all_sum(stats)  # (G, K, 1 + d): the global batch's counts and sums
        self.cluster_size.mul_(self.decay).add_(stats[..., 0], alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(stats[..., 1:], alpha=1 - self.decay)
        total = self.cluster_size.sum(-1, keepdim=True)
        size = (self.cluster_size + self.eps) / (total + self.n_codes * self.eps) * total
        self.embed.copy_(nn.functional.normalize(self.embed_sum / size[..., None], dim=-1))
        dead = self.cluster_size < self.dead_threshold  # (G, K)
        if dead.any():  # the same on every rank: the counts are global
            pool = self._global(flat, n)
            pick = torch.randint(pool.shape[1], (g, self.n_codes), device=flat.device)
            fresh = torch.gather(pool, 1, pick[..., None].expand(-1, -1, d))
            self.embed[dead] = fresh[dead]
            self.embed_sum[dead] = fresh[dead]
            self.cluster_size[dead] = 1.0
