"""Structure learning from tables: causal-learn's methods behind one typed entry point.

>>> from scm.discovery import discover, compare
>>> from scm import zoo
>>> found = discover(zoo.chain().sample(2000), "pc", alpha=0.01)
>>> found.undirected, compare(found, zoo.chain()).shd_cpdag
([('x1', 'x2'), ('x2', 'x3')], 0)
"""

from scm.discovery.bootstrap import bootstrap
from scm.discovery.command import run_discover
from scm.discovery.compare import Comparison, compare, cpdag_of
from scm.discovery.discover import discover, method_options
from scm.discovery.edges import Edge, Mark
from scm.discovery.graph import DiscoveredGraph
from scm.discovery.knowledge import Knowledge
from scm.discovery.methods import Method, Score, Test

__all__ = [
    "Comparison",
    "DiscoveredGraph",
    "Edge",
    "Knowledge",
    "Mark",
    "Method",
    "Score",
    "Test",
    "bootstrap",
    "compare",
    "cpdag_of",
    "discover",
    "method_options",
    "run_discover",
]
