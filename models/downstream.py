"""Downstream sample efficiency: a classifier on learned factors vs on raw pixels.

The CauF-VAE paper's experiment: encode images to the learned factor means, fit a small
classifier for a binary target such as "shadow longer than its median" on ``n`` labelled training
images, and read its accuracy on the test split as ``n`` grows. The same classifier on raw pixels
is the baseline; a representation that has captured the factor needs far fewer labels.

The classifier is L2-regularised logistic regression on standardised features, fitted by L-BFGS
in torch (float64); with ``l2 = 1 / n`` it is the objective of scikit-learn's
``LogisticRegression(C=1.0)`` (scikit-learn is not a declared dependency).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from guides.encoder import as_image_batch
from models.data.imageset import ImageSet


class Encoder(Protocol):
    """Anything with ``encode(images (n, 3, H, W) in [0, 1]) -> {factor: (n, dim)}``."""

    def encode(self, images: Tensor) -> Mapping[str, Tensor] | Tensor: ...


def encode_features(vae: Encoder, images: np.ndarray, *, batch: int = 256) -> np.ndarray:
    """Learned factor means ``(N, sum dims)`` (factors in the order ``encode`` returns them) of
    uint8 images ``(N, H, W, 3)``, encoded ``batch`` at a time."""
    out = []
    for i in range(0, len(images), batch):
        with torch.no_grad():
            z = vae.encode(as_image_batch(images[i : i + batch]))
        if isinstance(z, Mapping):
            z = torch.cat([v.reshape(len(v), -1) for v in z.values()], -1)
        out.append(torch.as_tensor(z).double().reshape(len(z), -1).numpy())
    return np.concatenate(out)


def pixel_features(images: np.ndarray) -> np.ndarray:
    """Raw pixels in [0, 1], flattened: ``(N, H * W * 3)`` float64."""
    return images.reshape(len(images), -1).astype(np.float64) / 255.0


def fit_logistic(
    x: np.ndarray, y: np.ndarray, *, l2: float | None = None, max_iter: int = 200
) -> Any:  # noqa: ANN401 - a closure
    """Fit L2-regularised logistic regression; returns ``predict(x) -> bool (N,)``.

    Features are standardised with the training mean and standard deviation (constant columns
    are left at 0). The loss is mean binary cross-entropy plus ``l2 / 2 * ||w||^2`` (bias not
    penalised); ``l2`` defaults to ``1 / len(x)``, i.e. scikit-learn's ``C=1``. A training set
    of one class gives the constant classifier of that class.
    """
    y = np.asarray(y, dtype=bool)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must have the same non-zero length; got {len(x)}, {len(y)}")
    if y.all() or not y.any():
        only = bool(y[0])
        return lambda xs: np.full(len(xs), only)
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64).copy())
    loc, scale = xt.mean(0), xt.std(0, correction=0)
    scale = torch.where(scale > 1e-12, scale, torch.ones_like(scale))
    xs = (xt - loc) / scale
    yt = torch.as_tensor(y, dtype=torch.float64)
    lam = 1.0 / len(xs) if l2 is None else l2
    w = torch.zeros(xs.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure() -> Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xs @ w + b, yt)
        loss = loss + 0.5 * lam * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w_, b_ = w.detach(), b.detach()

    def predict(x_new: np.ndarray) -> np.ndarray:
        z = (torch.as_tensor(np.asarray(x_new, dtype=np.float64).copy()) - loc) / scale
        return (z @ w_ + b_ > 0).numpy()

    return predict


def _draw(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` training rows, stratified: each class in proportion to the training set, at least
    one of each (when ``n >= 2`` and both classes exist)."""
    pos, neg = np.flatnonzero(labels), np.flatnonzero(~labels)
    if len(pos) == 0 or len(neg) == 0 or n < 2:
        return rng.choice(len(labels), size=n, replace=False)
    n_pos = int(np.clip(round(n * len(pos) / len(labels)), 1, n - 1))
    n_pos = min(n_pos, len(pos))
    n_neg = n - n_pos
    if n_neg > len(neg):
        n_neg, n_pos = len(neg), n - len(neg)
    return np.concatenate([rng.choice(pos, n_pos, replace=False),
                           rng.choice(neg, n_neg, replace=False)])


