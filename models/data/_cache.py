"""On-disk cache of rendered image sets: compressed ``.npz`` files, written atomically.

The directory is ``cache_dir`` if given, else ``$CAUFLOW_CACHE``, else ``~/.cache/cauflow``.
A file is written to a temporary name in the same directory and moved into place with
:func:`os.replace`, so a reader never sees half a file; files are read with
``allow_pickle=False``. A file that is missing or cannot be read counts as absent.
"""

from __future__ import annotations

import io
import logging
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from scm.io import atomic_write

logger = logging.getLogger(__name__)


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache directory: ``cache_dir``, else ``$CAUFLOW_CACHE``, else ``~/.cache/cauflow``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("CAUFLOW_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "cauflow"


def save_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` as a compressed ``.npz``, atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write(path, buffer.getvalue())


def load_arrays(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays stored at ``path``, or None if the file is missing or unreadable (logged)."""
    if not path.exists():
        return None
    try:
        # We open the file ourselves: np.load leaks its own handle when the zip is damaged.
        with open(path, "rb") as file, np.load(file, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        logger.warning("cache file %s is unreadable (%s); rebuilding it", path, error)
        return None
