"""Queries on mechanisms that were built by name and never fitted.

``SCM(graph, "flow")`` builds mechanisms with random initial weights; until ``fit`` (or
``SCM.load``) their answers are noise, and nothing said so (a query on an unfitted flow SCM
answered E[x3 | do(x1=1)] from initial weights without a word). Mechanism objects a user hands
in (hand-set linear mechanisms, say) are the user's model and are left alone, as are Bayesian
mechanisms, whose unfitted answers are prior predictive ones.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scm.scm import SCM


def warn_if_untrained(scm: SCM, query: str, stacklevel: int = 3) -> None:
    """Warn (``UserWarning``) naming the nodes whose mechanism is still the one ``SCM`` built
    by name and that no ``fit`` has trained (``query``: the method's name)."""
    nodes = [k for k, m in scm.untrained.items() if scm.mechanisms[k] is m]
    if nodes:
        warnings.warn(
            f"{query}: the mechanisms of {', '.join(nodes)} were built by name and never "
            "fitted, so the answer comes from their initial weights; call fit(df) first (or "
            "SCM.load a fitted model)",
            UserWarning, stacklevel=stacklevel)
