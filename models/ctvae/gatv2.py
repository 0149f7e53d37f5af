"""A dense GATv2 message-passing layer over a (soft or hard) adjacency matrix, in plain torch.

GATv2 (Brody, Alon, Yahav, ICLR 2022, Eq. 7): the score of edge ``i -> j`` is
``a^T LeakyReLU(W_s h_i + W_t h_j)``; node ``j`` attends over its parents ``i``. We weight the
softmax by the adjacency, ``alpha_ij = A_ij exp(e_ij) / sum_k A_kj exp(e_kj)``, so a
straight-through sampled 0/1 adjacency (value hard, gradient soft) passes gradients to the edge
probabilities; a node without parents receives nothing. Update: ``h_j + MLP([h_j, m_j])``.

The scores use their own projections to ``att_dim`` (default 16) features rather than the full
width: the pair-wise ``(B, N, N, att_dim)`` LeakyReLU is the layer's cost (it took 60% of a
transition step at width 64 on one CPU thread), and 16 features rank parents as well here.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class DenseGATv2(nn.Module):
    """One residual GATv2 layer with ``heads`` attention heads.

    ``forward(h, adjacency)``: ``h`` ``(B, N, F)``, ``adjacency`` ``(B, N, N)`` or ``(N, N)``
    with ``A[i, j]`` the weight of edge ``i -> j`` in [0, 1]; returns ``(B, N, F)``.

    Example:
        >>> layer = DenseGATv2(8, heads=2)
        >>> layer(torch.randn(3, 5, 8), torch.ones(5, 5)).shape
        torch.Size([3, 5, 8])
    """

    def __init__(
        self, features: int, *, heads: int = 2, att_dim: int = 16, slope: float = 0.2
    ) -> None:
        super().__init__()
        if features % heads or att_dim % heads:
            raise ValueError(
                f"features ({features}) and att_dim ({att_dim}) must be divisible by "
                f"heads ({heads})"
            )
        self.heads, self.head_dim, self.att_head = heads, features // heads, att_dim // heads
        self.source = nn.Linear(features, att_dim)
        self.target = nn.Linear(features, att_dim)
        self.value = nn.Linear(features, features)
        self.attn = nn.Parameter(torch.randn(heads, self.att_head) / self.att_head**0.5)
        self.act = nn.LeakyReLU(slope)
        self.update = nn.Sequential(
            nn.Linear(2 * features, features), nn.ReLU(), nn.Linear(features, features)
        )

    def forward(self, h: Tensor, adjacency: Tensor) -> Tensor:
        b, n, f = h.shape
        if adjacency.shape[-2:] != (n, n):
            raise ValueError(
                f"adjacency must be ({n}, {n}) per graph; got {tuple(adjacency.shape)}"
            )
        adj = adjacency.expand(b, n, n) if adjacency.dim() == 2 else adjacency
        att = (b, n, self.heads, self.att_head)
        s, t = self.source(h).view(att), self.target(h).view(att)
        v = self.value(h).view(b, n, self.heads, self.head_dim)
        # e[b, i, j, head] = a . LeakyReLU(W_s h_i + W_t h_j)
        e = (self.act(s[:, :, None] + t[:, None, :]) * self.attn).sum(-1)
        e = e - e.amax(dim=1, keepdim=True).detach()  # stable exp, per target j
        w = adj[..., None] * e.exp()
        alpha = w / (w.sum(dim=1, keepdim=True) + 1e-9)  # normalise over sources i
        message = torch.einsum("bijh,bihd->bjhd", alpha, v).reshape(b, n, f)
        return h + self.update(torch.cat([h, message], dim=-1))
