"""Per-epoch metrics of a training run, as files people and tools read: ``metrics.jsonl`` (one
JSON object per epoch, every field), ``metrics.csv`` (the scalar fields, one row per epoch) and,
optionally, TensorBoard event files.

Only the main process writes (pass ``enabled=ctx.is_main``). A resumed run keeps appending to
the same files; rows from epochs the resumed run repeats are dropped, so the files always
describe the run that the checkpoint holds.
"""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from scm.io import atomic_write

JSONL, CSV = "metrics.jsonl", "metrics.csv"


class RunLog:
    """Append-only epoch metrics for the run directory ``root``.

    Args:
        root: the run directory.
        enabled: write anything at all (``False`` on ranks other than 0).
        tensorboard: also write TensorBoard scalars under ``root/tensorboard`` (needs the
            ``tensorboard`` package).
        key: the field that orders rows (``"epoch"``).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        enabled: bool = True,
        tensorboard: bool = False,
        key: str = "epoch",
    ) -> None:
        self.root, self.enabled, self.key = Path(root), enabled, key
        self.writer = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                raise ValueError(
                    "tensorboard logging needs the tensorboard package: pip install tensorboard"
                ) from err
            self.writer = SummaryWriter(str(self.root / "tensorboard"))

    def rows(self) -> list[dict[str, Any]]:
        """Every row written so far (empty when nothing was)."""
        file = self.root / JSONL
        if not file.exists():
            return []
        return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]

    def write(self, row: Mapping[str, Any]) -> None:
        """Add one epoch's metrics (must carry ``key``); rewrites the CSV from all rows."""
        if not self.enabled:
            return
        if self.key not in row:
            raise ValueError(f"a metrics row needs the field {self.key!r}; got {sorted(row)}")
        rows = [r for r in self.rows() if r.get(self.key, -1) < row[self.key]]
        rows.append(dict(row))
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(self.root / JSONL,
                     "".join(json.dumps(r, default=str) + "\n" for r in rows).encode())
        scalars = [{k: v for k, v in r.items() if _is_scalar(v)} for r in rows]
        atomic_write(self.root / CSV, pd.DataFrame(scalars).to_csv(index=False).encode())
        if self.writer is not None:
            step = int(row[self.key])
            for name, value in row.items():
                if name != self.key and _is_scalar(value):
                    self.writer.add_scalar(name, float(value), step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _is_scalar(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
