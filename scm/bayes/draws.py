"""Posterior draws of a query's answer (a do-query, an effect, counterfactual rows)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from scm.bayes._arviz import az


class Draws:
    """One answer per posterior draw: an ``xarray.Dataset`` with dims ``(chain, draw, ...)``.

    Variables are named after the answer: one per column for ``do(...).sample(n)`` and
    ``counterfactual(...)`` (dims ``chain, draw, row``), ``"ate"`` for ``ate(...)`` (dims
    ``chain, draw``, plus ``dim`` for a vector outcome).

    Example:
        >>> import numpy as np, xarray as xr
        >>> d = Draws(xr.Dataset({"ate": (("chain", "draw"), np.ones((2, 50)))}))
        >>> float(d), d.summary()["mean"].item()
        (1.0, 1.0)
    """

    def __init__(self, dataset: xr.Dataset) -> None:
        missing = {"chain", "draw"} - set(dataset.dims)
        if missing:
            raise ValueError(f"posterior draws need dims 'chain' and 'draw'; missing {missing}")
        self.dataset = dataset

    def __getitem__(self, name: str) -> np.ndarray:
        """The draws of variable ``name`` as a numpy array ``(chain, draw, ...)``."""
        return self.dataset[name].to_numpy()

    @property
    def names(self) -> list[str]:
        return [str(k) for k in self.dataset.data_vars]

    def per_draw_means(self) -> xr.Dataset:
        """Each draw's mean over rows (E[x] under that draw's parameters); dims ``chain, draw``."""
        return self.dataset.mean("row") if "row" in self.dataset.dims else self.dataset

    def mean(self) -> pd.Series:
        """Posterior mean of each variable (averaged over rows too)."""
        out = {}
        for name, var in self.per_draw_means().mean(("chain", "draw")).data_vars.items():
            values = np.asarray(var).reshape(-1)
            for j, value in enumerate(values):
                out[str(name) if values.size == 1 else f"{name}[{j}]"] = float(value)
        return pd.Series(out)

    def interval(self, prob: float = 0.94, kind: str = "hdi") -> pd.DataFrame:
        """Credible interval per variable: ``kind="hdi"`` (highest density, ArviZ) or
        ``"eti"`` (equal tails); rows are averaged first. Returns columns ``lower, upper``."""
        if not 0.0 < prob < 1.0:
            raise ValueError(f"prob must be in (0, 1), got {prob!r}")
        data = self.per_draw_means()
        out = {}
        for name, var in data.data_vars.items():
            flat = var.to_numpy().reshape(var.sizes["chain"] * var.sizes["draw"], -1)
            for j, column in enumerate(flat.T):
                key = str(name) if flat.shape[1] == 1 else f"{name}[{j}]"
                if kind == "hdi":
                    out[key] = np.asarray(az.hdi(column, hdi_prob=prob), dtype=float)
                elif kind == "eti":
                    out[key] = np.quantile(column, [(1 - prob) / 2, (1 + prob) / 2])
                else:
                    raise ValueError(f"kind must be 'hdi' or 'eti', got {kind!r}")
        return pd.DataFrame(out, index=["lower", "upper"]).T

    def summary(self, hdi_prob: float = 0.94, *, by_row: bool = False) -> pd.DataFrame:
        """``az.summary``: posterior mean, sd and HDI of each variable (and R-hat / ESS when
        there are several chains). Rows are averaged per draw first unless ``by_row``."""
        data = self.dataset if by_row else self.per_draw_means()
        kind = "all" if data.sizes["chain"] > 1 else "stats"
        # A constant variable (an intervened node) has no spread: its MCSE / R-hat are NaN.
        with np.errstate(invalid="ignore", divide="ignore"):
            return az.summary(data, kind=kind, hdi_prob=hdi_prob)

    def __float__(self) -> float:
        """The posterior mean of the only (scalar) variable."""
        if len(self.names) != 1 or self.per_draw_means()[self.names[0]].ndim != 2:
            raise TypeError(f"float() needs one scalar variable; these draws hold {self.names}")
        return float(self.mean().iloc[0])

    def __repr__(self) -> str:
        sizes = dict(self.dataset.sizes)
        return f"Draws({self.names}, sizes={sizes})"
