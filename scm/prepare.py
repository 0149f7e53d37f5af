"""What both maximum-likelihood fits do to a table before they split it: checks and choices."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from torch import Tensor

from scm.auto import categorical_for_coded_columns, size_declared_categoricals
from scm.frame import to_tensors
from scm.log_nodes import check_positive, choose_log_scales
from scm.mechanisms.categorical import check_category_codes
from scm.point_mass import hurdle_for_point_masses, shape_declared_hurdles
from scm.rows import check_enough_rows, distinct_rows, warn_about_columns, warn_if_few_rows

if TYPE_CHECKING:
    from scm.scm import SCM


def prepare_rows(
    scm: SCM, df: pd.DataFrame, stacklevel: int = 4
) -> tuple[dict[str, Tensor], tuple[int, Tensor | None]]:
    """The checks and choices both fits (:func:`scm.fit.fit_mle`, ``models.scm_fit.fit_scm``)
    make on the data before splitting it: returns ``(x, distinct)``, the rows ``{node: (n,
    dim)}`` and :func:`~scm.rows.distinct_rows`'s result. It refuses bad rows (too few, category
    codes out of range, values <= 0 on declared log scales, a declared hurdle without point
    masses), makes ``"auto"``'s columns with point masses at an end hurdles
    (:mod:`scm.point_mass`) and its coded columns categorical, gives nodes declared
    ``"categorical"`` by name their number of codes and those declared ``"hurdle"`` their atoms,
    warns about columns and few rows (``stacklevel`` as the caller's own warnings would count
    it), and chooses ``"auto"``'s log scales."""
    x = to_tensors(df, scm.dims)
    check_enough_rows(len(df))
    hurdle_for_point_masses(scm, x)  # first: a near-total atom beside a few values is no code
    categorical_for_coded_columns(scm, x, stacklevel=stacklevel + 1)
    size_declared_categoricals(scm, x)
    shape_declared_hurdles(scm, x)
    check_category_codes(scm.mechanisms, x, "data")
    check_positive(scm, x, "data")  # the declared (or loaded) log scales
    warn_about_columns(scm, x, stacklevel=stacklevel + 1)
    distinct = distinct_rows(x, scm)
    warn_if_few_rows(scm, distinct[0], stacklevel=stacklevel + 1)
    choose_log_scales(scm, x, distinct)
    return x, distinct
