"""The one place that imports ArviZ: quiet about its refactor notice, 0.x and 1.x alike."""

from __future__ import annotations

import warnings
from typing import Any

with warnings.catch_warnings():
    # ArviZ 0.23 announces its 1.0 refactor with a FutureWarning at import time.
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

MAJOR = int(az.__version__.split(".")[0])


def from_dict(groups: dict[str, dict[str, Any]], **kwargs: Any) -> Any:
    """``az.from_dict`` for both APIs: 0.x takes groups as keywords, 1.x one dict of groups."""
    if MAJOR >= 1:
        return az.from_dict(groups, **kwargs)
    return az.from_dict(**groups, **kwargs)


__all__ = ["az", "from_dict"]
