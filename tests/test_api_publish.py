"""A nightly build and publish while 8 clients keep asking: no error response, and the new
version is served afterwards by the same server process, which lets go of the old one."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import date
from pathlib import Path

import httpx

from callmetrics.api.keys import create_key
from callmetrics.generation.base import generate_raw
from callmetrics.generation.increment import generate_increment
from callmetrics.settings import RAW_DIR_ENV, WAREHOUSE_ENV
from tests.api_support import running_server
from tests.conftest import build

CLIENTS = 8
LAST_DAY = date(2025, 3, 1)


def _open_files(pid: int) -> list[str]:
    fd_dir = Path(f"/proc/{pid}/fd")
    found = []
    for fd in fd_dir.iterdir():
        try:
            found.append(os.readlink(fd))
        except OSError:
            continue
    return found


def test_publish_while_clients_ask(tmp_path: Path) -> None:
    raw, warehouse = tmp_path / "raw", tmp_path / "warehouse" / "callmetrics.duckdb"
    generate_raw(raw, calls=1_500, days=10, orgs=4, resellers=2, seed=11, end_date=LAST_DAY,
                 dirt_rate=0.02)
    build(raw, warehouse)
    first_file = warehouse.resolve()
    keys = tmp_path / "keys.json"
    _, token = create_key(keys, "platform", None)
    headers = {"Authorization": f"Bearer {token}"}
    params = {"startDate": "2025-02-20T00:00:00Z", "endDate": "2025-03-02T23:59:59.999999Z"}

    with running_server(warehouse, keys, tmp_path / "server.log") as api:
        before = httpx.get(f"{api.url}/v1/metrics", params=params, headers=headers).json()
        assert before["meta"]["warehouseVersion"] == "v000001"
        stop = threading.Event()
        statuses: Counter[int] = Counter()
        versions: Counter[str] = Counter()
        failures: list[str] = []
        lock = threading.Lock()

        def keep_asking() -> None:
            with httpx.Client(base_url=api.url, headers=headers, timeout=60) as client:
                while not stop.is_set():
                    try:
                        response = client.get("/v1/metrics", params=params)
                    except httpx.HTTPError as exc:
                        with lock:
                            failures.append(repr(exc))
                        continue
                    with lock:
                        statuses[response.status_code] += 1
                        if response.status_code == 200:
                            versions[response.json()["meta"]["warehouseVersion"]] += 1
                        else:
                            failures.append(response.text[:300])

        threads = [threading.Thread(target=keep_asking) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        try:
            # The next night's extract arrives and the nightly build runs, in its own
            # process, as the scheduler would run it.
            generate_increment(raw, day=date(2025, 3, 2), seed=11, calls=200)
            env = {**os.environ, RAW_DIR_ENV: str(raw), WAREHOUSE_ENV: str(warehouse)}
            done = subprocess.run([sys.executable, "-m", "callmetrics.cli", "build"],
                                  capture_output=True, text=True, env=env, timeout=900,
                                  check=False)
            assert done.returncode == 0, done.stderr[-3000:]
            # Keep asking a little after the publish.
            after_publish = sum(versions.values())
            while sum(versions.values()) < after_publish + 4 * CLIENTS:
                threading.Event().wait(0.05)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=120)
        assert not failures, failures[:5]
        assert set(statuses) == {200} and statuses[200] > 4 * CLIENTS
        assert versions["v000002"] >= 4 * CLIENTS, versions

        after = httpx.get(f"{api.url}/v1/metrics", params=params, headers=headers).json()
        assert after["meta"]["warehouseVersion"] == "v000002"
        assert warehouse.resolve() != first_file
        # The new day's calls are counted, without a restart.
        assert (after["data"]["metrics"]["totalCalls"]
                > before["data"]["metrics"]["totalCalls"])
        assert (after["data"]["dailyVolume"][-1]["totalCalls"]
                > before["data"]["dailyVolume"][-1]["totalCalls"])
        # The old version's connections were closed once its requests were done.
        held = _open_files(api.process.pid)
        assert str(warehouse.resolve()) in held
        assert str(first_file) not in held
        assert "Traceback" not in api.log()
