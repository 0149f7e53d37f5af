"""A small VQ-VAE: conv encoder to an ``h x w`` grid, :class:`MultiQuantizer`, mirrored decoder.

Encoder: ``log2(downsample)`` stride-2 4x4 convolutions (ReLU), one residual 3x3 block, a 1x1
convolution to ``n_codebooks * code_dim`` channels. Decoder: the mirror (1x1, residual block,
transposed convolutions) plus a learned offset image, linear output (see
:class:`models.decoder.ConvDecoder` for why not a sigmoid). Loss: pixel MSE + beta x
commitment; codebooks follow EMA updates (see :mod:`models.ctvae.quantizer`).

Nodes of the causal-transition layer are the ``G x h x w`` (codebook, row, column) code slots,
flattened in that order: ``codes.flatten(1)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .quantizer import MultiQuantizer, Quantized


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class VQVAE(nn.Module):
    """Images ``(n, 3, H, W)`` in [0, 1] <-> codes ``(n, G, H / s, W / s)``.

    Example:
        >>> vq = VQVAE(image_size=32, downsample=8, n_codebooks=2, n_codes=16, code_dim=4)
        >>> vq.encode(torch.rand(2, 3, 32, 32)).codes.shape
        torch.Size([2, 2, 4, 4])
    """

    def __init__(
        self,
        *,
        image_size: int = 32,
        downsample: int = 8,
        n_codebooks: int = 2,
        n_codes: int = 32,
        code_dim: int = 8,
        channels: int = 32,
        decay: float = 0.95,
    ) -> None:
        super().__init__()
        layers = int(round(math.log2(downsample))) if downsample >= 2 else 0
        if 2**layers != downsample or image_size % downsample:
            raise ValueError(
                f"downsample must be a power of two >= 2 dividing image_size={image_size}; "
                f"got {downsample!r}"
            )
        c, out = channels, n_codebooks * code_dim
        enc: list[nn.Module] = []
        for i in range(layers):
            enc += [nn.Conv2d(3 if i == 0 else c, c, 4, stride=2, padding=1), nn.ReLU()]
        self.encoder = nn.Sequential(*enc, _Residual(c), nn.ReLU(), nn.Conv2d(c, out, 1))
        dec: list[nn.Module] = [nn.Conv2d(out, c, 1), _Residual(c), nn.ReLU()]
        for i in range(layers):
            last = i == layers - 1
            dec += [nn.ConvTranspose2d(c, 3 if last else c, 4, stride=2, padding=1)]
            if not last:
                dec.append(nn.ReLU())
        self.decoder = nn.Sequential(*dec)
        self.offset = nn.Parameter(torch.full((3, image_size, image_size), 0.5))
        self.quantizer = MultiQuantizer(n_codebooks, n_codes, code_dim, decay=decay)
        self.image_size, self.downsample = image_size, downsample
        self.side = image_size // downsample
        self.n_codebooks, self.n_codes, self.code_dim = n_codebooks, n_codes, code_dim

    @property
    def n_nodes(self) -> int:
        """Code slots per image: ``G * h * w``."""
        return self.n_codebooks * self.side * self.side

    def set_offset(self, image: Tensor) -> None:
        """Start the decoder from ``image (3, H, W)`` (e.g. the mean training image)."""
        with torch.no_grad():
            self.offset.copy_(image)

    def encode(self, images: Tensor) -> Quantized:
        """Quantized encoding of ``images (n, 3, H, W)``."""
        if images.dim() != 4 or images.shape[1:] != (3, self.image_size, self.image_size):
            raise ValueError(
                f"images must have shape (n, 3, {self.image_size}, {self.image_size}); "
                f"got {tuple(images.shape)}"
            )
        # The encoder sees the deviation from the offset (mean) image: on the white Pendulum and
        # Flow renders the raw image is almost constant and the codes collapsed.
        return self.quantizer(self.encoder(images - self.offset.detach()))

    def decode(self, z_q: Tensor) -> Tensor:
        """Images ``(n, 3, H, W)`` (unclamped) from a quantized map ``(n, G * d, h, w)``."""
        return self.decoder(z_q) + self.offset

    def decode_codes(self, codes: Tensor) -> Tensor:
        """Images from node codes ``(n, G * h * w)`` or ``(n, G, h, w)``."""
        grid = codes.view(len(codes), self.n_codebooks, self.side, self.side)
        return self.decode(self.quantizer.lookup(grid))

    def codes(self, images: Tensor) -> Tensor:
        """Node codes ``(n, G * h * w)``, int64 (no codebook update)."""
        was = self.quantizer.training
        self.quantizer.eval()
        try:
            return self.encode(images).codes.flatten(1)
        finally:
            self.quantizer.train(was)

    def node_vectors(self, codes: Tensor) -> Tensor:
        """Code vectors of node codes ``(n, N)``: ``(n, N, d)``."""
        g = torch.arange(self.n_nodes, device=codes.device) // (self.side * self.side)
        return self.quantizer.embed[g[None, :].expand_as(codes), codes]

    def recon_error(self, z_q: Tensor, images: Tensor) -> Tensor:
        """Squared pixel error summed over each image, averaged over the batch (scalar). Summed,
        not averaged, over pixels: with a per-pixel mean the commitment term outweighed the
        small Pendulum objects and the codes collapsed to the mean image."""
        return ((self.decode(z_q) - images) ** 2).flatten(1).sum(1).mean()

    def loss(self, images: Tensor, *, beta: float = 0.25) -> tuple[Tensor, dict[str, float]]:
        """``(recon_error + beta * commitment, parts)`` for a batch; parts hold the per-pixel
        mse, commitment and the mean codebook perplexity."""
        q = self.encode(images)
        recon = self.recon_error(q.z_q, images)
        parts = {"mse": float(recon.detach()) / images[0].numel(),
                 "commitment": float(q.commitment.detach()),
                 "perplexity": float(q.perplexity.mean())}
        return recon + beta * q.commitment, parts
