"""A real `callmetrics serve` process on 127.0.0.1 and a free port, for the API tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from callmetrics.api.keys import KEYS_ENV
from callmetrics.settings import WAREHOUSE_ENV


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ApiServer:
    process: subprocess.Popen
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)  # type: ignore[arg-type]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the server by its PID; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


@contextmanager
def running_server(warehouse: Path, keys: Path, log_path: Path,
                   *extra: str) -> Iterator[ApiServer]:
    port = free_port()
    env = {**os.environ, WAREHOUSE_ENV: str(warehouse), KEYS_ENV: str(keys)}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "callmetrics.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port), *extra],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
    server = ApiServer(process, f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the server exited early:\n{server.log()}")
            try:
                httpx.get(f"{server.url}/openapi.json", timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"the server did not start:\n{server.log()}") from None
                time.sleep(0.1)
        yield server
    finally:
        server.stop()
