"""Baseline for action retrieval: a plain VAE and the nearest mean latent difference.

The VAE is :class:`guides.encoder.ConvEncoder` + :class:`models.decoder.ConvDecoder` with a
Gaussian posterior, trained on the pairs' images by the negative ELBO (Gaussian pixels,
``pixel_scale`` = 1 / sigma^2, KL to N(0, I)). Retrieval: each action's mean latent difference
``delta_a = mean(mu(y) - mu(x))`` over the train pairs; a pair ``(x, y)`` gets the action whose
``delta_a`` is nearest (Euclidean) to ``mu(y) - mu(x)``.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from guides.encoder import ConvEncoder, as_image_batch
from models.decoder import ConvDecoder

from .pairs import PairSet


class PlainVAE(nn.Module):
    """Encoder ``(n, 3, H, W) -> (mu, sigma)`` of ``latent_dim``; decoder back to images."""

    def __init__(self, latent_dim: int = 10, *, image_size: int = 32, channels: int = 32) -> None:
        super().__init__()
        self.encoder = ConvEncoder(latent_dim, image_size=image_size, channels=channels)
        self.decoder = ConvDecoder(latent_dim, image_size=image_size, channels=channels)

    def loss(self, x: Tensor, *, pixel_scale: float = 100.0) -> Tensor:
        """Negative ELBO per image (one reparameterised sample)."""
        mu, sigma = self.encoder(x)
        z = mu + sigma * torch.randn_like(mu)
        nll = 0.5 * pixel_scale * ((self.decoder(z) - x) ** 2).flatten(1).sum(1)
        kl = 0.5 * (mu**2 + sigma**2 - 1 - 2 * sigma.log()).sum(1)
        return (nll + kl).mean()

    @torch.no_grad()
    def means(self, images: np.ndarray, *, batch: int = 512) -> Tensor:
        """Posterior means ``(n, latent_dim)`` of uint8 images ``(n, H, W, 3)``."""
        return torch.cat([self.encoder(as_image_batch(images[i : i + batch]))[0]
                          for i in range(0, len(images), batch)])


def train_vae(
    images: np.ndarray,
    pairs: PairSet,
    *,
    epochs: int,
    latent_dim: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = False,
) -> tuple[PlainVAE, float]:
    """Train a :class:`PlainVAE` for ``epochs`` passes over the pairs' ``x`` and ``y`` images
    (``images`` holds every grid scene). Returns ``(vae in eval mode, training images/s)``."""
    torch.manual_seed(seed)
    size = images.shape[1]
    vae = PlainVAE(latent_dim, image_size=size)
    scenes = torch.as_tensor(np.concatenate([pairs.x, pairs.y]))
    mean = images[scenes.numpy()].mean(0, dtype=np.float64) / 255.0
    vae.decoder.set_offset(torch.as_tensor(mean.transpose(2, 0, 1).copy()).float())
    data = torch.as_tensor(images)
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    seen, start = 0, time.perf_counter()
    for _ in tqdm(range(epochs), desc="vae", disable=not progress):
        order = scenes[torch.randperm(len(scenes), generator=gen)]
        for i in range(0, len(order), batch_size):
            loss = vae.loss(as_image_batch(data[order[i : i + batch_size]]))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 10.0)
            opt.step()
            seen += len(order[i : i + batch_size])
    rate = seen / max(time.perf_counter() - start, 1e-9)
    return vae.eval(), rate


def latent_difference_retrieval(
    vae: PlainVAE, images: np.ndarray, train: PairSet, test: PairSet, n_actions: int
) -> np.ndarray:
    """Predicted actions ``(len(test),)`` in ``1..n_actions`` by the nearest mean train
    difference; an action absent from ``train`` is never predicted."""
    d_train = vae.means(images[train.y]) - vae.means(images[train.x])
    a = torch.as_tensor(train.action)
    deltas = torch.full((n_actions, d_train.shape[1]), float("inf"))
    for k in range(1, n_actions + 1):
        if (a == k).any():
            deltas[k - 1] = d_train[a == k].mean(0)
    d_test = vae.means(images[test.y]) - vae.means(images[test.x])
    dist = torch.cdist(d_test, deltas.nan_to_num(posinf=1e6))
    return (dist.argmin(-1) + 1).numpy()
