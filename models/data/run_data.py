"""Which images a training run used, so that a resume or a command on the run reads the same.

A run's ``run.json`` names its data set (``"pendulum"``, ``"flow"``); images handed to
``train_run(data=ImageSet(...))`` were recorded under the set's name alone, so a resume without
``data=`` trained on the rendered Pendulum set instead of the user's 40 images, and
``intervene`` / ``evaluate`` scored the run on Pendulum test images, silently (stress round,
``/work/notes/s19/stress_models``). A run now records where its images came from and their
SHA-256.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from .imageset import ImageSet, load_dataset


def data_fingerprint(data: ImageSet) -> str:
    """SHA-256 (hex) of an image set's images, factors, factor names and graph."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(data.images).tobytes())
    h.update(np.ascontiguousarray(data.factors, dtype=np.float32).tobytes())
    h.update(json.dumps([list(data.factor_names),
                         {k: list(v) for k, v in sorted(data.graph.items())}]).encode())
    return h.hexdigest()


def data_record(data: ImageSet) -> dict[str, Any]:
    """What ``run.json`` keeps about the training images: ``"data"`` (``"built-in"`` for a set
    :func:`~models.data.load_dataset` rendered, ``"user"`` for images a user supplied) and
    ``"data_sha256"``."""
    return {"data": "built-in" if data.built_in else "user",
            "data_sha256": data_fingerprint(data)}


def check_resume_data(cfg: Mapping[str, Any], data: ImageSet | None) -> None:
    """``ValueError`` unless a resume of a run with training settings ``cfg`` reads the images
    it was trained on: a run on user images needs the same ``data`` again (by SHA-256); a
    given ``data`` must match what the run recorded. Runs written before the record carry no
    SHA-256 and are not checked."""
    if cfg.get("data") == "user" and data is None:
        raise ValueError(
            "this run was trained on images passed as data= (sha256 "
            f"{cfg['data_sha256'][:12]}...); resume it from Python with the same ImageSet: "
            "train_run(out, resume=True, data=...); the command line reads built-in sets only")
    if data is not None and "data_sha256" in cfg and data_fingerprint(data) != cfg["data_sha256"]:
        raise ValueError(
            f"data= differs from the images this run was trained on (sha256 "
            f"{cfg['data_sha256'][:12]}..., factors recorded in the model): resume with the "
            "same ImageSet, or start a new run in another folder")


def run_images(
    cfg: Mapping[str, Any], split: str, *, n: int | None = None, progress: bool = False
) -> ImageSet:
    """The ``split`` of the built-in set a run with training settings ``cfg`` was trained on;
    ``ValueError`` for a run trained on user images (the commands that score or draw a run
    cannot reload those: load the model with ``models.checkpoint.load_model`` and pass your
    own test images to ``models.metrics.evaluate_model``, ``models.latents.discover_latents``
    or ``models.latents.encode_factors``)."""
    if cfg.get("data") == "user":
        raise ValueError(
            "this run was trained on images passed as data= to train_run (sha256 "
            f"{cfg['data_sha256'][:12]}...), which the run folder does not hold; its "
            f"{split} images cannot be reloaded here: load the model with "
            "models.checkpoint.load_model and pass your own images to "
            "models.metrics.evaluate_model, models.latents.discover_latents or "
            "models.latents.encode_factors")
    return load_dataset(cfg["dataset"], size=cfg["image_size"], split=split, n=n,
                        progress=progress)
