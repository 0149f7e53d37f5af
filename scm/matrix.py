"""The data matrix that stacked flows train on: every node's columns, then the logs of the
nodes on a log scale (:mod:`scm.log_nodes`), and which of its columns each node models and
reads."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from scm.log_nodes import log_parents, positive_nodes
from scm.stacked import column_slices

if TYPE_CHECKING:
    from scm.scm import SCM


def log_column(node: str) -> str:
    """The name of ``node``'s log among the training matrix's columns (no node name has
    parentheses)."""
    return f"log({node})"


def matrix_columns(scm: SCM) -> dict[str, slice]:
    """Each column's slice of :func:`training_matrix`: every node's, then the log of every
    node on a log scale (:func:`~scm.log_nodes.positive_nodes`) under :func:`log_column`."""
    columns = column_slices(scm.nodes, scm.dims)
    end = sum(scm.dims.values())
    for node in positive_nodes(scm):
        columns[log_column(node)] = slice(end, end + scm.dims[node])
        end += scm.dims[node]
    return columns


def training_matrix(scm: SCM, rows: dict[str, Tensor]) -> Tensor:
    """Rows ``{node: (n, dim)}`` as the matrix ``(n, D')`` that stacked flows read: every
    node's columns in ``scm.nodes`` order, then the logs of those on a log scale (the value a
    log-scale flow models, or the input a child's conditioner reads), as
    :func:`matrix_columns` lays them out."""
    logs = [rows[k].log() for k in positive_nodes(scm)]
    return torch.cat([*(rows[k] for k in scm.nodes), *logs], -1)


def read_columns(scm: SCM) -> dict[str, list[str]]:
    """Each node's parents as the columns of :func:`matrix_columns` its conditioner reads (a
    parent's log where the mechanism reads the log)."""
    out = {}
    for node in scm.nodes:
        logged = set(log_parents(scm, node))
        out[node] = [log_column(p) if p in logged else p for p in scm.parents[node]]
    return out


def value_columns(scm: SCM) -> dict[str, str]:
    """The column of :func:`matrix_columns` that a node on the log scale models: its log."""
    return {k: log_column(k) for k in scm.nodes if scm.mechanisms[k].log_value}
