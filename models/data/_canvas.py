"""A reusable off-screen matplotlib canvas that hands back a scene's pixels.

The CausalVAE generators draw each scene with pyplot on a 1 x 1 inch figure inside the default
axes box, with the axis switched off, and save it at 96 dpi. :class:`SceneCanvas` builds the same
figure once, with :class:`matplotlib.figure.Figure` and an Agg canvas bound to it directly, so
rendering never touches pyplot or the user's backend; the caller moves its artists between
scenes and calls :meth:`SceneCanvas.pixels`.

Smaller images are the 96-pixel drawing reduced by area averaging (what resizing the original
PNGs gives). Drawing straight at a low dpi is not used: Agg snaps the axes clip box to whole
pixels, which at 32 pixels shaves the pendulum's shadow (drawn on the axes' bottom edge) to a
faint grey line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib.style
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

ORIGINAL_SIZE = 96
"""The original generators' resolution (1 inch at 96 dpi)."""


@contextmanager
def default_style() -> Iterator[None]:
    """Temporarily use matplotlib's default rcParams (never the backend), so a user's style
    sheet cannot change our pixels. Equivalent to ``matplotlib.style.context("default")``."""
    with matplotlib.style.context("default"):
        yield


def area_weights(source: int, target: int) -> np.ndarray:
    """Area-averaging resampling matrix ``W`` of shape ``(target, source)``: output pixel ``o``
    averages source pixels over ``[o, o + 1) * source / target``; each row sums to 1."""
    scale = source / target
    lo = np.arange(target)[:, None] * scale
    pixel = np.arange(source)[None, :]
    overlap = np.clip(np.minimum(pixel + 1, lo + scale) - np.maximum(pixel, lo), 0.0, None)
    return overlap / scale


class SceneCanvas:
    """A square figure (1 inch at 96 dpi, or at ``dpi=size`` above 96) with one axes in the
    default box, limits ``xlim`` x ``ylim`` and the axis off; :meth:`pixels` returns it at
    ``size`` x ``size``. Build and use it inside :func:`default_style`.
    """

    def __init__(
        self, size: int, *, xlim: tuple[float, float], ylim: tuple[float, float]
    ) -> None:
        self.size = size
        self._dpi = max(size, ORIGINAL_SIZE)
        self._weights = None if size == self._dpi else area_weights(self._dpi, size)
        self.figure = Figure(figsize=(1.0, 1.0), dpi=self._dpi, facecolor="white")
        self._canvas = FigureCanvasAgg(self.figure)
        self.ax: Axes = self.figure.add_subplot()
        self.ax.set_xlim(xlim)
        self.ax.set_ylim(ylim)
        self.ax.set_axis_off()

    def pixels(self) -> np.ndarray:
        """Draw the figure and return its RGB pixels, shape ``(size, size, 3)``, dtype uint8."""
        self._canvas.draw()
        rgba = np.asarray(self._canvas.buffer_rgba())
        assert rgba.shape == (self._dpi, self._dpi, 4), rgba.shape
        if self._weights is None:
            return rgba[..., :3].copy()
        channels = rgba[..., :3].transpose(2, 0, 1).astype(np.float64)  # (3, dpi, dpi)
        small = self._weights @ channels @ self._weights.T  # (3, size, size)
        return np.clip(np.rint(small), 0, 255).astype(np.uint8).transpose(1, 2, 0).copy()


def check_size(size: int) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``size`` is an int number of pixels in 16..1024."""
    if isinstance(size, bool) or not isinstance(size, int | np.integer):
        raise TypeError(f"size must be an int number of pixels; got {type(size).__name__}")
    if not 16 <= size <= 1024:
        raise ValueError(f"size must be between 16 and 1024 pixels (e.g. 32, 64, 96); got {size}")
