"""Parents that the data cannot tell apart: a column that is (almost) exactly a linear function
of its co-parents (a duplicated column, a total beside its parts, a unit conversion).

A node's mechanism then sees one direction of its parents' space only, so its response to an
intervention that moves one such parent without the others is not identified by the data: a
fitted model answers it from its own form. With x2 = 2 x1 and y = x1 + noise, linear and
``"auto"`` fits answered E[y | do(x2 = 1)] - E[y | do(x2 = 0)] = .27 against 0 (a flow .34),
without a word. ``fit`` now warns, naming the parents.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

COLLINEAR_R2 = 0.999
"""The share of a parent column's variance that its co-parents' columns explain linearly
(R² of the least-squares fit) from which the parents are called collinear."""


def collinear_columns(columns: Mapping[str, Tensor]) -> dict[str, float]:
    """``{label: R²}`` for each of ``columns`` (``{label: (n,)}``) that the others explain
    linearly with R² of :data:`COLLINEAR_R2` or more; constant columns are left out (they
    draw a warning of their own)."""
    labels = [k for k, v in columns.items() if bool(v.max() > v.min())]
    if len(labels) < 2:
        return {}
    z = torch.stack([columns[k].double() for k in labels], -1)
    z = (z - z.mean(0)) / z.std(0)
    # A column's R² on the others is 1 - 1 / (C^-1)_jj for the correlation matrix C, and
    # (C^-1)_jj <= 1 / (C's smallest eigenvalue): one small eigen-solve rules most columns out.
    smallest = float(torch.linalg.eigvalsh(z.T @ z / (len(z) - 1))[0])
    if smallest > 1.0 - COLLINEAR_R2:
        return {}
    out = {}
    for j, label in enumerate(labels):
        others = torch.cat([z[:, :j], z[:, j + 1:]], -1)
        fit = torch.linalg.lstsq(others, z[:, j:j + 1], driver="gelsd").solution
        residual = z[:, j:j + 1] - others @ fit
        r2 = 1.0 - float(residual.square().mean() / z[:, j].square().mean())
        if r2 >= COLLINEAR_R2:
            out[label] = r2
    return out


def warn_if_collinear_parents(
    node: str,
    parents: Sequence[str],
    x: Mapping[str, Tensor],
    dims: Mapping[str, int],
    stacklevel: int,
) -> None:
    """Warn when some of ``node``'s parents' columns in rows ``x`` (``{node: (n, dim)}``) are
    collinear (:func:`collinear_columns`), naming them."""
    columns = {(p if dims[p] == 1 else f"{p}[{i}]"): x[p][:, i]
               for p in parents for i in range(dims[p])}
    if len(columns) < 2:
        return
    found = collinear_columns(columns)
    if not found:
        return
    names = ", ".join(found)
    warnings.warn(
        f"node {node!r}: its parents' columns {names} are collinear in the data (each "
        f"explained linearly by the others, R² {min(found.values()):.4f} or more): the data "
        f"cannot separate their effects on {node!r}, so an intervention that moves one without "
        "the others is answered by the mechanism's form, not the data; drop or combine "
        "duplicated or derived columns",
        UserWarning, stacklevel=stacklevel)
