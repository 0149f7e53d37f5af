"""Node names: Python identifiers free of the names the Pyro program and torch's module dict
already use."""

from __future__ import annotations

import functools

from pyro.nn import PyroModule
from torch import nn

from scm.frame import identifier_for

RESERVED_NAMES = frozenset({"rows", "_RETURN", "_INPUT"})
"""Node names taken by :meth:`SCM.model`'s plate and by Pyro's trace sites."""


def check_node_name(node: str) -> None:
    """``ValueError`` unless ``node`` is a Python identifier (letters of any script, digits,
    underscore) free for a node: not a name of :data:`RESERVED_NAMES` or an attribute of the
    module dict that holds the mechanisms (``type``, ``values``, ``train``, ...). A name that is
    no identifier (a CSV header such as ``'mean radius'``) gets one suggested
    (:func:`scm.frame.identifier_for`) with the rename that the data's columns then need."""
    if not node.isidentifier():
        name = identifier_for(node)
        if name in RESERVED_NAMES or hasattr(_mechanism_dict(), name):
            name += "_"
        raise ValueError(
            f"node name {node!r} is not an identifier (letters, digits, underscore: it names a "
            f"torch module and a Pyro site); rename it, e.g. to {name!r}, in the graph and in "
            f"the data alike (df = df.rename(columns={{{node!r}: {name!r}}}) or the CSV header)"
        )
    if node in RESERVED_NAMES or hasattr(_mechanism_dict(), node):
        raise ValueError(
            f"node name {node!r} is reserved (a name of the Pyro program or an attribute of "
            f"the torch module that holds the mechanisms); rename it, e.g. {node + '_'!r}"
        )


@functools.cache
def _mechanism_dict() -> nn.Module:
    """An empty module dict of the kind that holds an SCM's mechanisms (a Bayesian SCM's is a
    ``PyroModule``, whose attributes include the plain one's)."""
    return PyroModule[nn.ModuleDict]()
