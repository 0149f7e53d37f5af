"""Categorical mechanism: a discrete node ``x in {0, ..., k-1}`` with MLP logits of its parents."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pyro.distributions as dist
import torch
from torch import Tensor, nn

from scm.mechanisms.additive import mlp
from scm.mechanisms.base import Mechanism


class CategoricalMechanism(Mechanism):
    """``x ~ Categorical(softmax(mlp(c)))``, stored as a float column of category indices.

    Not invertible: many noise values give the same category, so the noise cannot be
    abducted and counterfactuals that must recompute this node raise ``ValueError``.
    """

    kind: ClassVar[str] = "categorical"
    invertible: ClassVar[bool] = False

    def __init__(
        self, dim: int, context_dim: int, *, categories: int = 2, hidden: tuple[int, ...] = (32,)
    ) -> None:
        if dim != 1:
            raise ValueError(f"a categorical node has dimension 1, got {dim}")
        if categories < 2:
            raise ValueError(f"categories must be >= 2, got {categories}")
        super().__init__(dim, context_dim)
        self.categories, self.hidden = categories, tuple(hidden)
        self.net = mlp(context_dim, categories, self.hidden) if context_dim else None
        self.logits = nn.Parameter(torch.zeros(categories))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "categories": self.categories, "hidden": list(self.hidden)}

    def bad_codes(self, value: Any) -> list[float]:
        """The distinct values of ``value`` (number, array or tensor; NaN ignored) that are not
        codes ``0..categories-1``, sorted."""
        # a copy: a read-only array (df[col].to_numpy()) made torch warn
        v = torch.as_tensor(np.asarray(value, dtype=np.float64).copy()).flatten()
        v = v[~torch.isnan(v)]
        return sorted(set(v[(v < 0) | (v >= self.categories) | (v % 1 != 0)].tolist()))

    def standardize(self, value: Tensor, context: Tensor | None) -> None:
        if bad := self.bad_codes(value):
            raise ValueError(
                f"a categorical node takes values 0..{self.categories - 1}; got {bad[:10]}"
            )
        super().standardize(torch.zeros_like(value), context)  # the output is not rescaled
        # Start from the maximum-likelihood marginal: the logits are the log frequencies (half
        # a count added, so an absent category stays finite), which is a root's fit itself and,
        # as the MLP's last layer starts at zero, a child's starting point. From zero logits, a
        # 400-step fit sampled a code of frequency .2 (log-odds -.9) at .234.
        counts = torch.bincount(value.flatten().long(), minlength=self.categories).to(value)
        with torch.no_grad():
            self.logits.copy_(torch.log((counts + 0.5) / (counts.sum() + 0.5 * self.categories)))

    def forward(self, context: Tensor | None) -> dist.Distribution:
        z = self._standardized_context(context)
        logits = self.logits if z is None or self.net is None else self.net(z) + self.logits
        return dist.Categorical(logits=logits.unsqueeze(-2)).to_event(1)


def check_category_codes(
    mechanisms: Mapping[str, Any], values: Mapping[str, Any], what: str
) -> None:
    """Raise ``ValueError`` naming the node and ``what`` (``"data"``, ``"intervention"``...)
    unless every non-NaN value given to a categorical node is one of its codes ``0..k-1``.

    ``values``: ``{node: number | array | tensor | callable}`` (callables, soft interventions,
    are not checked). Without it a child's conditioner would read a code it never saw (``do(t
    = 5)`` on codes 0..2 extrapolated silently) and a log-density would fail on an index.
    For training data (``what="data"``) the message says what to do: declare
    the node's number of codes, recode the column, or give a continuous node another
    mechanism (:func:`_remedy`)."""
    for node, value in values.items():
        mech = mechanisms[node] if node in mechanisms else None
        if not isinstance(mech, CategoricalMechanism) or callable(value):
            continue
        if bad := mech.bad_codes(value):
            shown = ", ".join(f"{b:g}" for b in bad[:5])
            # only training data ("data") say how to declare the node: rows to score or
            # factual rows are judged by the fitted model's codes
            remedy = "; " + _remedy(node, mech, value) if what == "data" else ""
            raise ValueError(f"{what}: node {node!r} is categorical with codes "
                             f"0..{mech.categories - 1}; got {shown}{remedy}")


def _remedy(node: str, mech: CategoricalMechanism, value: Any) -> str:
    """What to do about a column ``value`` of codes outside ``mech``'s: declare ``k``
    categories when its values are ``0..k-1``, recode a few other integers as ``0..k-1``, or
    (many or fractional values) give the node a continuous mechanism. The name
    ``"categorical"`` counts the codes 0..k-1 at fit time
    (:func:`scm.auto.size_declared_categoricals`); a mechanism object keeps its own count."""
    from scm.auto import MAX_AUTO_CATEGORIES

    v = np.asarray(value, dtype=np.float64).ravel()
    levels = np.unique(v[~np.isnan(v)])
    k = len(levels)
    continuous = ("if it is not categorical give it another mechanism ('flow', 'linear', "
                  "'additive' or 'auto')")
    if np.array_equal(levels, np.arange(k)):
        other = "" if k <= MAX_AUTO_CATEGORIES else f"; {continuous}"
        return (f"declare its {k} categories in mechanisms: {{{node!r}: 'categorical'}} (by "
                f"name, the categories are counted from the data) or {{{node!r}: "
                f"CategoricalMechanism(1, {mech.context_dim}, categories={k})}} (from "
                f"scm.mechanisms import CategoricalMechanism){other}")
    if 2 <= k <= MAX_AUTO_CATEGORIES and np.all(levels % 1 == 0):
        return (f"recode its {k} values as 0..{k - 1} (pd.factorize(df[{node!r}], sort=True)[0])"
                f" and declare CategoricalMechanism(1, {mech.context_dim}, categories={k})")
    return f"it takes {k} distinct value(s), so {continuous}"
