"""Each mechanism's best held-out weights during a fit, restored where the final ones overfit.

``fit_mle`` returns the final epoch's (averaged) weights, not each node's best held-out epoch:
on 5,000 rows the best-epoch pick took less converged conditioners (see ``fit_mle``). On a
small table the final weights can overfit badly while another node keeps the whole fit
training: on scikit-learn's wine table (178 rows, 12 flows, 18 held-out rows) the held-out
NLL reached 19.4 nats per row at epoch 22 and was 29.1 at the end (epoch 269). So the final
weights stay unless a mechanism's best held-out weights beat them clearly: by
:data:`RESTORE_NATS` nats summed over the held-out rows and :data:`RESTORE_Z` standard errors
of the per-row difference, a margin converging fits on thousands of rows rarely reach (one
node of one of the 120 fits of ``bench/scm_queries.py``'s zoo at seeds 0-19, with the same
figures).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

RESTORE_NATS = 5.0
"""Nats (summed over the held-out rows) by which a mechanism's best held-out weights must beat
its final ones to be restored, besides :data:`RESTORE_Z`."""

RESTORE_Z = 2.0
"""Standard errors of the summed per-row difference needed as well."""


class BestWeights:
    """Per candidate (a node, or ``"node@j"`` for a rival flow): its best held-out per-row
    log-likelihood so far and a copy of the weights that scored it.

    ``params``: the tensors that hold a candidate's weights (whole tensors, or views such as
    one member's rows of a stacked parameter), copied in and out in place."""

    def __init__(self) -> None:
        self.best: dict[str, float] = {}
        self.rows: dict[str, Tensor] = {}
        self.weights: dict[str, list[Tensor]] = {}

    def update(self, key: str, rows: Tensor, params: Sequence[Tensor]) -> None:
        """Record ``params`` if ``rows`` (per-row held-out log-likelihoods ``(n,)``) beat the
        candidate's best mean."""
        score = float(rows.mean())
        if score > self.best.get(key, -math.inf):
            self.best[key] = score
            self.rows[key] = rows.detach().clone()
            self.weights[key] = [p.detach().clone() for p in params]

    def restore_if_overfit(self, key: str, rows: Tensor, params: Sequence[Tensor]) -> bool:
        """Copy the best weights back into ``params`` where they beat the final ones (per-row
        log-likelihoods ``rows``) by :data:`RESTORE_NATS` and :data:`RESTORE_Z`; returns
        whether they were."""
        if key not in self.rows:
            return False
        gain = self.rows[key] - rows.detach()
        n = gain.shape[0]
        se = math.sqrt(n) * float(gain.std()) if n > 1 else math.inf
        if not float(gain.sum()) > max(RESTORE_NATS, RESTORE_Z * se):
            return False
        with torch.no_grad():
            for p, saved in zip(params, self.weights[key], strict=True):
                p.copy_(saved)
        return True
