"""Effect handlers for the parts of interventions and counterfactuals ``poutine.do`` lacks.

Hard interventions that set every row go through :func:`pyro.poutine.do`. Two more kinds of
action need a handler of their own: soft interventions (a function of the mechanism's natural
output) and hard values on some rows only (one intervention per row, NaN = untouched).
Counterfactual prediction replays abducted noise through each recomputed mechanism.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from pyro.poutine.messenger import Messenger
from pyro.poutine.runtime import Message
from torch import Tensor
from torch.distributions import Transform

from scm.interventions import Action


def push_through(transforms: Sequence[Transform], noise: Tensor) -> Tensor:
    """Return ``T(noise)`` for the noise -> value ``transforms`` applied in order."""
    value = noise
    for t in transforms:
        value = t(value)
    return value


def pull_through(transforms: Sequence[Transform], value: Tensor) -> Tensor:
    """Return ``T^{-1}(value)``: the noise that ``transforms`` map to ``value``."""
    for t in reversed(transforms):
        value = t.inv(value)
    return value


def push_noise(fn: object, noise: Tensor) -> Tensor:
    """Return ``T(noise)`` for a ``TransformedDistribution`` ``fn``: its value for that noise."""
    return push_through(fn.transforms, noise)  # type: ignore[attr-defined]


def pull_noise(fn: object, value: Tensor) -> Tensor:
    """Return ``T^{-1}(value)``: the noise a ``TransformedDistribution`` maps to ``value``."""
    return pull_through(fn.transforms, value)  # type: ignore[attr-defined]


def split_hard(actions: Mapping[str, Action], dtype: torch.dtype) -> tuple[dict, dict]:
    """``(hard, rest)``: the hard actions that set every row, as value tensors ``(n, dim)`` for
    :func:`pyro.poutine.do`, and the other actions (soft, per-row) for :class:`act`."""
    hard = {
        k: torch.as_tensor(a.value, dtype=dtype)
        for k, a in actions.items()
        if a.is_hard and a.all_rows
    }
    rest = {k: a for k, a in actions.items() if k not in hard}
    return hard, rest


class act(Messenger):
    """Apply soft or per-row hard :class:`~scm.interventions.Action`\\ s after each sample.

    As in ChiRho's ``do`` handler, the action transforms the value the site returns, so
    downstream mechanisms see the intervened value.
    """

    def __init__(self, actions: Mapping[str, Action]) -> None:
        super().__init__()
        self.actions = dict(actions)

    def _pyro_post_sample(self, msg: Message) -> None:
        action = self.actions.get(msg["name"])
        if action is not None:
            msg["value"] = apply_action(action, msg["value"])


def apply_action(action: Action, value: Tensor) -> Tensor:
    """Return ``value (n, dim)`` after a soft or per-row hard ``action`` (same shape)."""
    if action.shift is not None:
        return torch.as_tensor(action.shift(value), dtype=value.dtype).expand_as(value)
    new = torch.as_tensor(action.value, dtype=value.dtype)
    mask = torch.as_tensor(action.mask)[:, None]
    return torch.where(mask, new, value)


class replay_noise(Messenger):
    """Set each named site to its mechanism applied to given exogenous noise ``(n, dim)``.

    With the noise abducted from factual data, this is the prediction step of a
    counterfactual (Pearl, *Causality*, 2009, Thm. 7.1.7: abduction, action, prediction).
    """

    def __init__(self, noise: Mapping[str, Tensor]) -> None:
        super().__init__()
        self.noise = dict(noise)

    def _pyro_sample(self, msg: Message) -> None:
        if msg["name"] in self.noise and msg["value"] is None:
            msg["value"] = push_noise(msg["fn"], self.noise[msg["name"]])
