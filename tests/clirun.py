"""Run the real `callmetrics` command line as a process, with a test's own files."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from callmetrics.settings import PROJECT_ROOT


def cli_env(raw: Path, warehouse: Path) -> dict[str, str]:
    return {**os.environ, "CALLMETRICS_RAW_DIR": str(raw), "CALLMETRICS_WAREHOUSE": str(warehouse),
            "DBT_PROFILES_DIR": str(PROJECT_ROOT)}  # fmt: skip


def cli(
    raw: Path, warehouse: Path, *args: str, timeout: float = 900
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "callmetrics.cli", *args], cwd=PROJECT_ROOT,
        env=cli_env(raw, warehouse), capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


class Running:
    """A `callmetrics` process in its own session (like a terminal's foreground job), whose
    standard error is collected line by line while it runs."""

    def __init__(self, raw: Path, warehouse: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "callmetrics.cli", *args], cwd=PROJECT_ROOT,
            env=cli_env(raw, warehouse), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, test: Callable[[], bool], timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while not test():
            assert self.process.poll() is None, "\n".join(self.lines)
            assert time.monotonic() < deadline, "\n".join(self.lines)
            time.sleep(0.2)

    def wait_for_line(self, text: str, timeout: float = 600) -> None:
        self.wait_for(lambda: any(text in line for line in self.lines), timeout)

    def finish(self, timeout: float = 600) -> tuple[int, list[str]]:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=30)
        return code, self.lines
