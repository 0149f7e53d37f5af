"""Which ``"auto"`` nodes are linear-Gaussian before any flow trains.

``"auto"`` trains a flow for every continuous node and afterwards swaps in the closed-form
linear-Gaussian fit where the flow does not earn its place
(:func:`~scm.auto.select_auto_mechanism`): where the linearity check sees a line with a
constant spread, the flow must beat the line by :data:`~scm.auto.SHAPE_GAIN` nats on the
selection rows, and it can do that only by the shape of the noise. When the residuals of the
line are Gaussian too, the flow's expected gain over the line is the residuals' negentropy
(their KL divergence from the Gaussian of the same variance) per row, and a flow that trains
to lose is time spent for nothing: on the linear SCMs of Javaloy et al., "Causal normalizing
flows" (NeurIPS 2023; :mod:`scm.zoo_causal_nf`), at 5,000 rows, the 5-node chain's
``"auto"`` fit took 13 s of flows (357 epochs; the near-deterministic ``x2 = 10 x1 - u2``
keeps a flow improving) and then chose linear at every node; now 0.26 s, the same model.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from scm.auto import SHAPE_GAIN, linear_mle
from scm.linearity import LinearityCheck, check_linearity
from scm.mechanisms.flow import FlowMechanism

if TYPE_CHECKING:
    from scm.scm import SCM

log = logging.getLogger(__name__)

GAUSSIAN_NATS = SHAPE_GAIN / 3
"""The most a flow may be expected to gain over the line on the selection rows (negentropy per
row of the line's training residuals times those rows) for a linear, homoscedastic ``"auto"``
node to take the line before training: a third of the :data:`~scm.auto.SHAPE_GAIN` it would
need to win. Laplace noise (negentropy .072 nats per row) on 500 selection rows expects 36
nats, uniform (.176) 88: their flows train as before."""

# Hyvärinen's approximation of negentropy with the contrasts y exp(-y²/2) (odd) and
# exp(-y²/2) (even) (Hyvärinen, "New approximations of differential entropy for independent
# component analysis and projection pursuit", NIPS 1998; Hyvärinen, Karhunen & Oja,
# *Independent Component Analysis*, 2001, eq. 5.47).
_K1 = 36.0 / (8.0 * math.sqrt(3.0) - 9.0)
_K2 = 24.0 / (16.0 * math.sqrt(3.0) - 27.0)


def negentropy(resid: Tensor) -> float:
    """Estimated negentropy of the sample ``resid (n,)`` in nats: its KL divergence from the
    Gaussian of its mean and variance, the log-likelihood per row that the best density of
    its shape gains over that Gaussian. The larger of two approximations: the moment one,
    ``skew² / 12 + excess kurtosis² / 48`` (Jones & Sibson 1987), and Hyvärinen's (1998),
    which sees shapes the first four moments miss and is not driven by a few outliers."""
    y = resid.double()
    y = (y - y.mean()) / y.std().clamp_min(1e-300)
    moments = (y**3).mean() ** 2 / 12 + ((y**4).mean() - 3) ** 2 / 48
    g = torch.exp(-(y**2) / 2)
    hyvarinen = _K1 * (y * g).mean() ** 2 + _K2 * (g.mean() - math.sqrt(0.5)) ** 2
    return float(torch.maximum(moments, hyvarinen))


def choose_linear_before_training(
    scm: SCM,
    train: dict[str, Tensor],
    n_choose: int,
    checks: Mapping[str, LinearityCheck | None] | None = None,
) -> list[str]:
    """Give every scalar ``"auto"`` node still holding a flow a closed-form linear-Gaussian
    mechanism (fitted on ``train``, ``{name: (n, width)}``) when the linearity check on
    ``train`` sees a line with a constant spread (a root: nothing to check) and the line's
    residuals are Gaussian enough that a flow could expect at most :data:`GAUSSIAN_NATS`
    over it on the ``n_choose`` selection rows (:func:`negentropy` times ``n_choose``);
    returns those nodes. They train no flow: ``fit_mle`` fits them in closed form, and on all
    rows at the end, as after a choice made after training. ``checks``: the nodes' linearity
    checks on ``train`` already made (:func:`~scm.auto.mark_homoscedastic_flows`'s); the
    others are made here."""
    checks = checks or {}
    chosen = []
    for k in scm.nodes:
        mech, parents = scm.mechanisms[k], scm.parents[k]
        if k not in scm.auto_nodes or not isinstance(mech, FlowMechanism) or mech.dim != 1:
            continue
        context = torch.cat([train[p] for p in parents], -1) if parents else None
        if parents:
            check = (checks[k] if k in checks
                     else check_linearity(mech.value_units(train[k]), mech.context_units(context)))
            if check is None or check.rejects_linear:
                continue
        line = linear_mle(mech, k, parents, train)
        with torch.no_grad():
            gain = negentropy(line.abduct(train[k], context)[:, 0]) * n_choose
        if gain <= GAUSSIAN_NATS:
            scm.mechanisms[k] = line
            chosen.append(k)
        log.info("node %s: a flow's expected gain over the line %.2f nats on %d rows: %s", k,
                 gain, n_choose, "linear before training" if gain <= GAUSSIAN_NATS else "train")
    return chosen
