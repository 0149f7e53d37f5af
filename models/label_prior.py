"""A label-conditioned prior on the exogenous noise: ``p(eps | u)`` instead of ``N(0, I)``.

iVAE (Khemakhem et al., AISTATS 2020, Eq. 7) makes the latent prior conditionally factorial
given an observed auxiliary variable ``u``; with Gaussian sufficient statistics that is
``eps_j ~ N(mu_j(u), sigma_j(u)^2)`` with ``mu, sigma`` learned maps of ``u``. CausalVAE
(Yang et al., CVPR 2021, Sec. 3.3) uses the same label-conditioned Gaussian, and CauF-VAE
(arXiv 2304.09010) adopts it for the noise of its causal flow: the flow then pushes
``p(eps | u)`` forward to ``p(z | u)``, and the ELBO's KL term is taken against ``p(z | u)``.

:class:`LabelPrior` holds the maps; :class:`ConditionalNoise` is the Pyro handler that swaps
the standard-normal base of each factor site of a :class:`scm.SCM` program for
``N(mu(u), sigma(u))`` on the labelled rows and keeps ``N(0, I)`` on the others, so the
prior's flow and the ELBO code stay as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pyro.distributions as dist
import torch
from pyro.poutine.messenger import Messenger
from pyro.poutine.runtime import Message
from torch import Tensor, nn

from scm.mechanisms.base import PushedNoise

MIN_PRIOR_SCALE = 1e-3
"""Floor on ``sigma(u)``: a label cannot make the prior a point mass (the KL stays finite)."""

# softplus(_ONE) + MIN_PRIOR_SCALE == 1: a zero network output is N(0, I).
_ONE = math.log(math.expm1(1.0 - MIN_PRIOR_SCALE))


class LabelPrior(nn.Module):
    """``u (n, k)`` -> ``{factor: (loc, scale)}``, each ``(n, dim)``: the law of the factor's noise.

    One small MLP ``k -> hidden -> 2 * sum(dims)`` (ReLU) sees all labels, as iVAE's
    ``lambda(u)``; its last layer starts at zero, so the untrained prior is ``N(0, I)``
    exactly. Rows with ``labelled`` false get ``(0, 1)`` whatever their labels hold.

    Args:
        label_dim: number of label columns ``k``.
        dims: ``{factor: width}`` in the model's order.
        hidden: width of the hidden layer.

    Example:
        >>> prior = LabelPrior(2, {"a": 1, "b": 2})
        >>> loc, scale = prior(torch.randn(3, 2), torch.tensor([True, False, True]))["b"]
        >>> loc.shape, bool((scale[1] == 1).all())  # row 1 is unlabelled: N(0, I)
        (torch.Size([3, 2]), True)
    """

    def __init__(self, label_dim: int, dims: Mapping[str, int], *, hidden: int = 32) -> None:
        super().__init__()
        if label_dim < 1 or hidden < 1:
            raise ValueError(f"label_dim and hidden must be >= 1, got {label_dim} and {hidden}")
        self.dims = dict(dims)
        width = sum(self.dims.values())
        self.net = nn.Sequential(nn.Linear(label_dim, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2 * width))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.label_dim = label_dim

    def forward(
        self, labels: Tensor, labelled: Tensor | None = None
    ) -> dict[str, tuple[Tensor, Tensor]]:
        """``{factor: (loc (n, dim), scale (n, dim))}`` of ``p(eps | u)``; rows with
        ``labelled (n,)`` false get ``(0, 1)``; ``labelled=None`` means every row."""
        if labels.dim() != 2 or labels.shape[1] != self.label_dim:
            raise ValueError(f"labels must have shape (n, {self.label_dim}), "
                             f"got {tuple(labels.shape)}")
        loc, raw = self.net(labels).chunk(2, dim=-1)
        scale = nn.functional.softplus(raw + _ONE) + MIN_PRIOR_SCALE
        if labelled is not None:
            keep = labelled.reshape(-1, 1).to(torch.bool)
            # torch.where, not a product: unlabelled rows get exactly (0, 1), and no gradient
            # reaches the network through them (their label entries may be placeholders).
            loc = torch.where(keep, loc, torch.zeros_like(loc))
            scale = torch.where(keep, scale, torch.ones_like(scale))
        out, start = {}, 0
        for name, d in self.dims.items():
            out[name] = (loc[:, start : start + d], scale[:, start : start + d])
            start += d
        return out


class ConditionalNoise(Messenger):
    """Replace the noise law of the named sample sites: ``N(0, I)`` -> ``N(loc, scale)``.

    Each site's distribution must be a :class:`~scm.mechanisms.base.PushedNoise` (what every
    :class:`scm.SCM` mechanism returns); its transforms are kept, only the base changes, so
    ``log_prob(z) = log N(T^{-1}(z); loc, scale) + log |det dT^{-1}/dz|``. Sites not named,
    and sites whose value a handler fixes (``poutine.do`` / ``condition``), are left alone
    by the handler's own semantics: the replacement only touches ``msg["fn"]``.

    Args:
        noise: ``{site: (loc (n, dim), scale (n, dim))}``, e.g. the output of
            :class:`LabelPrior`.
    """

    def __init__(self, noise: Mapping[str, tuple[Tensor, Tensor]]) -> None:
        super().__init__()
        self.noise = dict(noise)

    def _pyro_sample(self, msg: Message) -> None:
        name = msg["name"]
        if name not in self.noise:
            return
        fn = msg["fn"]
        if not isinstance(fn, dist.TransformedDistribution):
            raise TypeError(f"site {name!r}: a conditional noise prior needs a pushed-forward "
                            f"noise distribution, got {type(fn).__name__}")
        loc, scale = self.noise[name]
        if loc.shape[-1:] != fn.event_shape:
            raise ValueError(f"site {name!r} has event shape {tuple(fn.event_shape)}, the noise "
                             f"parameters have width {loc.shape[-1]}")
        base = dist.Normal(loc, scale).to_event(1)
        msg["fn"] = PushedNoise(base, list(fn.transforms))
