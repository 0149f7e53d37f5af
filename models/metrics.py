"""Scores of a trained CauF-VAE on the test split: factor recovery and intervention fidelity.

Factor recovery compares each factor's posterior mean with its label, both in standardised
units (train mean and std): ``R^2 = 1 - SSE / SST`` with no refit (the labels fix the
latent's scale, and interventions are set in those units), Spearman's rho, MIG (histogram
mutual information, 20 equal-width bins, as in Locatello et al. 2019) and DCI
disentanglement / completeness / informativeness (Eastwood & Williams 2018) with
gradient-boosted-tree importances, as in Locatello et al.'s ``disentanglement_lib``: one
regressor per factor fitted on half of the test codes, informativeness its R^2 on the other
half. ``dci_lite`` (absolute least-squares weights) is kept for comparison only: on Pendulum,
whose shadow factors are nearly linear in the pendulum and light angles, it gives a
representation equal to the true factors plus 5% noise a disentanglement of about 0.5.

Intervention fidelity (:func:`intervention_fidelity`) sets one factor per image to the value
of another test scene, decodes the model's counterfactual image and compares it with the
renderer's ground-truth counterfactual of the same scene: pixel MSE and SSIM, and the factors
read back from the decoded image by an independent regressor trained on real renders
(:class:`FactorReader`): target error, descendant error, non-descendant error (standardised
units, mean absolute error against the true counterfactual factors).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import Tensor, nn
from tqdm.auto import tqdm

from guides.encoder import ConvEncoder, as_image_batch
from models.caufvae import CauFVAE
from models.data import ImageSet, load_dataset
from models.data.run_data import run_images
from scm.graph import descendants
from scm.io import atomic_write

log = logging.getLogger(__name__)

METRICS = "metrics.json"


# --------------------------------------------------------------------- factor recovery

MIN_TEST_ROWS = 4
"""Fewest test rows the DCI scores take (half fit the regressors, half score them)."""

def factor_scores(pred: np.ndarray, truth: np.ndarray, names: Sequence[str]) -> dict[str, dict]:
    """Per factor ``{"r2", "spearman"}`` of ``pred (n, k)`` against ``truth (n, k)``."""
    out = {}
    for i, name in enumerate(names):
        p, t = pred[:, i].astype(np.float64), truth[:, i].astype(np.float64)
        sst = float(((t - t.mean()) ** 2).sum())
        r2 = 1.0 - float(((p - t) ** 2).sum()) / sst if sst > 0 else float("nan")
        rho = float(pd.Series(p).corr(pd.Series(t), method="spearman"))
        out[name] = {"r2": r2, "spearman": rho}
    return out


def _discretize(x: np.ndarray, bins: int) -> np.ndarray:
    lo, hi = x.min(), x.max()
    if hi <= lo:
        return np.zeros(len(x), dtype=np.int64)
    return np.minimum(((x - lo) / (hi - lo) * bins).astype(np.int64), bins - 1)


def _mutual_info(a: np.ndarray, b: np.ndarray) -> float:
    joint = pd.crosstab(a, b).to_numpy().astype(np.float64)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def mutual_info_matrix(codes: np.ndarray, factors: np.ndarray, *, bins: int = 20) -> np.ndarray:
    """Normalised mutual information ``I(code_d; factor_k) / H(factor_k)``, ``(D, K)``.

    Codes and factors are discretised into ``bins`` equal-width bins (Locatello et al. 2019);
    a constant factor (zero entropy) gives a column of NaN. The diagnostic behind :func:`mig`:
    its gap for factor ``k`` is the largest minus the second largest entry of column ``k``.
    """
    codes, factors = np.asarray(codes), np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors):
        raise ValueError(f"codes (n, D) and factors (n, K) need the same n rows, got "
                         f"{codes.shape} and {factors.shape}")
    c = [_discretize(codes[:, d], bins) for d in range(codes.shape[1])]
    out = np.full((codes.shape[1], factors.shape[1]), np.nan)
    for k in range(factors.shape[1]):
        f = _discretize(factors[:, k], bins)
        h = _mutual_info(f, f)
        if h > 0:
            out[:, k] = [_mutual_info(cd, f) / h for cd in c]
    return out


def mig_per_factor(codes: np.ndarray, factors: np.ndarray, *, bins: int = 20) -> np.ndarray:
    """Each factor's normalised mutual-information gap (Chen et al. 2018, Eq. 5 before the
    mean over factors): the two codes most informative about factor ``k``, ``(K,)``; NaN for
    a constant factor. Needs >= 2 code dimensions."""
    if np.asarray(codes).ndim == 2 and np.asarray(codes).shape[1] < 2:
        raise ValueError(f"MIG needs at least 2 code dimensions, got {np.asarray(codes).shape[1]}")
    top = -np.sort(-mutual_info_matrix(codes, factors, bins=bins), axis=0)
    return top[0] - top[1]


def mig(codes: np.ndarray, factors: np.ndarray, *, bins: int = 20) -> float:
    """Mutual information gap (Chen et al., 2018): mean over factors of the gap between the
    two codes most informative about it, divided by the factor's entropy; needs >= 2 codes.

    On near-perfect codes MIG mostly measures their noise: Pendulum's true factors score
    0.817 (the shadow factors share information with the angles they are computed from), and
    the true factors plus Gaussian noise at R^2 = 0.999 already score about 0.64, at 0.995
    about 0.57 (20 bins on a factor cross a bin edge at small noise)."""
    gaps = mig_per_factor(codes, factors, bins=bins)
    return float(np.nanmean(gaps)) if np.isfinite(gaps).any() else float("nan")


def dci_scores(importance: np.ndarray) -> dict[str, float]:
    """Disentanglement and completeness (Eastwood & Williams 2018, Sec. 3) of an importance
    matrix ``R (D codes, K factors)``: ``D = sum_d rho_d (1 - H_K(P_d.))`` with
    ``rho_d = sum_k R_dk / sum R``, ``C = mean_k (1 - H_D(P_.k))``."""
    r = np.abs(np.asarray(importance, dtype=np.float64)) + 1e-12
    d_count, k_count = r.shape

    def entropy(p: np.ndarray, base: int) -> np.ndarray:
        return -(p * np.log(p)).sum(-1) / math.log(base) if base > 1 else np.zeros(len(p))

    p_codes = r / r.sum(1, keepdims=True)
    disent = 1.0 - entropy(p_codes, k_count)
    rho = r.sum(1) / r.sum()
    p_factors = (r / r.sum(0, keepdims=True)).T
    complete = 1.0 - entropy(p_factors, d_count)
    return {"disentanglement": float((rho * disent).sum()), "completeness": float(complete.mean())}


def dci(codes: np.ndarray, factors: np.ndarray, *, seed: int = 0) -> dict[str, float]:
    """DCI with gradient-boosted-tree importances (Locatello et al. 2019, ``disentanglement_lib``
    ``dci.py``; regressors here, as the factors are continuous).

    ``codes (n, D)``, ``factors (n, K)``: for each factor a
    ``sklearn.ensemble.GradientBoostingRegressor`` (default settings, seeded) is fitted on the
    even rows; its ``feature_importances_`` form column ``k`` of ``R``; informativeness is the
    mean R^2 on the odd rows. Returns ``{"disentanglement", "completeness",
    "informativeness"}``.
    """
    from sklearn.ensemble import GradientBoostingRegressor

    codes, factors = np.asarray(codes, np.float64), np.asarray(factors, np.float64)
    if (codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors)
            or len(codes) < MIN_TEST_ROWS):
        raise ValueError(f"codes (n, D) and factors (n, K) need the same n >= {MIN_TEST_ROWS} "
                         f"rows, got {codes.shape} and {factors.shape}")
    fit, held = slice(0, None, 2), slice(1, None, 2)
    importance = np.zeros((codes.shape[1], factors.shape[1]))
    informativeness = []
    for k in range(factors.shape[1]):
        reg = GradientBoostingRegressor(random_state=seed).fit(codes[fit], factors[fit, k])
        importance[:, k] = reg.feature_importances_
        informativeness.append(reg.score(codes[held], factors[held, k]))
    return {**dci_scores(importance), "informativeness": float(np.mean(informativeness))}


def dci_lite(codes: np.ndarray, factors: np.ndarray) -> dict[str, float]:
    """:func:`dci_scores` with the importance of code ``d`` for factor ``k`` taken as
    ``|W[d, k]|`` of a least-squares fit on standardised data (not the standard regressor:
    for comparison with earlier runs; see the module docstring)."""
    z = (codes - codes.mean(0)) / codes.std(0).clip(1e-8)
    y = (factors - factors.mean(0)) / factors.std(0).clip(1e-8)
    weights, *_ = np.linalg.lstsq(np.c_[z, np.ones(len(z))], y, rcond=None)
    return dci_scores(weights[:-1])


# --------------------------------------------------------------------- images
def ssim(a: Tensor, b: Tensor, *, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-image SSIM (Wang et al., 2004; Gaussian window, data range 1) of ``(n, 3, H, W)``
    images in [0, 1], averaged over channels and pixels; returns ``(n,)``."""
    c1, c2 = 0.01**2, 0.03**2
    x = torch.arange(window, dtype=a.dtype) - (window - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(a.shape[1], 1, window, window)

    def blur(t: Tensor) -> Tensor:
        return nn.functional.conv2d(t, kernel, groups=a.shape[1])

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    s = num / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


def _batched(fn: Callable[[Tensor], Any], images: np.ndarray, batch: int = 256) -> list[Any]:
    return [fn(as_image_batch(images[i : i + batch])) for i in range(0, len(images), batch)]


# --------------------------------------------------------------------- reader
class FactorReader(nn.Module):
    """A supervised conv regressor image -> factors (raw units), trained on real renders; it
    reads factors back from decoded images independently of the model being scored."""

    def __init__(self, names: Sequence[str], *, image_size: int, channels: int = 32) -> None:
        super().__init__()
        self.names = list(names)
        self.image_size, self.channels = image_size, channels
        self.net = ConvEncoder(len(self.names), image_size=image_size, channels=channels)
        self.register_buffer("loc", torch.zeros(len(self.names)))
        self.register_buffer("scale", torch.ones(len(self.names)))

    def forward(self, images: Tensor) -> Tensor:
        """Raw-unit factors ``(n, k)`` of images ``(n, 3, H, W)`` in [0, 1]."""
        return self.net(images)[0] * self.scale + self.loc

    def read(self, images: np.ndarray | Tensor) -> np.ndarray:
        """Factors of uint8 ``(n, H, W, 3)`` images or float ``(n, 3, H, W)`` tensors."""
        with torch.no_grad():
            if isinstance(images, Tensor) and images.dtype != torch.uint8:
                return torch.cat([self(images[i : i + 256])
                                  for i in range(0, len(images), 256)]).double().numpy()
            return torch.cat(_batched(self, np.asarray(images))).double().numpy()


def train_reader(
    data: ImageSet, *, steps: int = 400, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
    progress: bool = True,
) -> FactorReader:
    """Fit a :class:`FactorReader` on ``data`` (MSE on standardised factors, Adam)."""
    size = data.images.shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        reader = FactorReader(data.factor_names, image_size=size)
        y = torch.as_tensor(data.factors, dtype=torch.float32)
        reader.loc.copy_(y.mean(0))
        reader.scale.copy_(y.std(0).clamp_min(1e-8))
        target = (y - reader.loc) / reader.scale
        images = torch.as_tensor(data.images)
        opt = torch.optim.Adam(reader.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(seed)
        bar = tqdm(range(steps), desc="reader", disable=not progress, leave=False)
        for _ in bar:
            idx = torch.randint(len(data), (batch_size,), generator=gen)
            loss = ((reader.net(as_image_batch(images[idx]))[0] - target[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.set_postfix(mse=f"{float(loss.detach()):.4f}")
    reader.eval()
    return reader


def save_reader(reader: FactorReader, path: str | os.PathLike[str]) -> None:
    """Write ``path`` (safetensors) and ``path + '.json'`` (names, sizes, checksum)."""
    blob = save_tensors({k: v.contiguous() for k, v in reader.state_dict().items()})
    meta = {"names": reader.names, "image_size": reader.image_size, "channels": reader.channels,
            "sha256": hashlib.sha256(blob).hexdigest()}
    atomic_write(Path(path), blob)
    atomic_write(Path(f"{path}.json"), json.dumps(meta).encode())


def load_reader(path: str | os.PathLike[str]) -> FactorReader | None:
    """The reader saved at ``path``, or None if it is missing or does not match its checksum."""
    meta_path, blob_path = Path(f"{path}.json"), Path(path)
    if not (meta_path.exists() and blob_path.exists()):
        return None
    meta, blob = json.loads(meta_path.read_text()), blob_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
        log.warning("reader %s does not match its checksum; retraining", path)
        return None
    reader = FactorReader(meta["names"], image_size=meta["image_size"], channels=meta["channels"])
    reader.load_state_dict(load_tensors(blob))
    return reader.eval()


def cached_reader(
    dataset: str, image_size: int, *, steps: int = 400, seed: int = 0, progress: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> FactorReader:
    """The reader for ``dataset`` at ``image_size``, trained once and cached beside the data."""
    from models.data import cache_root

    name = f"reader-{dataset}-{image_size}px-s{steps}-seed{seed}.safetensors"
    path = cache_root(cache_dir) / name
    reader = load_reader(path)
    if reader is None:
        train = load_dataset(dataset, size=image_size, split="train", progress=progress)
        reader = train_reader(train, steps=steps, seed=seed, progress=progress)
        save_reader(reader, path)
    return reader


# --------------------------------------------------------------------- interventions
def intervention_fidelity(
    vae: CauFVAE,
    test: ImageSet,
    reader: FactorReader,
    *,
    n: int = 256,
    seed: int = 0,
    mode: str = "counterfactual",
) -> dict[str, dict[str, float]]:
    """For each factor ``f``: ``do(f := value of another test scene)`` on ``n`` test images.

    Returns ``{factor: {"mse", "ssim", "target_mae", "descendant_mae", "nondescendant_mae"}}``
    plus ``"mean"`` over factors; MAEs in standardised units of the reader's training labels.
    """
    if mode not in ("counterfactual", "interventional"):
        raise ValueError(f"mode must be 'counterfactual' or 'interventional', got {mode!r}")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(test), size=min(n, len(test)), replace=False))
    donors = rng.choice(len(test), size=len(rows))
    x = as_image_batch(test.images[rows])
    column = {name: i for i, name in enumerate(test.factor_names)}
    scale = reader.scale.double().numpy()
    out: dict[str, dict[str, float]] = {}
    for name in vae.factors:
        raw = test.factors[donors, column[name]].astype(np.float64)
        latent = vae.to_latent({name: raw})
        act = vae.counterfactual if mode == "counterfactual" else vae.interventional
        decoded, _ = act(x, latent)
        truth_img, truth_f = test.counterfactual({name: raw}, rows=rows)
        truth = as_image_batch(truth_img)
        read = reader.read(decoded)
        err = np.abs(read - truth_f) / scale  # (n, k), standardised
        desc = descendants(test.graph, {name})  # the truth, not the model's (maybe learned) graph
        idx = {k: column[k] for k in vae.factors}
        nondesc = [idx[k] for k in vae.factors if k != name and k not in desc]
        out[name] = {
            "mse": float(((decoded - truth) ** 2).mean()),
            "ssim": float(ssim(decoded, truth).mean()),
            "target_mae": float(err[:, idx[name]].mean()),
            "descendant_mae": (float(err[:, [idx[k] for k in desc]].mean()) if desc
                               else float("nan")),
            "nondescendant_mae": float(err[:, nondesc].mean()) if nondesc else float("nan"),
        }
    keys = next(iter(out.values())).keys()
    out["mean"] = {k: float(np.nanmean([v[k] for v in out.values()])) for k in keys}
    return out


def recovery(vae: CauFVAE, test: ImageSet) -> dict[str, Any]:
    """Factor recovery on ``test``: per-factor R^2 / Spearman, MIG, DCI (and DCI-lite), recon
    MSE; codes are the posterior means of all factor coordinates, ``(n_test, sum dims)``."""
    z = _batched(vae.encode, test.images)
    codes = torch.cat([vae.stack(b) for b in z]).double().numpy()
    first = np.concatenate([np.concatenate([b[f][:, :1].numpy() for f in vae.factors], 1)
                            for b in z])
    column = [test.factor_names.index(f) for f in vae.factors]
    raw = test.factors[:, column].astype(np.float64)
    truth = (raw - vae.label_loc.double().numpy()) / vae.label_scale.double().numpy()
    recon = _batched(lambda b: float(((vae.decode(vae.encode(b)) - b) ** 2).sum()), test.images)
    return {
        "factors": factor_scores(first, truth, vae.factors),
        "mig": mig(codes, raw),
        "mig_per_factor": dict(zip(vae.factors, map(float, mig_per_factor(codes, raw)),
                                   strict=True)),
        "dci": dci(codes, raw),
        "dci_lite": dci_lite(codes, raw),
        "recon_mse": sum(recon) / test.images.size,
    }


def evaluate_model(
    vae: CauFVAE, test: ImageSet, reader: FactorReader, *, n_interventions: int = 256, seed: int = 0
) -> dict[str, Any]:
    """All metrics of one model on ``test``; ``"summary"`` holds the headline numbers."""
    rec = recovery(vae, test)
    fid = intervention_fidelity(vae, test, reader, n=n_interventions, seed=seed)
    fidelity_int = intervention_fidelity(vae, test, reader, n=n_interventions, seed=seed,
                                         mode="interventional")
    summary = {
        "r2": float(np.mean([v["r2"] for v in rec["factors"].values()])),
        "spearman": float(np.mean([v["spearman"] for v in rec["factors"].values()])),
        "mig": rec["mig"], "dci_d": rec["dci"]["disentanglement"],
        "dci_c": rec["dci"]["completeness"], "dci_i": rec["dci"]["informativeness"],
        "recon_mse": rec["recon_mse"],
        **{f"cf_{k}": v for k, v in fid["mean"].items()},
    }
    return {"summary": summary, "recovery": rec, "counterfactual": fid,
            "interventional": fidelity_int}


def evaluate_run(
    run: str | os.PathLike[str],
    *,
    n_test: int | None = None,
    n_interventions: int = 256,
    reader: FactorReader | None = None,
    reader_steps: int = 400,
    seed: int = 0,
    progress: bool = True,
    write: bool = True,
) -> dict[str, Any]:
    """Score the run in ``run`` on its data set's test split and write ``run/metrics.json``.

    Args:
        run: a run directory written by :func:`models.train_vae.train_run`.
        n_test: use this many test images (evenly spaced), or all.
        n_interventions: test images per intervened factor in the fidelity scores.
        reader: factor regressor for read-back; default: :func:`cached_reader` (trained once
            per data set and size, ``reader_steps`` steps, cached).
        seed: picks the intervened images and their target values.
        write: write ``metrics.json`` (atomically).

    Returns:
        ``{"summary", "recovery", "counterfactual", "interventional", "run"}``.
    """
    from models.checkpoint import load_model

    if n_test is not None and (isinstance(n_test, bool) or not isinstance(n_test, int)
                               or n_test < MIN_TEST_ROWS):
        raise ValueError(f"n_test must be an int of at least {MIN_TEST_ROWS} (the disentanglement "
                         f"scores need {MIN_TEST_ROWS} rows), got {n_test!r}")
    vae, record = load_model(run)
    cfg = record["train"]
    test = run_images(cfg, "test", n=n_test, progress=progress)
    if reader is None:
        reader = cached_reader(cfg["dataset"], cfg["image_size"], steps=reader_steps,
                               progress=progress)
    metrics = evaluate_model(vae, test, reader, n_interventions=n_interventions, seed=seed)
    metrics["run"] = {"model": vae.kind, "epoch": record["epoch"], "step": record["step"],
                      "dataset": cfg["dataset"], "image_size": cfg["image_size"],
                      "n_test": len(test)}
    if write:
        atomic_write(Path(run) / METRICS, json.dumps(metrics, indent=2).encode())
    return metrics


def format_table(rows: Mapping[str, Mapping[str, float]]) -> str:
    """A plain-text table: one row per model, one column per summary metric."""
    cols = list(next(iter(rows.values())).keys())
    widths = [max(8, len(c)) + 2 for c in cols]
    head = f"{'model':18s}" + "".join(f"{c:>{w}s}" for c, w in zip(cols, widths, strict=True))
    lines = [head, "-" * len(head)]
    for name, row in rows.items():
        cells = (f"{row[c]:>{w}.1f}" if abs(row[c]) >= 100 else f"{row[c]:>{w}.4f}"
                 for c, w in zip(cols, widths, strict=True))
        lines.append(f"{name:18s}" + "".join(cells))
    return "\n".join(lines)
