"""Bayesian SCMs: posterior inference (NUTS, SVI), posterior queries and ArviZ diagnostics.

``SCM(graph, mechanisms="bayes-linear").fit(df, inference="nuts")`` stores a
:class:`Posterior`; ``do``, ``ate`` and ``counterfactual`` then answer with :class:`Draws`
(a ``chain x draw`` dimension), and :func:`to_inference_data`, :func:`summary`,
:func:`plot_ppc` and :func:`compare_graphs` bring in ArviZ.
"""

from scm.bayes.arviz import plot_ppc, posterior_dataset, summary, to_inference_data
from scm.bayes.compare import compare_graphs
from scm.bayes.draws import Draws
from scm.bayes.fit import NutsTooLargeError, fit_bayes
from scm.bayes.posterior import Posterior

__all__ = [
    "Draws",
    "NutsTooLargeError",
    "Posterior",
    "compare_graphs",
    "fit_bayes",
    "plot_ppc",
    "posterior_dataset",
    "summary",
    "to_inference_data",
]
