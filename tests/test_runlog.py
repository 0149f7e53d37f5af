"""The per-epoch metrics files of a run (models/runlog.py)."""

import json

import pandas as pd
import pytest

from models.runlog import RunLog


def test_rows_append_and_a_repeated_epoch_replaces_the_tail(tmp_path) -> None:  # noqa: ANN001
    log = RunLog(tmp_path)
    log.write({"epoch": 1, "loss": 3.0})
    log.write({"epoch": 2, "loss": 2.0, "graph": {"a": ["b"]}})
    # a resume from the epoch-1 checkpoint repeats epoch 2: the old epoch-2 row must go
    RunLog(tmp_path).write({"epoch": 2, "loss": 1.5, "shd": 1})
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and rows[1]["loss"] == 1.5
    table = pd.read_csv(tmp_path / "metrics.csv")
    assert list(table["epoch"]) == [1, 2] and list(table["loss"]) == [3.0, 1.5]
    assert "graph" not in table.columns and table["shd"].isna().tolist() == [True, False]


def test_disabled_log_writes_nothing(tmp_path) -> None:  # noqa: ANN001
    RunLog(tmp_path, enabled=False).write({"epoch": 1, "loss": 1.0})
    assert not any(tmp_path.iterdir())


def test_row_without_the_key_is_refused(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="'epoch'"):
        RunLog(tmp_path).write({"loss": 1.0})
