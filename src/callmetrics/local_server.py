"""A server process run on this machine for development and tests, known by its PID.

What `callmetrics spark start|stop|status` and `callmetrics postgres start|stop|status` share:
reading a PID file, telling a live process from a zombie or a gone one, waiting for a port,
stopping by PID (a polite signal, then a firm one), and the command's start|stop|status
plumbing and its lines. Each server module says how it starts its own process.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

ACTIONS = ("start", "stop", "status")
NOT_RUNNING = 3  # the status code of `status` when the server is not running (as `pg_ctl`'s)


def read_pid(path: Path) -> int | None:
    """The PID written first in a PID file (None: no file, or no number in it)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
    """The process runs (a zombie, exited but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return running_from_status(status)


def running_from_status(status: str) -> bool:
    """From /proc/PID/status: not a zombie. A process whose first thread has exited shows the
    zombie state while its other threads still run (a JVM stopping its server does), so it is
    a zombie only when no other thread is left."""
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if not fields.get("State", "").strip().startswith("Z"):
        return True
    threads = fields.get("Threads", "1").strip()
    return threads.isdigit() and int(threads) > 1


def port_open(host: str, port: int) -> bool:
    """Something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float, gone: Callable[[], bool]) -> bool:
    """Wait until host:port accepts connections (True), the server is `gone` or the time is
    out (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return True
        if gone():
            return False
        time.sleep(0.5)
    return False


def terminate(
    pid: int,
    timeout: float,
    polite: signal.Signals = signal.SIGTERM,
    firm: signal.Signals = signal.SIGKILL,
) -> None:
    """Stop a process by its PID: `polite` (the server shuts down cleanly), then `firm` when it
    still runs after `timeout` seconds; returns once it is gone (or 10 s after `firm`)."""
    for sig, wait in ((polite, timeout), (firm, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid):
                return
            time.sleep(0.05)


class LocalServer(Protocol):
    """What the start|stop|status command needs to know of a server."""

    @property
    def base(self) -> Path: ...

    @property
    def port(self) -> int: ...

    def pid(self) -> int | None: ...


S = TypeVar("S", bound=LocalServer)


def add_command(sub: argparse._SubParsersAction, name: str, help_text: str) -> None:
    """`callmetrics NAME start|stop|status`."""
    sub.add_parser(name, help=help_text).add_argument("action", choices=ACTIONS)


def run_command(
    action: str,
    name: str,
    server: S,
    start: Callable[[S], bool],
    stop: Callable[[S], bool],
    *,
    use: str,
    export: str,
    status: Callable[[int], list[str]],
    starting: str | None = None,
) -> int:
    """Run `callmetrics NAME start|stop|status` on `server`. Progress goes to standard error;
    standard output holds what a shell or a person uses: the `export` line after a start, the
    `status` lines of a running server (for its PID). `use` ends the start's line ("build on it
    with"); `starting` is said before a start that will take a while."""
    if action == "start":
        if starting and server.pid() is None:
            print(f"callmetrics {name}: {starting}", file=sys.stderr)
        state = "started" if start(server) else "already running"
        print(
            f"callmetrics {name}: {state} (pid {server.pid()}, port {server.port}, "
            f"data {server.base}); {use}:",
            file=sys.stderr,
        )
        print(export)
        return 0
    if action == "stop":
        stopped = stop(server)
        print(
            f"callmetrics {name}: {'stopped' if stopped else 'not running'} ({server.base})",
            file=sys.stderr,
        )
        return 0
    pid = server.pid()
    if pid is None:
        print(f"not running ({server.base})")
        return NOT_RUNNING
    for line in status(pid):
        print(line)
    return 0
