"""An exponential moving average of a module's parameters, for evaluating a noisy SGD fit.

Adam at a fixed step size leaves the weights jittering around the optimum; averaging the
iterates removes most of that noise at no extra gradient cost (Polyak & Juditsky, "Acceleration
of stochastic approximation by averaging", 1992; the exponential form as in TensorFlow's
``ExponentialMovingAverage`` and ``torch.optim.swa_utils.get_ema_multi_avg_fn``).

Not ``torch.optim.swa_utils.AveragedModel``: it keeps the average in a deep copy of the module,
while ``fit_mle`` scores and snapshots the SCM's own mechanisms (and the stacked network that
shares their parameters) in place; swapping values in place keeps every reference valid.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Averaged:
    """``ema <- d * ema + (1 - d) * theta`` after every optimiser step, ``d = min(decay,
    (1 + t) / (10 + t))`` at update ``t`` (the warm-up forgets the initial weights quickly).

    The parameters are read from ``module`` at every call, so an optimiser or Pyro's param
    store may replace the tensors. :meth:`swap` exchanges the live and the averaged values
    in place: call it before evaluating or snapshotting and again to resume training.
    ``decay=0`` turns averaging off (the average is the live weights; ``swap`` is a no-op).
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        self.module, self.decay, self.t = module, decay, 0
        self.ema: list[Tensor] = [p.detach().clone() for p in module.parameters()]

    def update(self) -> None:
        """Fold the current parameters into the average."""
        if not self.decay:
            return
        d = min(self.decay, (1 + self.t) / (10 + self.t))
        self.t += 1
        with torch.no_grad():
            for e, p in zip(self.ema, self.module.parameters(), strict=True):
                e.lerp_(p, 1.0 - d)

    def swap(self) -> None:
        """Exchange the module's parameter values with the averaged ones (in place)."""
        if not self.decay:
            return
        with torch.no_grad():
            for e, p in zip(self.ema, self.module.parameters(), strict=True):
                live = p.detach().clone()
                p.copy_(e)
                e.copy_(live)
