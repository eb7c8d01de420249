"""callmetrics.local_server: what the Spark and PostgreSQL servers' commands share, on a real
child process (a sleeping Python) and a real listening socket, without either server."""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from callmetrics import local_server
from callmetrics.local_server import alive, port_open, read_pid, terminate, wait_for_port


def test_read_pid(tmp_path: Path) -> None:
    assert read_pid(tmp_path / "absent.pid") is None
    (tmp_path / "a.pid").write_text("4242\n/var/lib/data\n1700000000\n")  # postmaster.pid
    assert read_pid(tmp_path / "a.pid") == 4242
    (tmp_path / "b.pid").write_text("")
    assert read_pid(tmp_path / "b.pid") is None
    (tmp_path / "c.pid").write_text("pid\n")
    assert read_pid(tmp_path / "c.pid") is None


def test_terminate_a_process_that_ignores_the_polite_signal() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
         "print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    assert alive(child.pid)
    started = time.monotonic()
    terminate(child.pid, timeout=0.5)  # TERM is ignored: KILL after half a second
    assert child.wait(timeout=10) == -signal.SIGKILL
    assert time.monotonic() - started < 10
    assert not alive(child.pid)
    terminate(child.pid, timeout=0.5)  # gone: nothing to do


def test_wait_for_port() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_open("127.0.0.1", port)
        assert wait_for_port("127.0.0.1", port, 5, gone=lambda: False)
    assert not port_open("127.0.0.1", port)
    started = time.monotonic()
    assert not wait_for_port("127.0.0.1", port, 30, gone=lambda: True)  # gone: no waiting
    assert time.monotonic() - started < 5


@dataclass
class FakeServer:
    base: Path
    port: int = 5999
    running: int | None = None
    calls: list[str] = field(default_factory=list)

    def pid(self) -> int | None:
        return self.running


def _start(server: FakeServer) -> bool:
    server.calls.append("start")
    if server.running is not None:
        return False
    server.running = 77
    return True


def _stop(server: FakeServer) -> bool:
    server.calls.append("stop")
    was, server.running = server.running, None
    return was is not None


def _run(action: str, server: FakeServer) -> int:
    return local_server.run_command(
        action, "toy", server, _start, _stop, use="use it with", export="export X=1",
        status=lambda pid: [f"running: pid {pid}", "export X=1"], starting="starting (20 s)",
    )  # fmt: skip


def test_start_stop_status_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    local_server.add_command(parser.add_subparsers(dest="command"), "toy", "a server")
    assert parser.parse_args(["toy", "status"]).action == "status"
    server = FakeServer(base=tmp_path)
    assert _run("status", server) == local_server.NOT_RUNNING
    assert capsys.readouterr().out == f"not running ({tmp_path})\n"
    assert _run("start", server) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "callmetrics toy: starting (20 s)",
        f"callmetrics toy: started (pid 77, port 5999, data {tmp_path}); use it with:",
    ]
    assert captured.out == "export X=1\n"
    assert _run("start", server) == 0
    assert "already running (pid 77" in capsys.readouterr().err
    assert _run("status", server) == 0
    assert capsys.readouterr().out == "running: pid 77\nexport X=1\n"
    assert _run("stop", server) == 0
    assert capsys.readouterr().err == f"callmetrics toy: stopped ({tmp_path})\n"
    assert _run("stop", server) == 0
    assert capsys.readouterr().err == f"callmetrics toy: not running ({tmp_path})\n"
    assert server.calls == ["start", "start", "stop", "stop"]


def test_a_zombie_first_thread_with_live_threads_still_runs() -> None:
    from callmetrics.local_server import running_from_status

    assert running_from_status("Name:\tjava\nState:\tS (sleeping)\nThreads:\t80\n")
    assert running_from_status("Name:\tjava\nState:\tZ (zombie)\nThreads:\t41\n")
    assert not running_from_status("Name:\tjava\nState:\tZ (zombie)\nThreads:\t1\n")
