"""`callmetrics export` and `callmetrics export-all`: output, files, manifest, and every
user mistake ending in one clear line and a non-zero status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from callmetrics.cli import main
from callmetrics.settings import WAREHOUSE_ENV
from tests.conftest import BuiltWarehouse
from tests.fixtures.handmade import EXPECTED_ORG1_PAYLOAD, ORG1_RANGE
from tests.reference_metrics import assert_valid_payload

START, END = ORG1_RANGE
# What `export` says it answered: the newest call version of the hand-made data is c-5's
# (updated 2025-01-11 00:02:00), and the first build publishes v000001.
EXPECTED_ORG1_META = {
    "startDate": "2025-01-10T00:00:00.000000Z", "endDate": "2025-01-11T23:59:59.999999Z",
    "timeZone": "UTC", "granularity": "day", "warehouseVersion": "v000001",
    "dataAsOf": "2025-01-11T00:02:00.000000Z",
}


@pytest.fixture
def warehouse_env(handmade_warehouse: BuiltWarehouse, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(WAREHOUSE_ENV, str(handmade_warehouse.warehouse))
    return handmade_warehouse.warehouse


def test_export_prints_the_payload(warehouse_env: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["export", "--start", START, "--end", END, "--org", "org-1"]) == 0
    out = capsys.readouterr().out
    body = json.loads(out)
    assert_valid_payload(body)
    assert body.pop("meta") == EXPECTED_ORG1_META
    assert body == EXPECTED_ORG1_PAYLOAD


def test_export_writes_a_file(warehouse_env: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "out" / "r-1.json"
    assert main(["export", "--start", START, "--end", END, "--reseller", "r-1",
                 "--out", str(target)]) == 0
    assert capsys.readouterr().out == ""
    body = json.loads(target.read_text())
    assert_valid_payload(body)
    assert body["data"]["metrics"]["totalCalls"] == 6
    assert [p.name for p in target.parent.iterdir()] == ["r-1.json"]  # no temp file left


def test_export_all_writes_every_scope_and_a_manifest(
    warehouse_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "exports"
    assert main(["export-all", "--start", START, "--end", END, "--out", str(out)]) == 0
    assert "wrote 6 payloads" in capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["range"] == {"start": "2025-01-10T00:00:00.000000Z",
                                 "end": "2025-01-11T23:59:59.999999Z"}
    assert manifest["generatedAt"].endswith("Z")
    listed = {(f["scope"], f["id"]): f for f in manifest["files"]}
    assert set(listed) == {("organization", "org-1"), ("organization", "org-2"),
                           ("organization", "org-3"), ("reseller", "r-1"),
                           ("reseller", "r-2"), ("all", None)}
    expected_calls = {"org-1": 5, "org-2": 1, "org-3": 1, "r-1": 6, "r-2": 0, None: 7}
    for (_, scope_id), entry in listed.items():
        body = json.loads((out / entry["path"]).read_text())
        assert_valid_payload(body)
        assert body["data"]["metrics"]["totalCalls"] == expected_calls[scope_id]
        assert entry["totalCalls"] == expected_calls[scope_id]
    assert json.loads((out / "organizations" / "org-1.json").read_text()) == EXPECTED_ORG1_PAYLOAD
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted([f["path"] for f in manifest["files"]] + ["manifest.json"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2025-01-10T25:00:00Z", "--end", END],
         "--start '2025-01-10T25:00:00Z' is not an ISO 8601 date or timestamp"),
        (["--start", START, "--end", "tomorrow"],
         "--end 'tomorrow' is not an ISO 8601 date or timestamp"),
        (["--start", "2025-01-12", "--end", "2025-01-11"],
         "--start '2025-01-12' is after --end '2025-01-11'"),
        (["--start", START, "--end", END, "--org", "org-9"],
         "organization 'org-9' not found"),
        (["--start", START, "--end", END, "--reseller", "r-9"],
         "reseller 'r-9' not found"),
        (["--start", START, "--end", END, "--org", "org-2", "--reseller", "r-1"],
         "organization 'org-2' not found under reseller 'r-1'"),
        (["--start", START, "--end", END, "--org", "org-1", "--reseller", "r-2"],
         "organization 'org-1' not found under reseller 'r-2'"),
        # An id full of quotes and semicolons is only an unknown id (it is a bound parameter).
        (["--start", START, "--end", END, "--org", "org-1' or '1'='1'; drop table x; --"],
         "organization \"org-1' or '1'='1'; drop table x; --\" not found"),
        (["--start", START, "--end", END, "--reseller", "'); select 1; --"],
         "reseller \"'); select 1; --\" not found"),
    ],
)
def test_bad_input(warehouse_env: Path, capsys: pytest.CaptureFixture, args: list[str],
                   message: str) -> None:
    assert main(["export", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("callmetrics export: error: ")
    assert message in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_missing_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "nowhere" / "callmetrics.duckdb"
    monkeypatch.setenv(WAREHOUSE_ENV, str(missing))
    assert main(["export-all", "--start", START, "--end", END,
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err == (f"callmetrics export-all: error: warehouse {missing} does not exist: run "
                   "`callmetrics build` (or point CALLMETRICS_WAREHOUSE at a built warehouse)\n")
    assert not (tmp_path / "x").exists()


def test_warehouse_not_built_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "callmetrics.duckdb"
    duckdb.connect(str(empty)).close()  # a DuckDB file without the marts
    monkeypatch.setenv(WAREHOUSE_ENV, str(empty))
    assert main(["export", "--start", START, "--end", END]) == 2
    err = capsys.readouterr().err
    assert f"warehouse {empty} is not built yet (missing marts." in err
    assert err.count("\n") == 1


def test_a_file_that_is_not_a_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture) -> None:
    junk = tmp_path / "callmetrics.duckdb"
    junk.write_text("this is not a database\n" * 100)
    monkeypatch.setenv(WAREHOUSE_ENV, str(junk))
    assert main(["export", "--start", START, "--end", END]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"callmetrics export: error: cannot open warehouse {junk}")
    assert err.count("\n") == 1


def test_subprocess_shows_no_traceback(handmade_warehouse: BuiltWarehouse) -> None:
    env = {**os.environ, WAREHOUSE_ENV: str(handmade_warehouse.warehouse)}
    done = subprocess.run(
        [sys.executable, "-m", "callmetrics.cli", "export", "--start", START, "--end", END,
         "--org", "no-such-org"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == ("callmetrics export: error: organization 'no-such-org' not found: "
                           "no organization has that id\n")
    ok = subprocess.run(
        [sys.executable, "-m", "callmetrics.cli", "export", "--start", START, "--end", END,
         "--org", "org-1"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {**EXPECTED_ORG1_PAYLOAD, "meta": EXPECTED_ORG1_META}
