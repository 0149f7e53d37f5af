"""A conv decoder: factors ``(n, latent_dim)`` -> mean image ``(n, 3, H, W)``."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ConvDecoder(nn.Module):
    """The mirror of :class:`guides.encoder.ConvEncoder`: an MLP to an ``H/16 x W/16`` map of
    ``2 channels`` features, four stride-2 4x4 transposed convolutions, plus a learned
    per-pixel ``offset`` image (set it to the training mean image with :meth:`set_offset`).

    The output is linear (not squashed): on white-background renders a sigmoid output
    saturates at 1 within ~50 Adam steps and stalls at MSE 0.027, worse than the mean image
    (0.018); linear output from the mean image reaches 0.0007 in 300 steps (pendulum 64 px,
    decoder fitted to true factors). Clamp to [0, 1] for display.

    Example:
        >>> import torch
        >>> ConvDecoder(4, image_size=32)(torch.zeros(2, 4)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self, latent_dim: int, *, image_size: int = 64, channels: int = 32, hidden: int = 256
    ) -> None:
        super().__init__()
        if image_size % 16 or image_size < 16:
            raise ValueError(f"image_size must be a positive multiple of 16, got {image_size}")
        c, side = channels, image_size // 16
        self.head = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, 2 * c * side * side), nn.ReLU(),
            nn.Unflatten(1, (2 * c, side, side)),
        )
        widths = [2 * c, 2 * c, c, c, 3]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1), nn.ReLU()]
        self.deconv = nn.Sequential(*layers[:-1])
        self.offset = nn.Parameter(torch.full((3, image_size, image_size), 0.5))
        self.latent_dim, self.image_size = latent_dim, image_size

    def set_offset(self, image: Tensor) -> None:
        """Start from ``image (3, H, W)`` (e.g. the mean training image)."""
        with torch.no_grad():
            self.offset.copy_(image)

    def forward(self, z: Tensor) -> Tensor:
        return self.deconv(self.head(z)) + self.offset
