"""Bad raw input is one clear line naming the file or table, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from callmetrics.errors import UserError
from callmetrics.preflight import check_raw_dir
from tests.fixtures.handmade import write_handmade_raw


def test_handmade_raw_dir_passes_and_is_inventoried(tmp_path: Path) -> None:
    inventory = check_raw_dir(write_handmade_raw(tmp_path / "raw"))
    assert {table: inventory.file_count(table) for table in inventory.files} == {
        "resellers": 1,
        "organizations": 1,
        "agents": 1,
        "calls": 1,
        "telemetry_events": 1,
    }


def test_missing_raw_dir(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"raw directory .*nope does not exist: set CALLMETRICS"):
        check_raw_dir(tmp_path / "nope")


def test_empty_raw_dir(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"raw directory .* is empty"):
        check_raw_dir(tmp_path)


def test_absent_table_folder(tmp_path: Path) -> None:
    raw = write_handmade_raw(tmp_path / "raw")
    for path in (raw / "agents").iterdir():
        path.unlink()
    (raw / "agents").rmdir()
    with pytest.raises(UserError, match=r"has no 'agents' folder"):
        check_raw_dir(raw)


def test_table_folder_without_parquet(tmp_path: Path) -> None:
    raw = write_handmade_raw(tmp_path / "raw")
    (raw / "resellers" / "part-0.parquet").unlink()
    with pytest.raises(UserError, match=r"raw table 'resellers' has no Parquet files"):
        check_raw_dir(raw)


def test_wrong_column_type_names_file_and_column(tmp_path: Path) -> None:
    raw = write_handmade_raw(tmp_path / "raw")
    bad = raw / "calls" / "extract=2025-01-12" / "part-0.parquet"
    bad.parent.mkdir()
    table = pq.read_table(raw / "calls" / "part-0.parquet")
    as_text = table.set_column(
        table.schema.get_field_index("started_at"),
        "started_at",
        pa.array([str(v) for v in table.column("started_at").to_pylist()]),
    )
    pq.write_table(as_text, bad)
    with pytest.raises(UserError) as info:
        check_raw_dir(raw)
    message = str(info.value)
    assert "calls/extract=2025-01-12/part-0.parquet" in message
    assert "'started_at' is string" in message and "timestamp" in message
    assert "\n" not in message


def test_missing_column(tmp_path: Path) -> None:
    raw = write_handmade_raw(tmp_path / "raw")
    path = raw / "telemetry_events" / "part-0.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["payload"]), path)
    with pytest.raises(UserError, match=r"telemetry_events/part-0.parquet has no column 'payload'"):
        check_raw_dir(raw)


def test_not_parquet(tmp_path: Path) -> None:
    raw = write_handmade_raw(tmp_path / "raw")
    (raw / "agents" / "broken.parquet").write_text("this is not parquet")
    with pytest.raises(UserError, match=r"agents/broken.parquet is not a readable Parquet file"):
        check_raw_dir(raw)


def test_extra_columns_are_ignored(tmp_path: Path) -> None:
    raw = write_handmade_raw(tmp_path / "raw")
    path = raw / "resellers" / "part-0.parquet"
    table = pq.read_table(path)
    pq.write_table(table.append_column("region", pa.array(["eu"] * table.num_rows)), path)
    check_raw_dir(raw)
