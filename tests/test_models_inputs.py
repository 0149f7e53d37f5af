"""Image-model inputs that trained on NaN, rendered without bound or failed after the work:
each is refused up front with a one-line ``ValueError`` (or, for a loss that stops being
finite, a ``FloatingPointError``)."""

import numpy as np
import pytest
import torch
from torch import nn

from models.data.imageset import ImageSet
from models.loop import Loop
from models.metrics import evaluate_run
from models.train_vae import train_run

GRAPH = {"a": (), "b": ("a",)}


def _images(n: int = 4, h: int = 8, w: int = 8, factors: np.ndarray | None = None) -> ImageSet:
    f = np.zeros((n, 2), np.float32) if factors is None else factors
    return ImageSet(images=np.zeros((n, h, w, 3), np.uint8), factors=f, factor_names=("a", "b"),
                    graph=GRAPH, split="train", name="pendulum", index=np.arange(n))


def test_an_image_set_refuses_non_finite_factors_and_non_square_images():
    """NaN or infinite factors trained to NaN weights with exit 0; non-square images failed in
    the decoder's reshape."""
    bad = np.zeros((4, 2), np.float32)
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="factors \\['b'\\] hold NaN or infinite values"):
        _images(factors=bad)
    with pytest.raises(ValueError, match="images must be square"):
        _images(h=8, w=6)


class _NanLoss(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return (self.w * rows.float()).sum() * float("nan")


def test_a_non_finite_loss_stops_training():
    """A NaN loss (lr 1e6, or NaN data) was logged and checkpointed as if training went on."""
    with pytest.raises(FloatingPointError, match="training loss became nan"):
        Loop(_NanLoss()).step(torch.arange(4))


def test_run_sizes_are_checked_before_any_work(tmp_path):
    """``max_steps=0`` printed success and wrote nothing; one image trained to NaN (the
    factors' spread of one row); ``evaluate`` with 1-3 test rows failed after the work."""
    with pytest.raises(ValueError, match="max_steps must be a positive int, got 0"):
        train_run(tmp_path / "r", max_steps=0)
    with pytest.raises(ValueError, match="training needs at least 2 images, got 1"):
        train_run(tmp_path / "r1", data=_images(n=1, h=16, w=16), image_size=16, epochs=1)
    with pytest.raises(ValueError, match="n_test must be an int of at least 4"):
        evaluate_run(tmp_path / "nothing", n_test=1)


def test_caufvae_checks_images_and_factors():
    """uint8, channels-last or wrongly sized images failed 13 frames deep in torch's conv, and
    0-255 floats gave meaningless latents silently; a missing factor in ``decode`` was a bare
    ``KeyError``."""
    from models.caufvae import CauFVAE

    vae = CauFVAE({"a": [], "b": ["a"]}, image_size=16, channels=8, hidden=32)
    good = torch.rand(2, 3, 16, 16)
    assert set(vae.encode(good)) == {"a", "b"}
    for bad, fragment in [(torch.zeros(2, 3, 16, 16, dtype=torch.uint8), "torch.uint8"),
                          (good.permute(0, 2, 3, 1), "shape (2, 16, 16, 3)"),
                          (good * 255, "divide by 255")]:
        with pytest.raises(ValueError, match=fragment.replace("(", "\\(").replace(")", "\\)")):
            vae.encode(bad)
    with pytest.raises(ValueError, match="missing \\['b'\\]"):
        vae.decode({"a": torch.zeros(2, 1)})


def test_a_run_record_without_its_training_settings_is_named(tmp_path):
    import json

    from models.checkpoint import FORMAT, VERSION, read_record

    (tmp_path / "run.json").write_text(json.dumps({"format": FORMAT, "version": VERSION}))
    with pytest.raises(ValueError, match="lacks \\['model', 'train'"):
        read_record(tmp_path)
