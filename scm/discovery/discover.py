"""``discover``: one entry point over causal-learn's structure-learning methods."""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import numbers
import types
import typing
from typing import Any, Literal, get_args, get_origin

import numpy as np
import pandas as pd

from scm.discovery.data import DataKind, prepare
from scm.discovery.graph import DiscoveredGraph
from scm.discovery.knowledge import Knowledge
from scm.discovery.methods import DISCRETE_SCORES, DISCRETE_TESTS, RUNNERS, Method

logger = logging.getLogger(__name__)


def _runner(method: str) -> Any:  # noqa: ANN401 - one of the typed runners
    if method not in RUNNERS:
        allowed = ", ".join(repr(m) for m in RUNNERS)
        raise ValueError(f"method must be one of {allowed}; got {method!r}")
    return RUNNERS[method]


def method_options(method: str) -> dict[str, inspect.Parameter]:
    """The options ``method`` accepts, as ``{name: inspect.Parameter}`` (with defaults)."""
    params = inspect.signature(_runner(method)).parameters
    return {
        name: p
        for name, p in params.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "knowledge"
    }


def takes_knowledge(method: str) -> bool:
    """Does ``method`` accept background knowledge?"""
    return "knowledge" in inspect.signature(_runner(method)).parameters


def _check_value(method: str, name: str, value: object, hint: object) -> object:
    """Check ``value`` against the runner's annotation ``hint``; return it as plain Python."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise ValueError(
                f"{name} must be one of {allowed} for method {method!r}; got {value!r}"
            )
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]
    if hint is bool and not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be bool, got {value!r}")
    if hint in (int, float):
        # numpy scalars are fine; a bool is not a number here.
        wanted = numbers.Integral if hint is int else numbers.Real
        if not isinstance(value, wanted) or isinstance(value, bool | np.bool_):
            raise TypeError(f"{name} must be {hint.__name__}, got {value!r}")
        return hint(value)  # plain Python number, JSON-serialisable
    return bool(value) if hint is bool else value


def resolve_options(method: str, options: dict[str, Any]) -> dict[str, Any]:
    """Return every option of ``method`` with its given or default value, type-checked.

    Raises:
        ValueError: for an unknown method, an option the method does not take (the message
            lists those it does), or a value outside an option's allowed names.
        TypeError: for a value of the wrong type.
    """
    params = method_options(method)
    extra = sorted(set(options) - set(params))
    if extra:
        raise ValueError(
            f"option(s) {', '.join(extra)} do not apply to method {method!r}; its options are "
            f"{', '.join(params) or '(none)'}"
        )
    hints = typing.get_type_hints(_runner(method))
    return {
        name: _check_value(method, name, options.get(name, p.default), hints[name])
        for name, p in params.items()
    }


def data_kind(options: dict[str, Any]) -> DataKind:
    """``"discrete"`` for the chi-square/G-square tests and the BDeu score, else continuous."""
    if options.get("test") in DISCRETE_TESTS or options.get("score") in DISCRETE_SCORES:
        return "discrete"
    return "continuous"


def _needs(method: str, options: dict[str, Any]) -> str:
    for key in ("test", "score"):
        if key in options:
            return f"method={method!r} with {key}={options[key]!r}"
    return f"method={method!r}"


def check_inputs(
    df: pd.DataFrame,
    method: str,
    *,
    knowledge: Knowledge | None,
    options: dict[str, Any],
) -> tuple[Any, dict[str, Any], np.ndarray, list[str]]:
    """Validate everything :func:`discover` is given, before any search runs.

    Returns:
        ``(runner, resolved options, x of shape (n, d), column names)``.

    Raises:
        ValueError: as :func:`discover`.
    """
    runner = _runner(method)
    resolved = resolve_options(method, options)
    has_knowledge = knowledge is not None and not knowledge.is_empty
    if has_knowledge and not takes_knowledge(method):
        takers = ", ".join(repr(m) for m in RUNNERS if takes_knowledge(m))
        raise ValueError(
            f"method {method!r} does not take background knowledge; methods that do: "
            f"{takers} ('direct_lingam': tiers only)"
        )
    x, names = prepare(df, kind=data_kind(resolved), need=_needs(method, resolved))
    if has_knowledge:
        knowledge.check(names)  # type: ignore[union-attr]
    return runner, resolved, x, names


def discover(
    df: pd.DataFrame,
    method: Method = "pc",
    *,
    knowledge: Knowledge | None = None,
    **options: Any,  # noqa: ANN401 - checked against the method's runner signature
) -> DiscoveredGraph:
    """Learn a causal graph from a table with one of causal-learn's methods.

    Args:
        df: ``(n, d)`` table, one column per variable. Numeric columns for continuous tests and
            scores; categorical (or integer) columns for ``test="chisq"``/``"gsq"`` and
            ``score="bdeu"``, encoded as integer codes.
        method: ``"pc"``, ``"fci"`` (constraint-based), ``"ges"``, ``"grasp"``, ``"boss"``,
            ``"exact"`` (score-based), ``"direct_lingam"``, ``"ica_lingam"`` (linear
            non-Gaussian).
        knowledge: required/forbidden edges and tiers; taken by ``pc``, ``fci``, ``exact``
            and (tiers only) ``direct_lingam``. ``pc`` keeps required edges its tests would
            remove; ``fci`` raises when its result lacks one (see ``run_pc``/``run_fci``).
        **options: the method's options, e.g. ``alpha``, ``test``, ``depth`` (PC/FCI);
            ``score``, ``max_parents``, ``penalty`` (GES); ``seed`` (LiNGAM, GRaSP, BOSS).
            See the ``run_*`` functions in :mod:`scm.discovery.methods`.

    Returns:
        A :class:`DiscoveredGraph` over ``df``'s columns: a CPDAG for PC/GES/GRaSP/BOSS, a PAG
        for FCI, a DAG for exact search and LiNGAM. ``options`` records every resolved option.

    Raises:
        ValueError: unknown method/option/value, or bad data (see
            :func:`scm.discovery.data.prepare`), each in one line.

    >>> from scm import zoo
    >>> discover(zoo.collider().sample(2000), "pc", alpha=0.01).directed
    [('x1', 'x3'), ('x2', 'x3')]
    """
    runner, resolved, x, names = check_inputs(df, method, knowledge=knowledge, options=options)
    extra = {} if knowledge is None or knowledge.is_empty else {"knowledge": knowledge}
    # causal-learn prints from inside some searches (FCI's background-knowledge step prints
    # unconditionally); keep library output off the user's stdout and in the debug log.
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        edges = runner(x, names, **resolved, **extra)
    if printed.getvalue():
        logger.debug("causal-learn %s printed:\n%s", method, printed.getvalue())
    recorded = dict(resolved)
    if extra:
        recorded["knowledge"] = knowledge.to_dict()  # type: ignore[union-attr]
    return DiscoveredGraph(tuple(names), tuple(edges), method=method, options=recorded)