def _curve(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
    sizes: Sequence[int], repeats: int, seed: int,
) -> dict[int, float]:
    acc = {}
    for n in sizes:
        rng = np.random.default_rng([seed, n])  # same draws for every feature set
        scores = []
        for _ in range(repeats):
            rows = _draw(train_y, n, rng)
            predict = fit_logistic(train_x[rows], train_y[rows])
            scores.append(float((predict(test_x) == test_y).mean()))
        acc[int(n)] = float(np.mean(scores))
    return acc


def sample_efficiency(
    vae: Encoder,
    train: ImageSet,
    test: ImageSet,
    *,
    target: str = "shadow_len",
    threshold: float | None = None,
    sizes: Sequence[int] = (10, 20, 50, 100, 500),
    seed: int = 0,
    repeats: int = 5,
    baseline: bool = True,
) -> dict[str, Any]:
    """Test accuracy of "``target`` > ``threshold``" vs the number of labelled training images.

    For each ``n`` in ``sizes``, ``repeats`` seeded stratified draws of ``n`` training images
    each fit a logistic regression (see :func:`fit_logistic`) on the learned factor means
    (``vae.encode``) and, when ``baseline``, on raw pixels, scored on all of ``test``; the
    accuracies are averaged over the draws. The draws are the same for both feature sets.

    Args:
        vae: the model; only its ``encode`` is used.
        train, test: image sets with the ground-truth factors.
        target: the factor to threshold, one of ``train.factor_names``.
        threshold: the class boundary in the factor's raw units; default the median of the
            target over ``train``.
        sizes: numbers of labelled training images, each at most ``len(train)``.
        seed: seed of the draws.
        repeats: draws per size.
        baseline: also fit on raw pixels.

    Returns:
        ``{"target", "threshold", "sizes", "chance", "factors": {n: accuracy}, "pixels":
        {n: accuracy}}`` (``"pixels"`` only when ``baseline``); ``chance`` is the test accuracy
        of always predicting the training majority class.

    Raises:
        ValueError: for an unknown ``target``, a size outside ``[1, len(train)]``, or
            ``repeats < 1``.
    """
    if target not in train.factor_names:
        raise ValueError(f"target must be one of {train.factor_names}; got {target!r}")
    if tuple(test.factor_names) != tuple(train.factor_names):
        raise ValueError(f"train and test must have the same factors; got "
                         f"{train.factor_names} and {test.factor_names}")
    bad = [n for n in sizes if not 1 <= n <= len(train)]
    if bad or not sizes:
        raise ValueError(f"sizes must be non-empty, each in [1, len(train)={len(train)}]; "
                         f"got {list(sizes)} (pass fewer, or a larger train set)")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    col = train.factor_names.index(target)
    thr = float(np.median(train.factors[:, col])) if threshold is None else float(threshold)
    train_y, test_y = train.factors[:, col] > thr, test.factors[:, col] > thr
    majority = train_y.mean() >= 0.5
    out: dict[str, Any] = {
        "target": target, "threshold": thr, "sizes": [int(n) for n in sizes],
        "chance": float((test_y == majority).mean()),
        "factors": _curve(encode_features(vae, train.images), train_y,
                          encode_features(vae, test.images), test_y, sizes, repeats, seed),
    }
    if baseline:
        out["pixels"] = _curve(pixel_features(train.images), train_y,
                               pixel_features(test.images), test_y, sizes, repeats, seed)
    return out


def format_curves(curves: Mapping[str, Mapping[int, float]]) -> str:
    """A plain-text table: one row per feature set (``{name: {n: accuracy}}``), one column per n."""
    sizes = list(next(iter(curves.values())).keys())
    head = f"{'features':18s}" + "".join(f"{'n=' + str(n):>9s}" for n in sizes)
    lines = [head, "-" * len(head)]
    for name, acc in curves.items():
        lines.append(f"{name:18s}" + "".join(f"{acc[n]:>9.3f}" for n in sizes))
    return "\n".join(lines)
