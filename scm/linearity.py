"""A closed-form check of whether a node depends on its parents other than linear-Gaussian."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

MAX_INTERACTING = 10
"""Context widths up to which the mean check includes the pairwise products of the parents."""


@dataclass(frozen=True)
class LinearityCheck:
    """Likelihood-ratio statistics (nats × 2) of two auxiliary regressions against their BIC
    penalties: ``mean`` for the polynomial terms in the parents (a curved mean function),
    ``scale`` for the squared residuals on the parents (noise whose spread depends on them)."""

    mean: float
    mean_penalty: float
    scale: float
    scale_penalty: float

    @property
    def rejects_linear(self) -> bool:
        """Whether either statistic beats its penalty: the data favour a dependence that a
        linear-Gaussian mechanism cannot express."""
        return self.mean > self.mean_penalty or self.scale > self.scale_penalty


def check_linearity(value: Tensor, context: Tensor) -> LinearityCheck | None:
    """Test a linear-Gaussian mechanism ``value ~ N(A context + b, Σ)`` against two wider
    regressions, each scored by BIC (Schwarz 1978: ``q log n`` for ``q`` extra coefficients):

    - mean: the residuals regressed on the parents' squares, cubes and pairwise products
      (these up to :data:`MAX_INTERACTING` parents), a RESET-style check for a curved mean
      (Ramsey 1969);
    - scale: the squared residuals of a wider regression still (the terms above and a cubic
      spline in each parent, :func:`_spline_terms`) regressed on the parents and their
      squares, the Breusch-Pagan check for noise whose spread depends on the parents (Breusch
      & Pagan 1979; ``n log(SS_total / SS_residual)``, about Koenker's studentised ``n R²``),
      with the curved part of the mean taken out first. Why the spline: the cubic alone
      leaves part of a saturating mean (``tanh``) in the residuals, and their squares then
      vary with the parents: on ``bench/scm_queries.py``'s random10 at 5,000 rows (seeds 0-3)
      the statistic of x3 and x8, homoscedastic by construction, was 34-189 against a penalty
      of 34 with the cubic and 1-9 with the spline; the triangle's heteroscedastic x3 stays
      439-464 (cubic 453-493).

    Why here: held-out log-likelihood over a few hundred rows barely sees a near-linear
    mechanism (a tanh over the data's range gains about a nat over the linear fit), yet a
    counterfactual that moves the parents far reads the curvature directly; the polynomial
    check uses every row and a handful of coefficients, so it sees what the flow's held-out
    score cannot, and at BIC's penalty a linear node passes it with high probability.

    Args:
        value: ``(n, dim)`` the node's rows.
        context: ``(n, context_dim)`` its parents' rows.

    Returns:
        The statistics, or ``None`` when there are too few rows for the wider regression
        (fewer than five per coefficient).
    """
    n = value.shape[0]
    x = _standardized(context.double())
    y = _standardized(value.double())
    p = x.shape[1]
    extra = [x**2, x**3]
    # Pairwise products (interactions) for up to MAX_INTERACTING parents: their count grows as
    # p² / 2, and so would the least-squares cost.
    n_products = p * (p - 1) // 2
    if 0 < n_products and p <= MAX_INTERACTING and n >= 5 * (1 + 3 * p + n_products):
        extra.append(torch.stack([x[:, i] * x[:, j] for i in range(p) for j in range(i + 1, p)],
                                 -1))
    extra_terms = torch.cat(extra, -1)
    base = torch.cat([torch.ones(n, 1, dtype=x.dtype), x], -1)
    if n < 5 * (base.shape[1] + extra_terms.shape[1]):
        return None
    resid = _residuals(base, y)
    wide = _residuals(torch.cat([base, extra_terms], -1), y)
    mean = n * (_logdet_cov(resid) - _logdet_cov(wide))
    # The scale check: the squared residual norms of a still wider mean (a curved mean's
    # misfit left out: what remains of it would pass for spread) on [1, x, x²] against their
    # mean.
    wide_mean = wide
    if n >= 5 * (base.shape[1] + extra_terms.shape[1] + 4 * p):  # 4 spline terms per parent
        wide_mean = _residuals(torch.cat([base, extra_terms, _spline_terms(x)], -1), y)
    spread = (wide_mean**2).sum(-1, keepdim=True)
    spread_wide = _residuals(torch.cat([base, x**2], -1), spread)
    centred = spread - spread.mean()
    # A constant spread (a constant or exactly fitted node) leaves nothing to explain.
    total = _sum_sq(centred)
    scale = n * math.log(total / max(_sum_sq(spread_wide), 1e-300)) if total > 0 else 0.0
    log_n = math.log(n)
    return LinearityCheck(
        mean=float(mean),
        mean_penalty=extra_terms.shape[1] * y.shape[1] * log_n,
        scale=scale,
        scale_penalty=2 * x.shape[1] * log_n,
    )


def _spline_terms(x: Tensor) -> Tensor:
    """``(x_j - q)³₊`` for every column ``j`` of ``x (n, p)`` and each of its quintiles ``q``,
    ``(n, 4 p)``: with ``x``, ``x²`` and ``x³`` a cubic regression spline per parent (the
    truncated power basis, Hastie, Tibshirani & Friedman, *Elements of Statistical Learning*,
    eq. 5.3), which follows a saturating mean such as ``tanh(2 x)`` where a cubic does not."""
    # torch.quantile's linear interpolation between order statistics, written out: it
    # refuses inputs of over 2**24 elements.
    ordered, n = x.sort(0).values, x.shape[0]
    q = []
    for f in (0.2, 0.4, 0.6, 0.8):
        lo = math.floor(f * (n - 1))
        hi, frac = min(lo + 1, n - 1), f * (n - 1) - lo
        q.append(ordered[lo] + frac * (ordered[hi] - ordered[lo]))
    return (x[:, None, :] - torch.stack(q)).clamp_min(0).pow(3).flatten(1)


def _standardized(x: Tensor) -> Tensor:
    return (x - x.mean(0)) / x.std(0).clamp_min(1e-12)


def _residuals(design: Tensor, y: Tensor) -> Tensor:
    """Least-squares residuals of ``y`` on ``design`` (rank-deficient designs allowed)."""
    coef = torch.linalg.lstsq(design, y, driver="gelsd").solution
    return y - design @ coef


def _logdet_cov(resid: Tensor) -> float:
    cov = resid.T @ resid / resid.shape[0]
    return float(torch.linalg.slogdet(cov + 1e-12 * torch.eye(len(cov), dtype=cov.dtype))[1])


def _sum_sq(x: Tensor) -> float:
    return float((x**2).sum())
