"""A context module's linear part set from the encoder's latent moments in each context.

Squires et al., "Linear causal disentanglement via interventions" (ICML 2023): when the
observed ``h = G z`` mixes the latents ``z`` of a linear Gaussian SEM linearly, single-node
interventions identify the read-out ``H = G^+`` (``z = H h``) from the moments of ``h`` per
context. We use the mean-shift form of that identity for a *hard* intervention on concept
``k`` that moves its mean: the intervened SEM's precision ``Theta_k = B_k^T Omega_k^{-1} B_k``
has ``B_k``'s row ``k`` equal to ``e_k`` (incoming edges cut), and its mean is
``B_k^{-1} m_k e_k``, so

    Theta_k (mu_k - mu_0) = (m_k / omega_k) e_k          in latent coordinates,
    Sigma_k^+ (mean_k(h) - mean_0(h)) = (m_k / omega_k) H^T e_k        in observed ones,

i.e. concept ``k``'s read-out row is, up to scale, the interventional precision times the
mean shift (a Fisher discriminant direction of the context against the observational one).
Concepts that are never intervened on are not identified: their slots get the remaining
directions. Gradient training from a random read-out does not find the aligned basis
(``bench/context_identifiability.py``), so the trainer sets it from these moments once.

The identity is exact for a linear encoder of a linear Gaussian SEM; a conv encoder of images
is neither, so on images this is a principled starting basis, not a guarantee.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .module import ContextModule

RIDGE = 1e-4
"""Eigenvalue floor of the whitened covariances, relative to their largest eigenvalue."""


def context_moments(loc: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
    """Mean ``(L,)`` and covariance ``(L, L)`` of the aggregate posterior ``mean_x q(h | x)``
    of rows ``loc, scale (m, L)``: ``cov(loc) + diag(mean scale^2)``. The posterior noise
    keeps a collapsed latent (``loc`` constant) at its prior variance instead of zero."""
    mean = loc.mean(0)
    centred = loc - mean
    cov = centred.T @ centred / max(len(loc) - 1, 1)
    return mean, cov + torch.diag(scale.pow(2).mean(0))


def _inverse_sqrt(cov: Tensor) -> Tensor:
    values, vectors = torch.linalg.eigh(cov)
    values = values.clamp_min(RIDGE * values.max())
    return vectors @ torch.diag(values.rsqrt()) @ vectors.T


def interventional_readout(
    loc: Tensor,
    scale: Tensor,
    contexts: Sequence[Sequence[str]],
    names: Sequence[str],
    concept_dim: int,
) -> tuple[Tensor, Tensor, list[int]]:
    """The read-out ``z = W h + b`` of ``len(names)`` concept blocks of ``concept_dim`` rows.

    Args:
        loc, scale: the encoder's posterior ``(m, L)`` of ``m`` training rows, float.
        contexts: each row's context (the intervened concepts; ``()`` observational).
        names: the concepts, in block order.
        concept_dim: rows per block ``d``.

    Returns:
        ``(W (n d, L), b (n d,), identified)``: row ``k d`` of every concept ``k`` in
        ``identified`` (those with a single-intervention context) is ``Sigma_k^{-1}`` times the
        mean shift; every other row is an orthonormal direction (in the observational
        whitening) uncorrelated with those, richest in encoder signal first. All rows have
        unit observational variance and zero observational mean; the sign of an identified
        row makes its concept's interventional mean positive.
    """
    n, d, width = len(names), concept_dim, loc.shape[1]
    if n * d > width:
        raise ValueError(f"n_concepts * concept_dim ({n * d}) must be at most the latent width "
                         f"({width}) for an invertible read-out")
    if len(contexts) != len(loc):
        raise ValueError(f"contexts must give one context per row ({len(loc)}); got "
                         f"{len(contexts)}")
    keys = [frozenset(c) for c in contexts]
    dev = loc.device
    observational = torch.tensor([not k for k in keys], device=dev)
    if int(observational.sum()) < 2:
        raise ValueError("the read-out needs at least 2 observational rows (context ())")
    mean0, cov0 = context_moments(loc[observational], scale[observational])
    white = _inverse_sqrt(cov0)  # u = (h - mean0) white: unit observational covariance

    rows: dict[int, Tensor] = {}
    for k, name in enumerate(names):
        mine = torch.tensor([key == {name} for key in keys], device=dev)
        if int(mine.sum()) < 2:
            continue
        mean_k, cov_k = context_moments(loc[mine], scale[mine])
        shift = (mean_k - mean0) @ white
        cov_u = white @ cov_k @ white
        direction = torch.linalg.solve(cov_u + RIDGE * torch.eye(width, device=dev), shift)
        rows[k] = direction / direction.norm()
    identified = sorted(rows)

    # the rest: an orthonormal basis of the complement of the identified rows, ordered by the
    # share of the observational variance that is signal (cov(loc)), not posterior noise
    projector = torch.eye(width, device=dev)
    if identified:
        basis = torch.stack([rows[k] for k in identified])
        projector = projector - torch.linalg.pinv(basis) @ basis
    centred = loc[observational] - mean0
    signal = white @ (centred.T @ centred / (len(centred) - 1)) @ white
    complement = torch.linalg.eigh(projector).eigenvectors[:, len(identified):]  # eigenvalue 1
    values, vectors = torch.linalg.eigh(complement.T @ signal @ complement)
    free = (complement @ vectors[:, values.argsort(descending=True)]).T
    slots = [(r, k) for r in range(d) for k in range(n) if not (r == 0 and k in rows)]
    weight_u = torch.zeros(n * d, width, device=dev)
    for k in identified:
        weight_u[k * d] = rows[k]
    for (r, k), vector in zip(slots, free, strict=False):
        weight_u[k * d + r] = vector
    weight = weight_u @ white.T
    return weight, -weight @ mean0, identified


@torch.no_grad()
def init_from_moments(
    module: ContextModule, loc: Tensor, scale: Tensor, contexts: Sequence[Sequence[str]]
) -> list[int]:
    """Set ``module``'s read-out from :func:`interventional_readout`, its exogenous layer to
    the concepts' moments (observational: zero mean, unit scale; interventional: the mean and
    scale of concept ``k`` in context ``{k}``) and its edges to zero; returns the identified
    concepts' indices."""
    loc, scale = loc.float().cpu(), scale.float().cpu()
    weight, bias, identified = interventional_readout(loc, scale, contexts, module.names,
                                                      module.d)
    device = module.read.weight.device
    module.read.weight.copy_(weight.to(device))
    module.read.bias.copy_(bias.to(device))
    module.edges.zero_()
    module.obs_loc.zero_()
    module.obs_log_scale.zero_()
    module.int_loc.zero_()
    module.int_log_scale.zero_()
    for k in identified:
        mine = torch.tensor([frozenset(c) == {module.names[k]} for c in contexts])
        mean, cov = context_moments(loc[mine], scale[mine])
        block = weight[k * module.d:(k + 1) * module.d]
        module.int_loc[k] = (block @ mean + bias[k * module.d:(k + 1) * module.d]).to(device)
        variance = (block @ cov @ block.T).diagonal()
        module.int_log_scale[k] = (0.5 * variance.log()).to(device)
    return identified
