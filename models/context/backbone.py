"""The black box a context module wraps, and the conv VAE backbone we ship.

A :class:`BlackBox` is any generative model with a Gaussian amortised encoder and a decoder
over a flat latent: the context module only reads the encoder's ``(loc, scale)`` and writes the
decoder's input, so it never needs the backbone's internals (Markham et al., arXiv 2507.04754,
Sec. 3: the module sits "between an arbitrary encoder and decoder").
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import Tensor, nn

from guides.encoder import ConvEncoder
from models.decoder import ConvDecoder
from scm.io import atomic_write

BACKBONE_FORMAT = "cauflow.conv-vae-backbone"
BACKBONE_FILE, BACKBONE_RECORD = "backbone.safetensors", "backbone.json"


@runtime_checkable
class BlackBox(Protocol):
    """A generative model the context module can wrap.

    ``encode(images (n, 3, H, W)) -> (loc, scale)``, each ``(n, latent_dim)``;
    ``decode(h (n, latent_dim)) -> mean image (n, 3, H, W)``;
    ``log_likelihood(images, mean) -> (n,)`` nats of ``p(images | decoder mean)``.
    """

    latent_dim: int
    image_size: int

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor]: ...

    def decode(self, h: Tensor) -> Tensor: ...

    def log_likelihood(self, images: Tensor, mean: Tensor) -> Tensor: ...


class ConvVAE(nn.Module):
    """A conv VAE backbone: :class:`ConvEncoder`, :class:`ConvDecoder` and a learned pixel noise
    scale ``sigma`` (one per channel) of the Gaussian likelihood ``p(x | h) = N(dec(h), sigma^2)``.

    Example:
        >>> vae = ConvVAE(latent_dim=4, image_size=32, channels=8, hidden=32)
        >>> loc, scale = vae.encode(torch.rand(2, 3, 32, 32))
        >>> vae.decode(loc).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self, latent_dim: int, *, image_size: int = 32, channels: int = 16, hidden: int = 128
    ) -> None:
        super().__init__()
        self.encoder = ConvEncoder(latent_dim, image_size=image_size, channels=channels,
                                   hidden=hidden)
        self.decoder = ConvDecoder(latent_dim, image_size=image_size, channels=channels,
                                   hidden=hidden)
        self.log_sigma = nn.Parameter(torch.full((3, 1, 1), math.log(0.1)))
        self.latent_dim, self.image_size = latent_dim, image_size
        self._config = {"latent_dim": latent_dim, "image_size": image_size,
                        "channels": channels, "hidden": hidden}

    def config(self) -> dict[str, int]:
        return dict(self._config)

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor]:
        return self.encoder(images)

    def decode(self, h: Tensor) -> Tensor:
        return self.decoder(h)

    def log_likelihood(self, images: Tensor, mean: Tensor) -> Tensor:
        """``sum log N(images; mean, sigma^2)`` over pixels and channels, ``(n,)`` nats."""
        sigma = self.log_sigma.exp()
        z = (images - mean) / sigma
        per = -0.5 * z**2 - self.log_sigma - 0.5 * math.log(2 * math.pi)
        return per.flatten(1).sum(1)


def save_backbone(path: str | os.PathLike[str], backbone: ConvVAE) -> None:
    """Write ``backbone.safetensors`` then ``backbone.json`` (its config) into ``path``."""
    root = Path(path)
    blob = save_tensors({k: v.detach().contiguous() for k, v in backbone.state_dict().items()})
    atomic_write(root / BACKBONE_FILE, blob)
    record = {"format": BACKBONE_FORMAT, "version": 1, "config": backbone.config()}
    atomic_write(root / BACKBONE_RECORD, json.dumps(record, indent=2).encode())


def load_backbone(path: str | os.PathLike[str]) -> ConvVAE:
    """A :class:`ConvVAE` saved by :func:`save_backbone` (``ValueError`` if ``path`` is not one)."""
    root = Path(path)
    if not (root / BACKBONE_RECORD).exists() or not (root / BACKBONE_FILE).exists():
        raise ValueError(f"{root} is not a backbone directory (needs {BACKBONE_RECORD} and "
                         f"{BACKBONE_FILE}; write one with save_backbone)")
    record: dict[str, Any] = json.loads((root / BACKBONE_RECORD).read_text())
    if record.get("format") != BACKBONE_FORMAT:
        raise ValueError(f"{root / BACKBONE_RECORD} has format {record.get('format')!r}, "
                         f"expected {BACKBONE_FORMAT!r}")
    backbone = ConvVAE(**record["config"])
    backbone.load_state_dict(load_tensors((root / BACKBONE_FILE).read_bytes()))
    return backbone
