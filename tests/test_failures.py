"""A user's situation is one line and a meaningful exit status, never a traceback; a failure
leaves no partial files, so a retry after fixing the cause succeeds (issue 16, item 4).

Real processes throughout: Ctrl-C is a real SIGINT to a real build's process group (what a
terminal sends), read-only and full disks are small tmpfs folders the test mounts itself (as
root; skipped, saying why, where mounting is not allowed).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.clirun import Running, cli
from tests.conftest import BuiltWarehouse


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from callmetrics.generation.base import generate_raw

    folder = tmp_path_factory.mktemp("failures") / "raw"
    generate_raw(folder, calls=600, days=5, orgs=3, resellers=1, seed=9, dirt_rate=0.02)
    return folder


def one_line(done: subprocess.CompletedProcess, status: int, *phrases: str) -> str:
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    for phrase in phrases:
        assert phrase in line, line
    return line


@contextmanager
def tmpfs(folder: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}): needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def resize(folder: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(folder)], check=True)


def fill(folder: Path) -> Path:
    """Fill the file system of `folder` to the last byte."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for chunk in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def test_ctrl_c_during_a_build_is_one_line_and_status_130(raw: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh" / "callmetrics.duckdb"
    build = Running(raw, warehouse, "build")
    try:
        build.wait_for_line("built staging.")  # dbt is running
        os.killpg(build.process.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
        status, lines = build.finish()
    finally:
        if build.process.poll() is None:
            os.killpg(build.process.pid, signal.SIGKILL)
    text = "\n".join(lines)
    assert status == 130, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    assert "DagsterExecutionInterruptedError" not in text
    assert lines[-1].startswith(
        "callmetrics build: interrupted during dbt: snapshot, seeds, models and tests; "
        "nothing was published"
    ), text
    assert [line for line in lines if "interrupted" in line] == [lines[-1]]
    log = (warehouse.parent / "build.log").read_text()
    assert lines[-1] in log  # the log tells the same, after what the processes printed
    assert not warehouse.exists()
    # the retry discards the unfinished work file and publishes
    again = cli(raw, warehouse, "build")
    assert again.returncode == 0, again.stderr
    assert os.readlink(warehouse) == "callmetrics.versions/v000001/callmetrics.duckdb"


def test_generate_on_a_read_only_and_on_a_full_folder(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as folder:
        done = cli(folder, folder / "wh.duckdb", "generate", "--out", str(folder / "raw"),
                   "--calls", "500", "--quiet")  # fmt: skip
        one_line(done, 2, "cannot write the raw data into", "Read-only file system")
    with tmpfs(tmp_path / "small", "200k") as folder:
        out = folder / "raw"
        done = cli(folder, folder / "wh.duckdb", "generate", "--out", str(out), "--calls",
                   "20000", "--days", "10", "--quiet")  # fmt: skip
        one_line(done, 2, "cannot write the raw data into", "No space left on device")
        assert not out.exists() or list(out.iterdir()) == []  # nothing partial is kept
        resize(folder, "64m")  # space freed: the same command now succeeds
        done = cli(folder, folder / "wh.duckdb", "generate", "--out", str(out), "--calls",
                   "20000", "--days", "10", "--quiet")  # fmt: skip
        assert done.returncode == 0, done.stderr


def test_build_with_an_unwritable_warehouse_folder(raw: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as folder:
        done = cli(raw, folder / "callmetrics.duckdb", "build", timeout=120)
        one_line(done, 2, "callmetrics build: error:", str(folder), "Read-only file system")


def test_a_full_disk_fails_one_step_cleanly_and_the_retry_succeeds(
    raw: Path, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "disk", "256m") as folder:
        warehouse = folder / "callmetrics.duckdb"
        versions = folder / "callmetrics.versions"
        first = cli(raw, warehouse, "build")
        assert first.returncode == 0, first.stderr
        live = os.readlink(warehouse)
        # the next build copies the live version (fewer than three exist): no room for it
        used = os.statvfs(folder)
        used_kib = (used.f_blocks - used.f_bfree) * used.f_frsize // 1024
        resize(folder, f"{used_kib + 512}k")
        second = cli(raw, warehouse, "build", "--full-refresh")  # the same raw files: not quiet
        line = one_line(second, 1, "callmetrics build: error:", "No space left on device",
                        "copying v000001 into the work file", "v000001 keeps serving")  # fmt: skip
        assert "build.log" in line
        assert os.readlink(warehouse) == live
        names = [p.name for p in versions.rglob("*")]
        assert [n for n in names if "copying" in n or ".tmp-" in n] == []
        assert not (versions / "work").exists()
        assert (folder / "build.log").stat().st_size > 0
        # an export onto the full disk keeps the old payload and leaves no temporary file
        payload = folder / "payload.json"
        payload.write_text("old\n")
        filler = fill(folder)
        done = cli(raw, warehouse, "export", "--start", "2025-02-01", "--end", "2025-03-01",
                   "--out", str(payload))  # fmt: skip
        one_line(done, 2, f"cannot write {payload}", "No space left on device")
        assert payload.read_text() == "old\n"
        assert not [p for p in folder.iterdir() if p.name.startswith(".payload.json")]
        filler.unlink()
        resize(folder, "256m")  # space freed: the same build now succeeds
        third = cli(raw, warehouse, "build", "--full-refresh")
        assert third.returncode == 0, third.stderr
        assert os.readlink(warehouse) == "callmetrics.versions/v000002/callmetrics.duckdb"


def test_export_from_the_first_instant_datetime_can_hold(
    handmade_warehouse: BuiltWarehouse,
) -> None:
    done = cli(handmade_warehouse.raw_dir, handmade_warehouse.warehouse, "export",
               "--start", "0001-01-01", "--end", "0001-01-02")  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)["data"]
    assert data["metrics"]["totalCalls"] == 0
    assert [d["date"] for d in data["dailyVolume"]] == ["0001-01-01", "0001-01-02"]
