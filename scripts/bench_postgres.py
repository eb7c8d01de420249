"""Benchmark of publishing to PostgreSQL (README, "BI on PostgreSQL"), in one run:

1. a full `callmetrics build` of a raw directory (no PostgreSQL): the reference time;
2. publishing that version to an empty PostgreSQL database (a private server started here);
3. a night with nothing new: `callmetrics build` again with CALLMETRICS_POSTGRES_URL set, and
   the PostgreSQL part of its publish step (from the step's materialization metadata);
4. a tenant's one-organization x 30-day query on mart_metrics through row security, warm.

    .venv/bin/python scripts/bench_postgres.py --raw /work/bench1m/raw --out bench/postgres

The 1-minute load average is recorded beside each figure: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "callmetrics.cli"]


def load() -> float:
    return round(os.getloadavg()[0], 2)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def timed_build(env: dict[str, str], log: Path) -> tuple[float, float]:
    before = load()
    started = time.perf_counter()
    with log.open("w") as err:
        done = subprocess.run([*CLI, "build"], env=env, stderr=err, stdout=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"build failed, see {log}")
    return round(time.perf_counter() - started, 1), before


def postgres_seconds_of_last_publish(env: dict[str, str]) -> float:
    script = (
        "from dagster import AssetKey, DagsterInstance\n"
        "with DagsterInstance.get() as i:\n"
        "    e = i.get_latest_materialization_event(AssetKey(['warehouse', 'published_version']))\n"
        "    print(e.asset_materialization.metadata['postgres_seconds'].value)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--memory-limit", default="3GB")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()

    import psycopg

    from callmetrics.publishing import postgres, postgres_roles
    from callmetrics.publishing import postgres_server as server
    from callmetrics.publishing.store import WarehouseStore

    work = Path(tempfile.mkdtemp(prefix="callmetrics-bench-pg-"))
    work.chmod(0o755)  # the postgres user runs the server below it
    home = work / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    warehouse = work / "warehouse" / "callmetrics.duckdb"
    env = {
        **os.environ,
        "CALLMETRICS_RAW_DIR": str(args.raw.resolve()),
        "CALLMETRICS_WAREHOUSE": str(warehouse),
        "CALLMETRICS_DUCKDB_MEMORY_LIMIT": args.memory_limit,
        "DAGSTER_HOME": str(home),
        "DBT_PROFILES_DIR": str(PROJECT),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop(postgres.URL_ENV, None)
    where = server.Server(base=work / "postgres", port=free_port())
    results: dict[str, object] = {"raw": str(args.raw), "started_at": datetime.now(UTC).isoformat()}
    try:
        server.start(where)
        full_build, load_full = timed_build(env, work / "build1.log")
        results["full_build_seconds"] = full_build
        results["full_build_load_before"] = load_full
        results["full_build_load_after"] = load()
        print(f"full build {full_build} s (load {load_full})", flush=True)

        store = WarehouseStore(warehouse)
        live = store.live()
        assert live is not None
        path = store.live_path()
        assert path is not None
        before = load()
        report = postgres.publish_duckdb_version(where.url, path, live.number, live.name)
        results["postgres_full_publish"] = {
            "seconds": report.seconds,
            "rows": report.rows_loaded,
            "tables": len(report.loaded),
            "load_before": before,
            "load_after": load(),
        }
        results["postgres_full_publish_vs_build"] = round(
            report.seconds["total"] / full_build, 4
        )
        print(report.summary(), flush=True)

        env[postgres.URL_ENV] = where.url
        night, load_night = timed_build(env, work / "build2.log")
        night_pg = postgres_seconds_of_last_publish(env)
        results["night_nothing_new"] = {
            "build_seconds": night,
            "postgres_seconds": night_pg,
            "load_before": load_night,
            "load_after": load(),
        }
        print(f"night with nothing new: build {night} s, PostgreSQL {night_pg} s", flush=True)

        with postgres.connect(where.url) as admin:
            org, reseller = admin.execute(
                "select organization_id, reseller_id from bi_access.organizations "
                "where reseller_id is not null order by 1 limit 1"
            ).fetchone()
            last = admin.execute("select max(bucket_start) from marts.mart_metrics").fetchone()[0]
            tenants = {
                "organization": postgres_roles.create_login(admin, "organization", org),
                "reseller": postgres_roles.create_login(admin, "reseller", reseller),
            }
        end = last.replace(hour=0, minute=0, second=0, microsecond=0)
        start = end - timedelta(days=30)
        query = (
            "select sum(total_calls), sum(resolved_calls), sum(escalated_calls), "
            "sum(duration_us_sum), sum(latency_sample_count), sum(latency_ms_sum), "
            "sum(sentiment_calls), sum(positive_calls) from marts.mart_metrics "
            "where organization_id = %s and bucket_start >= %s and bucket_start < %s"
        )
        results["tenant_query"] = {"sql": query, "days": 30}
        for kind, made in tenants.items():
            url = (
                f"postgresql://{made.role}:{made.password}@127.0.0.1:{where.port}/"
                f"{server.DATABASE}"
            )
            with psycopg.connect(url, autocommit=True) as tenant:
                for _ in range(5):
                    tenant.execute(query, [org, start, end]).fetchone()
                times = []
                before = load()
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    answer = tenant.execute(query, [org, start, end]).fetchone()
                    times.append((time.perf_counter() - t0) * 1000)
                times.sort()
                results["tenant_query"][kind] = {  # type: ignore[index]
                    "median_ms": round(statistics.median(times), 2),
                    "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
                    "max_ms": round(times[-1], 2),
                    "total_calls": int(answer[0] or 0),
                    "load": before,
                }
            print(f"{kind} login, one org x 30 days: {results['tenant_query'][kind]}")  # type: ignore[index]
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True, text=True
        ).stdout.strip()
        results["commit"] = commit
        results["finished_at"] = datetime.now(UTC).isoformat()
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results-1m.json").write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results, indent=2))
    finally:
        server.stop(where)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
