"""The causal-transition layer over VQ code slots (Gendron, Witbrock, Dobbie, IJCAI 2023).

Nodes are the ``N`` code slots of an image. For an action ``a`` (0 is "no action"):

1. **Intervention mask** ``m_a in {0, 1}^N``: which slots the action touches, a per-action
   Bernoulli with learned logits sampled by the hard (straight-through) Gumbel-softmax trick
   (Jang et al., 2017) in training and thresholded at 1/2 in evaluation; ``m_0 = 0``.
   Touched slots get ``h_i + MLP([h_i, emb(a)])``.
2. **Adjacency** ``A_a in {0, 1}^{N x N}``: edge ``i -> j`` with probability
   ``sigmoid(MLP([q_i, q_j, r_a]))`` from learned slot embeddings ``q`` and one edge-set
   embedding ``r_a`` per action plus one for "no action" (a pair-wise MLP per set, weights
   shared), sampled with straight-through Gumbel, no self-loops.
3. **Propagation**: ``layers`` :class:`DenseGATv2` layers over ``A_a`` carry the intervention
   to the other slots.
4. **Read-out**: logits over each slot's codebook, plus a learned bonus on the slot's current
   code (``copy``), so an untouched slot keeps its code by default.

The model is trained by the cross-entropy of the logits against the codes of ``y``; the sparsity
terms are the mean mask probability and the mean edge probability.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .gatv2 import DenseGATv2


def straight_through_bernoulli(logits: Tensor, *, tau: float, hard_eval: bool) -> Tensor:
    """A 0/1 sample of Bernoulli(sigmoid(logits)) with the gradient of its relaxation.

    Training (``hard_eval=False``): binary Gumbel-softmax, ``sigmoid((logits + L) / tau)`` with
    logistic noise ``L``, rounded with a straight-through estimator. Evaluation
    (``hard_eval=True``): ``logits > 0``, no noise. Same shape as ``logits``.
    """
    if hard_eval:
        return (logits > 0).to(logits.dtype)
    u = torch.rand_like(logits).clamp(1e-6, 1 - 1e-6)
    soft = torch.sigmoid((logits + u.log() - (-u).log1p()) / tau)
    return (soft > 0.5).to(soft.dtype) - soft.detach() + soft


class CausalTransition(nn.Module):
    """Predict the post-action codes of ``N`` slots from the pre-action codes and an action.

    Args:
        n_nodes: code slots ``N`` (``G * h * w``).
        n_codebooks: ``G``; slot ``i`` uses codebook ``i // (N / G)``.
        n_codes: codes per codebook ``K``.
        code_dim: code vector size ``d``.
        n_actions: real actions ``A`` (the layer also holds "no action", index 0).
        hidden: node feature width; layers, heads: the GATv2 stack.
        tau: Gumbel temperature.

    Example:
        >>> t = CausalTransition(8, 2, 16, 4, 3)
        >>> t(torch.randn(5, 8, 4), torch.randint(16, (5, 8)), torch.randint(4, (5,))).shape
        torch.Size([5, 8, 16])
    """

    def __init__(
        self,
        n_nodes: int,
        n_codebooks: int,
        n_codes: int,
        code_dim: int,
        n_actions: int,
        *,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 2,
        edge_dim: int = 16,
        tau: float = 1.0,
        mask_init: float = 0.0,
        edge_init: float = -1.0,
    ) -> None:
        super().__init__()
        if n_nodes % n_codebooks:
            raise ValueError(f"n_nodes ({n_nodes}) must be a multiple of n_codebooks")
        self.n_nodes, self.n_codebooks, self.n_codes = n_nodes, n_codebooks, n_codes
        self.n_actions, self.tau = n_actions, tau
        self.register_buffer("group", torch.arange(n_nodes) // (n_nodes // n_codebooks))
        self.code_in = nn.Linear(code_dim, hidden)
        self.slot = nn.Parameter(0.1 * torch.randn(n_nodes, hidden))
        self.action_emb = nn.Embedding(n_actions + 1, hidden)
        self.mask_logits = nn.Parameter(torch.full((n_actions + 1, n_nodes), float(mask_init)))
        self.intervene = nn.Sequential(
            nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)
        )
        self.edge_nodes = nn.Parameter(torch.randn(n_nodes, edge_dim))
        self.edge_sets = nn.Embedding(n_actions + 1, edge_dim)
        self.edge_mlp = nn.Sequential(
            nn.Linear(3 * edge_dim, 32), nn.ReLU(), nn.Linear(32, 1)
        )
        nn.init.constant_(self.edge_mlp[-1].bias, float(edge_init))
        self.gnn = nn.ModuleList(DenseGATv2(hidden, heads=heads) for _ in range(layers))
        self.head = nn.Parameter(torch.randn(n_codebooks, hidden, n_codes) / hidden**0.5)
        self.head_bias = nn.Parameter(torch.zeros(n_codebooks, n_codes))
        self.copy = nn.Parameter(torch.tensor(3.0))

    def mask_probs(self) -> Tensor:
        """Intervention probabilities ``(A + 1, N)``; row 0 ("no action") is zero."""
        p = torch.sigmoid(self.mask_logits)
        return torch.cat([torch.zeros_like(p[:1]), p[1:]])

    def edge_logits(self) -> Tensor:
        """Edge logits ``(A + 1, N, N)`` (``[a, i, j]``: edge ``i -> j`` under action ``a``);
        the diagonal is ``-inf`` (no self-loops)."""
        n, s = self.n_nodes, self.n_actions + 1
        q = self.edge_nodes
        pairs = torch.cat([q[:, None].expand(n, n, -1), q[None, :].expand(n, n, -1)], -1)
        sets = self.edge_sets.weight[:, None, None].expand(s, n, n, -1)
        logits = self.edge_mlp(torch.cat([pairs.expand(s, n, n, -1), sets], -1))[..., 0]
        eye = torch.eye(n, dtype=torch.bool, device=logits.device)
        return logits.masked_fill(eye, float("-inf"))

    def edge_probs(self) -> Tensor:
        """Edge probabilities ``(A + 1, N, N)``."""
        return torch.sigmoid(self.edge_logits())

    def sample_structure(self) -> tuple[Tensor, Tensor]:
        """``(masks (A + 1, N), adjacency (A + 1, N, N))``: 0/1 with straight-through gradients
        in training mode, thresholded at 1/2 in eval mode."""
        hard = not self.training
        masks = straight_through_bernoulli(self.mask_logits, tau=self.tau, hard_eval=hard)
        masks = torch.cat([torch.zeros_like(masks[:1]), masks[1:]])
        logits = self.edge_logits()
        finite = torch.where(torch.isinf(logits), torch.full_like(logits, -30.0), logits)
        adj = straight_through_bernoulli(finite, tau=self.tau, hard_eval=hard)
        return masks, adj * (~torch.eye(self.n_nodes, dtype=torch.bool, device=adj.device))

    def forward(self, vectors: Tensor, codes: Tensor, actions: Tensor) -> Tensor:
        """Logits ``(B, N, K)`` of the post-action codes.

        Args:
            vectors: code vectors of the pre-action codes, ``(B, N, d)``.
            codes: the pre-action codes ``(B, N)``, int64.
            actions: ``(B,)`` int64 in ``0..A`` (0: no action).
        """
        if actions.min() < 0 or actions.max() > self.n_actions:
            raise ValueError(f"actions must lie in 0..{self.n_actions}")
        masks, adj = self.sample_structure()
        m, a = masks[actions], adj[actions]  # (B, N), (B, N, N)
        h = self.code_in(vectors) + self.slot
        act = self.action_emb(actions)[:, None, :].expand_as(h)
        h = h + m[..., None] * self.intervene(torch.cat([h, act], -1))
        for layer in self.gnn:
            h = layer(h, a)
        logits = torch.einsum("bnh,nhk->bnk", h, self.head[self.group]) + self.head_bias[self.group]
        return logits + self.copy * nn.functional.one_hot(codes, self.n_codes).to(logits.dtype)
