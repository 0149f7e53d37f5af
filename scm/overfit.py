"""Overfitting on small tables: each node stopped on its own (:class:`NodeStopping`, under
:data:`NODE_STOPPING_ROWS` held-out rows), and each mechanism's best held-out weights during a
fit, restored where the final ones clearly overfit (:class:`BestWeights`).

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


NODE_STOPPING_ROWS = 200
"""Below this many early-stopping rows (tables under ~2,000 rows at the default 10%),
``fit_mle`` stops each node on its own (:class:`NodeStopping`); from it on, one rule for the
whole fit. Per node minus whole fit at 1,000 / 1,500 / 2,000 rows on a 10-node random DAG
(Gaussian and Laplace noise, data and fit seeds 3-8): declared flows'
counterfactual RMSE .157 / .116 / .099 vs .196 / .146 / .119 std, test log-likelihood
+0.143 / +0.015 / +0.013 per row; ``"auto"`` .126 / .102 / .094 vs .138 / .096 / .096,
+0.005 / -0.017 / +0.009. On the zoo at 1,000 and 2,000 rows (as :class:`NodeStopping`'s
measure): declared flows +0.024 / -0.001, ``"auto"`` -0.005 / -0.007, the pendulum worse in
all 8 of its fits (its conditioners converge by small gains); at 5,000 rows (an earlier
variant that kept the weights at the stop) ``bench/scm_queries.py``'s random20 MMD² worse on
each of seeds 0-2 (1.09 / 1.62 / 1.05e-4 -> 1.31 / 1.68 / 1.11e-4)."""


class NodeStopping:
    """Early stopping per node, for fits with few held-out rows: a node that has not gained
    ``MIN_GAIN`` nats of held-out log-likelihood for ``patience`` epochs is stopped, and each
    of its candidates keeps the better, on the held-out rows, of its weights at the stop and
    those of the node's last progress (a copy taken when it progressed).

    The whole-fit rule (train while any node progresses, keep the final weights) lets one
    node's gains, which on a few held-out rows are often noise, keep every flow training
    while the others overfit. Test log-likelihood per row, 5,000 fresh rows of the zoo's
    triangle, random10 and pendulum (seeds 0, 1), this rule minus the whole-fit one, at 150 /
    300 / 500 training rows: declared flows +0.62 / +0.20 / +0.056 (14 of 18 fits better),
    ``"auto"`` +0.021 / +0.003 / +0.013 (10 of 18). scikit-learn's wine, breast-cancer and
    diabetes tables (178, 569, 442 rows; 13, 10, 9 columns; DirectLiNGAM's DAG; 5-fold
    held-out log-likelihood per row), whole-fit -> this rule: declared flows -356.3 -> -21.56,
    6.25 -> 7.91, -33.13 -> -31.15 (linear: -19.58, 5.26, -32.89); ``"auto"`` -19.54 ->
    -19.36, 7.98 -> 8.14, -29.51 -> -29.63. Keeping the weights of the last progress always
    (not the better of the two) did as well on these tables (-21.38, 7.93, -31.08) but cost
    the pendulum, whose conditioners converge by gains too small to count as progress
    (-0.01 to -0.13 per row in 11 of its 12 fits at 300 to 2,000 rows, the bound lifted);
    keeping those at the stop always left wine
    at -39.2.

    ``candidates``: each node's candidate keys (its own mechanism, ``"node@j"`` rivals);
    ``weights``: each candidate's tensors (:func:`~scm.fit.candidate_weights`), copied in and
    out in place."""

    def __init__(
        self,
        candidates: dict[str, list[str]],
        weights: dict[str, list[Tensor]],
        patience: int,
    ) -> None:
        self.candidates, self.weights, self.patience = candidates, weights, patience
        self.stale = dict.fromkeys(candidates, 0)
        self.saved: dict[str, dict[str, tuple[float, list[Tensor]]]] = {}
        self.stopped: set[str] = set()

    def update(self, progressed: Sequence[str], nll: dict[str, float]) -> None:
        """One epoch, with the evaluated weights live and the candidates' held-out NLLs
        ``nll`` (nats per row): copy the weights of the ``progressed`` nodes, count the others
        stale, and stop those stale for ``patience`` epochs, keeping their weights where they
        score better than the copy."""
        for k in progressed:
            self.saved[k] = {c: (nll[c], self._copy(c)) for c in self.candidates[k] if c in nll}
        for k in self.stale:
            self.stale[k] = 0 if k in progressed else self.stale[k] + 1
            if self.stale[k] < self.patience or k in self.stopped:
                continue
            self.stopped.add(k)
            saved = self.saved.setdefault(k, {})
            for c in self.candidates[k]:
                if c in nll and (c not in saved or nll[c] <= saved[c][0]):
                    saved[c] = (nll[c], self._copy(c))

    def restore(self) -> list[str]:
        """Copy every stopped node's kept weights back; returns those nodes."""
        with torch.no_grad():
            for k in self.stopped:
                for c, (_, saved) in self.saved.get(k, {}).items():
                    for p, value in zip(self.weights[c], saved, strict=True):
                        p.copy_(value)
        return sorted(self.stopped)

    def _copy(self, candidate: str) -> list[Tensor]:
        return [p.detach().clone() for p in self.weights[candidate]]
