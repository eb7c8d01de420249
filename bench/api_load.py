"""Load test of `callmetrics serve`: N concurrent clients asking one organization x 30 days.

    .venv/bin/python bench/api_load.py --warehouse /path/to/callmetrics.duckdb \
        --clients 16 --seconds 30 --out bench/results/api-1m

It starts a real server process on 127.0.0.1 (a free port, its own keys file with one
organization key), warms it up, then runs `--clients` asyncio clients (httpx, keep-alive)
for `--seconds`, each sending its next request as soon as the last one is answered. It
reports errors (any status but 200, or a transport error), the median, 95th and 99th
percentile latency seen by the clients and the requests per second, beside the exporter's
own latency for the same request on one warm in-process connection (so the server's share
is visible), and the machine's load average before and after (the cores may be shared). The
organization is the one with the most calls in the 30 days; the range is the 30 whole UTC
days ending with the warehouse's last day of calls.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx

from callmetrics.api.keys import KEYS_ENV, create_key
from callmetrics.exporter import Exporter, parse_range
from callmetrics.settings import WAREHOUSE_ENV

WARMUP_SECONDS = 3.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pick_requests(warehouse: Path, days: int, windows: int) -> tuple[dict, list[dict]]:
    """The busiest organization's last ``days`` whole days with its calls in range, and
    distinct requests of the same size: every organization x ``windows`` ranges of ``days``
    days, each a day earlier than the one before, in a fixed shuffled order."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        (last,) = con.execute(
            "select cast(max(started_at) as date) from marts.fct_calls").fetchone()
        first = last - timedelta(days=days - 1)
        org, calls = con.execute(
            "select organization_id, count(*) from marts.fct_calls "
            "where started_at >= ? and started_at < ? group by 1 order by 2 desc, 1 limit 1",
            [datetime(first.year, first.month, first.day, tzinfo=UTC),
             datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)],
        ).fetchone()
        orgs = [o for (o,) in con.execute(
            "select organization_id from marts.dim_organizations order by 1").fetchall()]
    busiest = {"organizationId": org, "startDate": first.isoformat(),
               "endDate": last.isoformat(), "calls_in_range": calls}
    distinct = [
        {"organizationId": o, "startDate": (first - timedelta(days=shift)).isoformat(),
         "endDate": (last - timedelta(days=shift)).isoformat()}
        for o in orgs for shift in range(windows)
    ]
    random.Random(12).shuffle(distinct)
    return busiest, distinct


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def exporter_latency(warehouse: Path, org: str, start: str, end: str, runs: int) -> dict:
    window = parse_range(start, end)
    with Exporter(warehouse) as exporter:
        for _ in range(5):
            exporter.answer(window, org).to_json(indent=None)
        samples = []
        for _ in range(runs):
            began = time.perf_counter()
            exporter.answer(window, org).to_json(indent=None)
            samples.append((time.perf_counter() - began) * 1000)
    return {"runs": runs, "median_ms": statistics.median(samples),
            "p95_ms": percentile(samples, 95), "p99_ms": percentile(samples, 99)}


async def load(url: str, token: str, requests: list[dict[str, str]], clients: int,
               seconds: float) -> dict:
    """Run the clients; each request is the next of ``requests`` (cycled)."""
    following = itertools.cycle(requests)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits,
                                 timeout=30) as client:

        async def one_client(deadline: float, record: bool) -> None:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                try:
                    response = await client.get("/v1/metrics", params=next(following))
                    await response.aread()
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                elapsed = (time.perf_counter() - began) * 1000
                if record:
                    if status == "200":
                        latencies.append(elapsed)
                    else:
                        errors[status] = errors.get(status, 0) + 1

        warm = time.perf_counter() + WARMUP_SECONDS
        await asyncio.gather(*(one_client(warm, False) for _ in range(clients)))
        began = time.perf_counter()
        deadline = began + seconds
        await asyncio.gather(*(one_client(deadline, True) for _ in range(clients)))
        wall = time.perf_counter() - began
    done = len(latencies) + sum(errors.values())
    return {
        "requests": done, "ok": len(latencies), "errors": errors,
        "error_count": sum(errors.values()), "seconds": wall,
        "requests_per_second": done / wall,
        "median_ms": statistics.median(latencies) if latencies else None,
        "p95_ms": percentile(latencies, 95) if latencies else None,
        "p99_ms": percentile(latencies, 99) if latencies else None,
        "max_ms": max(latencies) if latencies else None,
    }


