"""Screenshots of the Dagster UI: start `dagster dev` in the project root, open the asset graph,
the marts group and the nightly schedule in headless Chromium, save PNGs (default: docs/images/).

    .venv/bin/python scripts/screenshot_dagster.py [--out DIR] [--port N]

Needs the Debian packages chromium and chromium-driver (`apt-get install -y chromium
chromium-driver`); nothing is downloaded. Chromium is driven through chromedriver's W3C
WebDriver HTTP API with the standard library only. DAGSTER_HOME defaults to the project's
dagster_home/ (telemetry off in its dagster.yaml).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1800,1000",
]
ALT = "\ue00a"
LOCATION_QUERY = (
    "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
    "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 60) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        text = response.read().decode()
    return json.loads(text) if text else None


def wait_for(what: str, probe: Callable[[], Any], seconds: float, alive: Callable[[], bool]) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive():
            raise SystemExit(f"screenshot_dagster: gave up waiting for {what}: a process exited")
        try:
            value = probe()
        except (OSError, urllib.error.URLError, ValueError):
            value = None
        if value:
            return value
        time.sleep(2)
    raise SystemExit(f"screenshot_dagster: timed out waiting for {what}")


class Dagster:
    """`dagster dev` in its own process group, stopped (only that group) on exit."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        bin_dir = Path(sys.executable).parent
        env = dict(os.environ)
        env.setdefault("DAGSTER_HOME", str(ROOT / "dagster_home"))
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        self.log = log
        self.process = subprocess.Popen(
            [str(bin_dir / "dagster"), "dev", "-p", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def graphql(self, query: str) -> Any:
        return http("POST", f"{self.url}/graphql", {"query": query}, timeout=20)

    def wait_loaded(self) -> None:
        def probe() -> bool:
            entries = self.graphql(LOCATION_QUERY)["data"]["workspaceOrError"]["locationEntries"]
            if not entries or any(e["loadStatus"] != "LOADED" for e in entries):
                return False
            for entry in entries:
                loaded = entry["locationOrLoadError"] or {}
                if loaded.get("__typename") != "RepositoryLocation":
                    raise SystemExit(f"screenshot_dagster: code location failed: {loaded}")
            return True

        wait_for("the code location to load", probe, 600, self.alive)
        # The first visit from localhost shows a newsletter dialog over the page: mark it seen.
        self.graphql("mutation { setNuxSeen }")

    def stop(self) -> None:
        if not self.alive():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class Browser:
    """Headless Chromium through chromedriver's WebDriver API."""

    def __init__(self, profile: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        driver = shutil.which("chromedriver")
        chromium = shutil.which("chromium")
        if not driver or not chromium:
            raise SystemExit(
                "screenshot_dagster: needs chromium and chromedriver "
                "(apt-get install -y chromium chromium-driver)"
            )
        self.process = subprocess.Popen(
            [driver, f"--port={self.port}"],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for("chromedriver", lambda: http("GET", f"{self.url}/status"), 60, self.alive)
        options = {"binary": chromium, "args": [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]}
        session = http(
            "POST",
            f"{self.url}/session",
            {"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}},
        )
        self.session = f"{self.url}/session/{session['value']['sessionId']}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def open(self, url: str) -> None:
        http("POST", f"{self.session}/url", {"url": url}, timeout=120)

    def run(self, script: str) -> Any:
        return http("POST", f"{self.session}/execute/sync", {"script": script, "args": []})[
            "value"
        ]

    def wait_text(self, text: str, seconds: float = 120) -> None:
        probe = f"return document.body && document.body.innerText.includes({json.dumps(text)});"
        wait_for(f"'{text}' on the page", lambda: self.run(probe), seconds, self.alive)

    def alt_key(self, key: str) -> None:
        keys = [
            {"type": "keyDown", "value": ALT},
            {"type": "keyDown", "value": key},
            {"type": "keyUp", "value": key},
            {"type": "keyUp", "value": ALT},
        ]
        http(
            "POST",
            f"{self.session}/actions",
            {"actions": [{"type": "key", "id": "keyboard", "actions": keys}]},
        )

    def screenshot(self, path: Path) -> None:
        png = base64.b64decode(http("GET", f"{self.session}/screenshot")["value"])
        path.write_bytes(png)
        print(f"saved {path} ({len(png):,} bytes)")

    def quit(self) -> None:
        with contextlib.suppress(OSError, urllib.error.URLError):
            http("DELETE", self.session)
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--port", type=int, default=0, help="dagster dev port (default: free)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="screenshot-dagster-") as tmp:
        work = Path(tmp)
        dagster = Dagster(args.port or free_port(), work / "dagster.log")
        browser: Browser | None = None
        try:
            print(f"dagster dev on {dagster.url} (log {dagster.log})")
            dagster.wait_loaded()
            print("code location loaded")
            browser = Browser(work / "profile", work / "chromedriver.log")
            browser.open(f"{dagster.url}/asset-groups")
            browser.wait_text("Global asset lineage")
            browser.wait_text("marts")
            time.sleep(8)  # layout and the fit-to-screen animation
            browser.screenshot(args.out / "dagster-asset-graph.png")
            # One mart's lineage, every asset shown: raw files to the payloads.
            browser.open(f"{dagster.url}/assets/marts/mart_metrics?view=lineage&lineageDepth=4")
            browser.wait_text("int_calls")
            time.sleep(8)
            browser.screenshot(args.out / "dagster-mart-lineage.png")
            browser.open(f"{dagster.url}/locations/callmetrics/schedules/nightly_schedule")
            browser.wait_text("nightly_schedule")
            time.sleep(5)
            browser.screenshot(args.out / "dagster-nightly-schedule.png")
        except SystemExit:
            print((work / "dagster.log").read_text()[-3000:], file=sys.stderr)
            if browser is not None:  # what the page showed, kept out of the docs folder
                browser.screenshot(Path(tempfile.gettempdir()) / "screenshot_dagster-failed.png")
            raise
        finally:
            if browser is not None:
                browser.quit()
            dagster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
