"""The context module: concepts with a causal structure, switched per context.

Markham et al., "Intervening to Learn and Compose Causally Disentangled Representations"
(arXiv 2507.04754). Concepts are ``n`` blocks of ``d`` coordinates. In context ``c`` (the set
of intervened concepts) the concept prior is the linear SEM

    e = loc_c + scale_c * eps,  eps ~ N(0, I)      exogenous per-concept block layer
    z = e + z A_c   i.e.   z = e (I - A_c)^{-1}     linear causal layer among blocks

where ``loc_c, scale_c`` take concept ``k``'s *interventional* weights if ``k`` is in ``c`` and
its observational weights otherwise, and ``A_c`` is the block matrix of edges (zero diagonal
blocks, so ``I - A`` is the identity on the diagonal blocks) with the column blocks of the
intervened concepts -- their incoming edges -- set to zero. A composition of contexts is just
the union of their sets. The concepts reach the decoder through an expressive block-diagonal
per-concept MLP and a linear map to the decoder's input; concepts are read from the encoder's
latent by a linear map (the module "implicitly inverts linear representations from the
model's encoder").

Our placement of the block MLP *after* the causal layer keeps the concept prior Gaussian, so
the ELBO's KL term is exact and closed form in every context.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch
from torch import Tensor, nn
from torch.distributions import MultivariateNormal

JITTER = 1e-5
"""Added to covariance diagonals before a Cholesky factorisation."""


class ContextModule(nn.Module):
    """Concepts ``(n_concepts, concept_dim)`` between a black-box encoder and decoder.

    Args:
        n_concepts: number of concepts ``n``.
        concept_dim: coordinates ``d`` per concept block.
        latent_dim: width of the backbone's latent (encoder output and decoder input).
        hidden: width of each concept's MLP.
        names: the concepts' names (default ``c0..c{n-1}``), used for contexts and graphs.

    Example:
        >>> m = ContextModule(3, 2, latent_dim=6, names=["a", "b", "c"])
        >>> m.prior(["b"]).sample((4,)).shape, m.to_latent(torch.zeros(4, 6)).shape
        (torch.Size([4, 6]), torch.Size([4, 6]))
    """

    def __init__(
        self,
        n_concepts: int,
        concept_dim: int,
        *,
        latent_dim: int,
        hidden: int = 64,
        names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if n_concepts < 1 or concept_dim < 1 or latent_dim < 1 or hidden < 1:
            raise ValueError(
                "n_concepts, concept_dim, latent_dim and hidden must be >= 1; got "
                f"{n_concepts}, {concept_dim}, {latent_dim}, {hidden}"
            )
        names = [f"c{i}" for i in range(n_concepts)] if names is None else list(names)
        if len(names) != n_concepts or len(set(names)) != n_concepts:
            raise ValueError(f"names must be {n_concepts} distinct names; got {names}")
        n, d = n_concepts, concept_dim
        self.names, self.n, self.d, self.latent_dim = names, n, d, latent_dim
        self.hidden = hidden
        # exogenous layer: observational and interventional affine weights per concept
        self.obs_loc = nn.Parameter(torch.zeros(n, d))
        self.obs_log_scale = nn.Parameter(torch.zeros(n, d))
        self.int_loc = nn.Parameter(torch.zeros(n, d))
        self.int_log_scale = nn.Parameter(torch.zeros(n, d))
        # causal layer: edges[j, k] is the (d, d) block of the edge j -> k
        self.edges = nn.Parameter(torch.zeros(n, n, d, d))
        self.register_buffer("off_diagonal", 1.0 - torch.eye(n))
        # read concepts from the encoder's latent
        self.read = nn.Linear(latent_dim, n * d)
        if latent_dim == n * d:
            nn.init.eye_(self.read.weight)
        nn.init.zeros_(self.read.bias)
        # block-diagonal per-concept MLP, then a linear map to the decoder's input. He init
        # (variance 2 / fan-in, He et al. 2015) keeps the second moment through the ReLU
        # layers and the write map's variance 1 / fan-in then gives the decoder an input of
        # about unit scale for unit-scale concepts, as the base VAE's N(0, I) latent does.
        # (torch's default Linear init gave ~0.3: a low-gain path that slowed end-to-end
        # training, the encoder and decoder learning through it.)
        self.w1 = nn.Parameter(torch.randn(n, d, hidden) * (2.0 / d) ** 0.5)
        self.b1 = nn.Parameter(torch.zeros(n, hidden))
        self.w2 = nn.Parameter(torch.randn(n, hidden, hidden) * (2.0 / hidden) ** 0.5)
        self.b2 = nn.Parameter(torch.zeros(n, hidden))
        self.write = nn.Linear(n * hidden, latent_dim)
        nn.init.normal_(self.write.weight, std=(n * hidden) ** -0.5)
        nn.init.zeros_(self.write.bias)

    def config(self) -> dict[str, object]:
        return {"n_concepts": self.n, "concept_dim": self.d, "latent_dim": self.latent_dim,
                "hidden": self.hidden, "names": list(self.names)}

    # ------------------------------------------------------------------ contexts
    def exogenous_parameters(self) -> list[nn.Parameter]:
        """The exogenous layer's observational and interventional locations and log-scales."""
        return [self.obs_loc, self.obs_log_scale, self.int_loc, self.int_log_scale]

    def mask(self, context: Collection[str]) -> Tensor:
        """Bool ``(n,)``: which concepts ``context`` intervenes on (``ValueError`` if unknown)."""
        for name in context:
            if name not in self.names:
                raise ValueError(f"context concept must be one of {self.names}; got {name!r}")
        return torch.tensor([name in context for name in self.names],
                            device=self.edges.device)

    def exogenous(self, context: Collection[str]) -> tuple[Tensor, Tensor]:
        """``(loc, scale)`` of the exogenous block layer in ``context``, each ``(n * d,)``:
        interventional weights for intervened concepts, observational ones for the rest."""
        m = self.mask(context)[:, None]
        loc = torch.where(m, self.int_loc, self.obs_loc)
        scale = torch.where(m, self.int_log_scale, self.obs_log_scale).exp()
        return loc.reshape(-1), scale.reshape(-1)

    def adjacency(self, context: Collection[str] = ()) -> Tensor:
        """The causal layer's ``(n * d, n * d)`` block matrix ``A_c`` in ``context``: row block
        ``j``, column block ``k`` is the edge ``j -> k``; diagonal blocks and the incoming
        edges (column blocks) of intervened concepts are zero."""
        keep = self.off_diagonal * (~self.mask(context)).to(self.edges.dtype)[None, :]
        blocks = self.edges * keep[:, :, None, None]  # (j, k, d, d)
        return blocks.permute(0, 2, 1, 3).reshape(self.n * self.d, self.n * self.d)

    def propagate(self, e: Tensor, context: Collection[str] = ()) -> Tensor:
        """The causal layer: solve ``z = e + z A_c`` for rows ``e (m, n * d)``; returns ``z``."""
        eye = torch.eye(self.n * self.d, dtype=e.dtype, device=e.device)
        # z (I - A) = e  <=>  (I - A)^T z^T = e^T
        return torch.linalg.solve((eye - self.adjacency(context)).T, e.T).T

    def prior(self, context: Collection[str] = ()) -> MultivariateNormal:
        """The concept prior ``p_c(z) = N(loc M, M^T S^2 M)`` with ``M = (I - A_c)^{-1}`` and
        ``S = diag(scale)`` of :meth:`exogenous`; event ``(n * d,)``."""
        loc, scale = self.exogenous(context)
        eye = torch.eye(self.n * self.d, dtype=loc.dtype, device=loc.device)
        m = torch.linalg.inv(eye - self.adjacency(context))
        factor = m.T * scale[None, :]  # M^T S
        cov = factor @ factor.T + JITTER * eye
        return MultivariateNormal(loc @ m, scale_tril=torch.linalg.cholesky(cov))

    def sample(self, eps: Tensor, context: Collection[str] = ()) -> Tensor:
        """Concepts ``z (m, n * d)`` in ``context`` from exogenous noise ``eps (m, n * d)``."""
        loc, scale = self.exogenous(context)
        return self.propagate(loc + scale * eps, context)

    # ------------------------------------------------------------------ encoder / decoder
    def posterior(self, loc: Tensor, scale: Tensor) -> MultivariateNormal:
        """``q(z | x)``: the encoder's ``N(loc, diag(scale^2))`` over its latent ``(m, L)``
        pushed through the linear read-out, a full-covariance Gaussian over ``(m, n * d)``."""
        r = self.read.weight  # (n d, L)
        mean = loc @ r.T + self.read.bias
        factor = r[None] * scale[:, None, :]  # (m, n d, L)
        eye = torch.eye(r.shape[0], dtype=loc.dtype, device=loc.device)
        cov = factor @ factor.transpose(1, 2) + JITTER * eye
        return MultivariateNormal(mean, scale_tril=torch.linalg.cholesky(cov))

    def to_latent(self, z: Tensor) -> Tensor:
        """Concepts ``(m, n * d)`` -> the decoder's input ``(m, L)``: each concept through its
        own MLP (block diagonal), then one linear map over all blocks."""
        blocks = z.reshape(-1, self.n, self.d)
        h = torch.relu(torch.einsum("mnd,ndh->mnh", blocks, self.w1) + self.b1)
        h = torch.relu(torch.einsum("mnh,nhk->mnk", h, self.w2) + self.b2)
        return self.write(h.reshape(len(z), -1))

    # ------------------------------------------------------------------ the learned graph
    def edge_strength(self) -> Tensor:
        """``(n, n)`` standardised edge strengths ``|A[j, k]|_F * sd(z_j) / sd(z_k)`` under the
        observational prior (scale-free, so comparable across concepts); zero diagonal."""
        with torch.no_grad():
            sd = self.prior(()).covariance_matrix.diagonal().reshape(self.n, self.d)
            sd = sd.sum(1).sqrt()
            norms = self._block_norms()
            return norms * sd[:, None] / sd[None, :]

    def acyclicity(self) -> Tensor:
        """NOTEARS ``h(W) = tr(exp(W)) - n`` on ``W[j, k] = |A[j, k]|_F^2``, zero iff a DAG."""
        w = self.edges.pow(2).sum((2, 3)) * self.off_diagonal
        return torch.linalg.matrix_exp(w).diagonal().sum() - self.n

    def sparsity(self) -> Tensor:
        """Group lasso ``sum_{j != k} |A[j, k]|_F`` on the edge blocks."""
        return self._block_norms().sum()

    def _block_norms(self) -> Tensor:
        # the epsilon keeps the gradient finite at an all-zero block (the initial state)
        return (self.edges.pow(2).sum((2, 3)) + 1e-12).sqrt() * self.off_diagonal