def server_durations(log: Path, offset: int) -> dict:
    """Median and p99 of the durations the server's access log gives for the requests logged
    after ``offset`` (time inside the server, without the client's and the network's)."""
    with open(log, "rb") as handle:
        handle.seek(offset)
        text = handle.read().decode("utf-8", "replace")
    samples = [float(m) for m in re.findall(r"GET /v1/metrics 200 ([0-9.]+)ms", text)]
    if not samples:
        return {"requests": 0}
    return {"requests": len(samples), "median_ms": statistics.median(samples),
            "p99_ms": percentile(samples, 99)}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", required=True, type=Path,
                        help="the published warehouse link (read-only)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--pool-size", type=int, default=4)
    parser.add_argument("--exporter-runs", type=int, default=200)
    parser.add_argument("--windows", type=int, default=250,
                        help="distinct ranges per organization in the all-distinct run")
    parser.add_argument("--out", type=Path, default=None,
                        help="write OUT.json and OUT.md (e.g. bench/results/api-1m)")
    args = parser.parse_args()

    busiest, distinct = pick_requests(args.warehouse, args.days, args.windows)
    org, start, end = busiest["organizationId"], busiest["startDate"], busiest["endDate"]
    params = {"startDate": start, "endDate": end, "organizationId": org}
    load_before = load_average()
    single = exporter_latency(args.warehouse, org, start, end, args.exporter_runs)

    with tempfile.TemporaryDirectory() as scratch:
        keys = Path(scratch) / "keys.json"
        _, token = create_key(keys, "platform", None, "load test")
        port = free_port()
        env = {**os.environ, WAREHOUSE_ENV: str(args.warehouse), KEYS_ENV: str(keys)}
        server_log = Path(scratch) / "server.log"
        log = open(server_log, "wb")  # noqa: SIM115
        server = subprocess.Popen(
            [sys.executable, "-m", "callmetrics.cli", "serve", "--port", str(port),
             "--pool-size", str(args.pool_size)],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            mark = server_log.stat().st_size
            same = asyncio.run(load(url, token, [params], args.clients, args.seconds))
            same["server_side"] = server_durations(server_log, mark)
            load_between = load_average()
            mark = server_log.stat().st_size
            different = asyncio.run(load(url, token, distinct, args.clients, args.seconds))
            different["server_side"] = server_durations(server_log, mark)
        finally:
            server.terminate()
            server_status = server.wait(timeout=60)
            log.close()
    load_after = load_average()
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, check=False).stdout.strip()
    report = {
        "request": busiest, "distinct_requests": len(distinct),
        "clients": args.clients, "pool_size": args.pool_size,
        "server_same_request": same, "server_distinct_requests": different,
        "exporter_single_request": single, "load_average_between": load_between,
        "server_exit_status": server_status,
        "load_average_before": load_before, "load_average_after": load_after,
        "cpus": os.cpu_count(), "python": platform.python_version(), "commit": git,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(text + "\n")
        args.out.with_suffix(".md").write_text(markdown(report))
    return 0


def markdown(r: dict) -> str:
    s, d, e = r["server_same_request"], r["server_distinct_requests"], \
        r["exporter_single_request"]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} ms"

    def errors(x: dict) -> str:
        return f"{x['error_count']} of {x['requests']:,}" + (f" {x['errors']}" if x["errors"]
                                                            else "")

    return "\n".join([
        f"# API load test ({r['measured_at']}, commit {r['commit']})",
        "",
        f"{r['clients']} concurrent clients, {s['seconds']:.0f} s per run, against `callmetrics "
        f"serve` (1 worker, pool of {r['pool_size']}) on 127.0.0.1; {r['cpus']} cores shared "
        "with the load generator and with other work. Same request: every request asks "
        f"organization `{r['request']['organizationId']}` (the busiest) for "
        f"{r['request']['startDate']} .. {r['request']['endDate']} "
        f"({r['request']['calls_in_range']:,} calls): after the first, answers come from the "
        "per-version answer cache. Distinct requests: every request is another organization "
        f"x 30-day range ({r['distinct_requests']:,} of them, none asked twice in the run), so "
        "each is computed by the exporter.",
        "",
        "| figure | target | same request | distinct requests |",
        "|---|---|---|---|",
        f"| errors | 0 | {errors(s)} | {errors(d)} |",
        f"| median latency | < 25 ms | {ms(s['median_ms'])} | {ms(d['median_ms'])} |",
        f"| 95th percentile | | {ms(s['p95_ms'])} | {ms(d['p95_ms'])} |",
        f"| 99th percentile | < 100 ms | {ms(s['p99_ms'])} | {ms(d['p99_ms'])} |",
        f"| requests per second | | {s['requests_per_second']:.1f} | "
        f"{d['requests_per_second']:.1f} |",
        f"| inside the server (access log): median, p99 | | "
        f"{ms(s['server_side'].get('median_ms'))}, {ms(s['server_side'].get('p99_ms'))} | "
        f"{ms(d['server_side'].get('median_ms'))}, {ms(d['server_side'].get('p99_ms'))} |",
        "",
        f"The exporter alone, on one warm in-process connection, for the busiest organization "
        f"request: median {ms(e['median_ms'])}, p95 {ms(e['p95_ms'])} ({e['runs']} runs).",
        "",
        f"Load average (1, 5, 15 min) before: {r['load_average_before']}, between the runs: "
        f"{r['load_average_between']}, after: {r['load_average_after']}. The server exited "
        f"with status {r['server_exit_status']} after SIGTERM.",
        "",
    ])


if __name__ == "__main__":
    sys.exit(main())
