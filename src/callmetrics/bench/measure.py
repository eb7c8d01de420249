"""Run one benchmark step in a fresh child process and measure its peak memory.

Each step runs in its own interpreter (``python -m callmetrics.bench.steps``), so the figures
of one step never include another's. Two memory figures are taken and the larger is reported:

- ``maxrss``: the largest single process of the step: the child's own ``VmHWM`` (counted from
  its ``exec``) or the ``ru_maxrss`` of the subprocesses it ran (dbt under Dagster). ``wait4``'s
  ``ru_maxrss`` for the child is kept for reference only: Linux carries the high-water mark of
  the forking parent across ``exec``, so it includes the harness's own memory;
- ``tree``: the sum of ``VmRSS`` over the child and all its descendants, sampled every 20 ms
  from ``/proc`` (catches a parent and a subprocess both holding memory at once).

``cpu_seconds`` is the user and system CPU time of the child and the descendants it waited
for (``wait4``): on a machine shared with other work it shows how much of a step's wall time
was its own work.

The step times itself in the child (the parts that matter, not interpreter start-up) and
writes its figures as JSON to a file the parent reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SAMPLE_SECONDS = 0.02


class StepFailed(RuntimeError):
    """A step's child process exited with an error; the message holds its log's tail."""


@dataclass
class StepRun:
    name: str
    figures: dict[str, Any]
    peak_rss_bytes: int
    maxrss_bytes: int
    tree_rss_bytes: int
    wait4_maxrss_bytes: int
    wall_seconds: float
    log: Path
    # CPU time (user + system) of the child and every descendant it waited for (dbt): on a
    # machine shared with other work, wall time grows with the competition, CPU time much less.
    cpu_seconds: float = 0.0
    # The machine's 1-minute load average before and after the step: above the CPU count,
    # other work competed with the step and its times are too slow.
    load_average: tuple[float, float] = (0.0, 0.0)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                found.extend(int(p) for p in handle.read().split())
        except OSError:
            continue
    return found


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss_bytes(root: int) -> int:
    """Resident memory of a process and all its descendants, now."""
    total, stack, seen = 0, [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += _rss_bytes(pid)
        stack.extend(_children(pid))
    return total


class _Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, tree_rss_bytes(self.pid))
            self.stop.wait(SAMPLE_SECONDS)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def run_step(
    name: str,
    args: dict[str, Any],
    work_dir: Path,
    env: dict[str, str] | None = None,
    key: str | None = None,
) -> StepRun:
    """Run step ``name`` with ``args`` in a fresh child; return its figures and peak memory.

    ``key`` names this run's result and log files in ``work_dir`` (default: the step name).
    """
    key = key or name
    work_dir.mkdir(parents=True, exist_ok=True)
    result_path = work_dir / f"{key}.json"
    log_path = work_dir / f"{key}.log"
    result_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "callmetrics.bench.steps", name, json.dumps(args),
               str(result_path)]  # fmt: skip
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with open(log_path, "w") as log:
        child = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        sampler = _Sampler(child.pid)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        sampler.stop.set()
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    load_after = os.getloadavg()[0]
    if child.returncode != 0 or not result_path.exists():
        raise StepFailed(
            f"step {key} failed (exit {child.returncode}); log {log_path}:\n{_tail(log_path)}"
        )
    figures = json.loads(result_path.read_text())
    own = figures.pop("memory", {})
    maxrss = max(own.get("self_hwm_bytes", 0), own.get("children_maxrss_bytes", 0))
    run = StepRun(
        name=key,
        figures=figures,
        peak_rss_bytes=max(maxrss, sampler.peak),
        maxrss_bytes=maxrss,
        tree_rss_bytes=sampler.peak,
        wait4_maxrss_bytes=usage.ru_maxrss * 1024,
        wall_seconds=wall,
        log=log_path,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        load_average=(load_before, load_after),
    )
    _run_path(work_dir, key).write_text(json.dumps(asdict(run), default=str))
    return run


def _run_path(work_dir: Path, key: str) -> Path:
    return work_dir / f"{key}.run.json"


def load_step(work_dir: Path, key: str) -> StepRun | None:
    """The measurement of step ``key`` kept in ``work_dir`` by an earlier run, if any."""
    path = _run_path(work_dir, key)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    data["log"] = Path(data["log"])
    data["load_average"] = tuple(data.get("load_average") or (0.0, 0.0))
    return StepRun(**data)
