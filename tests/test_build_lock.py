"""One build at a time, refused up front; a dead build's lock is taken over (issue 16, item 5).

Real `callmetrics build` processes on a small generated raw directory of the test's own.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from tests.clirun import Running, cli


def _lock_holder(warehouse: Path) -> dict | None:
    lock = warehouse.parent / "callmetrics.versions" / "build.lock"
    try:
        text = lock.read_text()
    except FileNotFoundError:
        return None
    return json.loads(text) if text.strip() else None


def test_a_second_build_fails_at_once_and_a_dead_builds_lock_is_taken_over(
    tmp_path: Path,
) -> None:
    from callmetrics.generation.base import generate_raw

    raw, warehouse = tmp_path / "raw", tmp_path / "wh" / "callmetrics.duckdb"
    generate_raw(raw, calls=600, days=5, orgs=3, resellers=1, seed=5, dirt_rate=0.02)
    first = Running(raw, warehouse, "build")
    try:
        first.wait_for(lambda: _lock_holder(warehouse) is not None)
        holder = _lock_holder(warehouse)
        assert holder is not None and holder["pid"] == first.process.pid
        first.wait_for_line("- dbt:")  # well into its run
        second = cli(raw, warehouse, "build", timeout=120)
        assert second.returncode == 2, second.stderr
        error = second.stderr.strip().splitlines()[-1]
        assert error.startswith("callmetrics build: error: another build of ")
        assert f"pid {first.process.pid}, started {holder['started_at']}" in error
        assert "Traceback" not in second.stderr
        assert not list((warehouse.parent / "callmetrics.versions").glob("v0*"))
        # the first build dies without any clean-up, as on a power cut
        os.killpg(first.process.pid, signal.SIGKILL)
        assert first.finish()[0] == -signal.SIGKILL
    finally:
        if first.process.poll() is None:
            os.killpg(first.process.pid, signal.SIGKILL)
            first.process.wait()
    assert _lock_holder(warehouse)["pid"] == first.process.pid  # left behind: stale
    third = cli(raw, warehouse, "build")
    assert third.returncode == 0, third.stderr
    assert f"taking over a stale build lock (pid {first.process.pid}, started" in third.stderr
    assert _lock_holder(warehouse) is None  # a clean end leaves the lock empty
    assert os.readlink(warehouse) == "callmetrics.versions/v000001/callmetrics.duckdb"
