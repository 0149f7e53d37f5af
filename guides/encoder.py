"""An amortized Pyro guide for image factors: a conv encoder ``q(z_i | image)`` per factor site.

``FactorGuide(images)`` samples ``pyro.sample(name, Normal(mu, sigma).to_event(1))`` for each
factor inside ``pyro.plate("rows", n)``: the same sites and plate as a latent-factor
:class:`scm.SCM`'s ``model(n)``, so it pairs with any model that draws its factors from one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyro
import pyro.distributions as dist
import torch
from torch import Tensor, nn

MIN_SCALE = 1e-4
"""Floor on the posterior standard deviation (keeps ``log q`` finite)."""


class ConvEncoder(nn.Module):
    """Images ``(n, 3, H, W)`` in [0, 1] -> ``(loc, scale)``, each ``(n, latent_dim)``.

    Four stride-2 4x4 convolutions (``channels, channels, 2 channels, 2 channels``, ReLU),
    then an MLP of width ``hidden`` on the flattened ``H/16 x W/16`` map. ``H`` and ``W``
    must be multiples of 16.

    Example:
        >>> enc = ConvEncoder(3, image_size=32)
        >>> [t.shape for t in enc(torch.rand(2, 3, 32, 32))]
        [torch.Size([2, 3]), torch.Size([2, 3])]
    """

    def __init__(
        self, latent_dim: int, *, image_size: int = 64, channels: int = 32, hidden: int = 256
    ) -> None:
        super().__init__()
        if image_size % 16 or image_size < 16:
            raise ValueError(f"image_size must be a positive multiple of 16, got {image_size}")
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        c = channels
        widths = [3, c, c, 2 * c, 2 * c]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.ReLU()]
        self.conv = nn.Sequential(*layers, nn.Flatten())
        side = image_size // 16
        self.head = nn.Sequential(
            nn.Linear(2 * c * side * side, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent_dim)
        )
        self.latent_dim, self.image_size = latent_dim, image_size

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        loc, raw = self.head(self.conv(images)).chunk(2, dim=-1)
        return loc, nn.functional.softplus(raw - 2.0) + MIN_SCALE


class FactorGuide(nn.Module):
    """Amortized guide: ``q(z | image) = prod_i Normal(z_i; mu_i(image), sigma_i(image))``.

    Calling it is the Pyro guide (registers its weights with ``pyro.module``, samples one
    site per factor in ``pyro.plate("rows", n)``, returns ``{name: (n, dim)}``); extra
    positional and keyword arguments (the model's labels, say) are accepted and ignored.

    Args:
        encoder: maps images to ``(loc, scale)`` of width ``sum(dims)``.
        dims: ``{factor: width}`` in the model's (topological) order.
        name: the ``pyro.module`` name of its weights.

    Example:
        >>> guide = FactorGuide(ConvEncoder(2, image_size=32), {"a": 1, "b": 1})
        >>> {k: v.shape for k, v in guide(torch.rand(5, 3, 32, 32)).items()}
        {'a': torch.Size([5, 1]), 'b': torch.Size([5, 1])}
    """

    def __init__(self, encoder: nn.Module, dims: Mapping[str, int], *, name: str = "guide") -> None:
        super().__init__()
        self.encoder = encoder
        self.dims = dict(dims)
        self.name = name
        width = getattr(encoder, "latent_dim", None)
        if width is not None and width != sum(self.dims.values()):
            raise ValueError(
                f"encoder gives {width} latent coordinates but dims {self.dims} need "
                f"{sum(self.dims.values())}"
            )

    def posterior(self, images: Tensor) -> dict[str, dist.Distribution]:
        """``{factor: Normal(mu, sigma).to_event(1)}``, batch ``(n,)``, event ``(dim,)``."""
        loc, scale = self.encoder(images)
        out: dict[str, dist.Distribution] = {}
        for name, (lo, hi) in self._slices().items():
            out[name] = dist.Normal(loc[:, lo:hi], scale[:, lo:hi]).to_event(1)
        return out

    def mean(self, images: Tensor) -> dict[str, Tensor]:
        """Posterior means ``{factor: (n, dim)}``."""
        loc, _ = self.encoder(images)
        return {name: loc[:, lo:hi] for name, (lo, hi) in self._slices().items()}

    def forward(self, images: Tensor, *args: object, **kwargs: object) -> dict[str, Tensor]:
        pyro.module(self.name, self)
        posterior = self.posterior(images)
        with pyro.plate("rows", images.shape[0]):
            return {name: pyro.sample(name, q) for name, q in posterior.items()}

    def _slices(self) -> dict[str, tuple[int, int]]:
        out, start = {}, 0
        for name, d in self.dims.items():
            out[name] = (start, start + d)
            start += d
        return out


def factor_guide(
    dims: Mapping[str, int] | Sequence[str],
    *,
    image_size: int = 64,
    channels: int = 32,
    hidden: int = 256,
    name: str = "guide",
) -> FactorGuide:
    """Build a :class:`FactorGuide` over a :class:`ConvEncoder` of the right width.

    ``dims`` is ``{factor: width}`` or a list of scalar factor names.

    Example:
        >>> factor_guide(["a", "b"], image_size=32).encoder.latent_dim
        2
    """
    dims = dict(dims) if isinstance(dims, Mapping) else {d: 1 for d in dims}
    encoder = ConvEncoder(
        sum(dims.values()), image_size=image_size, channels=channels, hidden=hidden
    )
    return FactorGuide(encoder, dims, name=name)


def as_image_batch(images: object) -> Tensor:
    """uint8 ``(n, H, W, 3)`` (numpy or torch) -> float ``(n, 3, H, W)`` in [0, 1]."""
    t = torch.as_tensor(images)
    if t.dim() != 4 or t.shape[-1] != 3:
        raise ValueError(f"images must have shape (n, H, W, 3), got {tuple(t.shape)}")
    return t.permute(0, 3, 1, 2).to(torch.get_default_dtype()) / 255.0
