"""Spark beside DuckDB on the same raw directory, in one run (`python -m callmetrics.bench.spark`).

Steps, each `callmetrics build` in a child process of its own (the same command a user runs):

1. a full build on DuckDB and a full build on a local Spark Thrift server (started by this
   run, `local[2]`, its own folder; `callmetrics spark start`'s code), in that order;
2. one nightly increment (one new day of calls plus late versions and late telemetry, as the
   main benchmark's), then an incremental build on each engine;
3. the marts of the two published warehouses compared (row counts, and rows on every column
   but the floating sums and `_loaded_at`), after the full build and after the increment.

Peak memory of a DuckDB build is the child's process tree (Dagster, dbt, DuckDB inside dbt);
of a Spark build, the child's tree (Dagster, dbt, the Thrift client, the copy into DuckDB)
*plus* the Thrift server JVM's resident memory, sampled together (the JVM is not the child's
descendant). CPU time counts the child's tree and the JVM's own CPU time over the step.

The raw directory is copied first (the increment adds files to it). Results go to
`<out>.json` and `<out>.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from callmetrics.bench.measure import tree_rss_bytes
from callmetrics.settings import (
    RAW_DIR_ENV,
    SPARK_DIR_ENV,
    SPARK_HOST_ENV,
    SPARK_PORT_ENV,
    TARGET_ENV,
    WAREHOUSE_ENV,
)

SAMPLE_SECONDS = 0.1
MIB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class BuildRun:
    engine: str
    kind: str  # full / increment
    wall_seconds: float
    peak_rss_bytes: int  # build process tree (+ the JVM on Spark), sampled together
    build_tree_peak_bytes: int
    jvm_peak_bytes: int
    cpu_seconds: float
    jvm_cpu_seconds: float
    load_average: tuple[float, float]
    step_seconds: dict[str, float] = field(default_factory=dict)
    notes: str = ""


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (and its waited-for children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after the command: state(0) ... utime(11) stime(12) cutime(13) cstime(14)
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK


class _Sampler(threading.Thread):
    def __init__(self, child: int, jvm: int | None) -> None:
        super().__init__(daemon=True)
        self.child, self.jvm = child, jvm
        self.peak = self.child_peak = self.jvm_peak = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            own = tree_rss_bytes(self.child)
            jvm = tree_rss_bytes(self.jvm) if self.jvm else 0
            self.child_peak = max(self.child_peak, own)
            self.jvm_peak = max(self.jvm_peak, jvm)
            self.peak = max(self.peak, own + jvm)
            self.halt.wait(SAMPLE_SECONDS)


def _steps_from_log(log: str) -> dict[str, float]:
    """Seconds per job step from `callmetrics build`'s progress lines ('- step' / 'ok (x s)')."""
    steps: dict[str, float] = {}
    current = None
    for line in log.splitlines():
        text = line.strip()
        if text.startswith("- "):
            current = text[2:]
        elif text.startswith("ok (") and current:
            steps[current] = float(text[4:].split()[0])
    return steps


def run_build(
    engine: str, kind: str, raw: Path, warehouse: Path, env: dict[str, str], jvm: int | None,
    log_path: Path,
) -> BuildRun:  # fmt: skip
    """`callmetrics build` in a child process, measured."""
    command = [sys.executable, "-m", "callmetrics.cli", "build"]
    child_env = {**os.environ, **env, RAW_DIR_ENV: str(raw), WAREHOUSE_ENV: str(warehouse),
                 TARGET_ENV: engine}  # fmt: skip
    load_before = os.getloadavg()[0]
    jvm_cpu_before = _cpu_seconds(jvm) if jvm else 0.0
    started = time.perf_counter()
    with log_path.open("w") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=child_env)
        sampler = _Sampler(child.pid, jvm)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        sampler.halt.set()
        sampler.join()
    wall = time.perf_counter() - started
    text = log_path.read_text(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        tail = "\n".join(text.splitlines()[-15:])
        raise RuntimeError(f"{engine} {kind} build failed (log {log_path}):\n{tail}")
    return BuildRun(
        engine=engine,
        kind=kind,
        wall_seconds=round(wall, 2),
        peak_rss_bytes=sampler.peak,
        build_tree_peak_bytes=sampler.child_peak,
        jvm_peak_bytes=sampler.jvm_peak,
        cpu_seconds=round(usage.ru_utime + usage.ru_stime, 1),
        jvm_cpu_seconds=round((_cpu_seconds(jvm) - jvm_cpu_before) if jvm else 0.0, 1),
        load_average=(load_before, os.getloadavg()[0]),
        step_seconds=_steps_from_log(text),
    )


def compare_marts(duck: Path, spark: Path) -> dict[str, Any]:
    """Per marts table: rows on each side and rows differing on every column but doubles and
    `_loaded_at` (EXCEPT ALL both ways)."""
    con = duckdb.connect()
    found: dict[str, Any] = {}
    try:
        con.execute("set timezone = 'UTC'")
        con.execute(f"attach '{duck}' as duck (read_only)")
        con.execute(f"attach '{spark}' as spark (read_only)")
        tables = [r[0] for r in con.execute(
            "select table_name from duckdb_tables() where database_name = 'duck' "
            "and schema_name = 'marts' order by 1").fetchall()]  # fmt: skip
        for table in tables:
            cols = [r[0] for r in con.execute(
                "select column_name from duckdb_columns() where database_name = 'duck' and "
                "schema_name = 'marts' and table_name = ? and data_type <> 'DOUBLE' "
                "and column_name <> '_loaded_at' order by column_index", [table],
            ).fetchall()]  # fmt: skip
            listed = ", ".join(f'"{c}"' for c in cols)
            counts = [con.execute(f"select count(*) from {db}.marts.{table}").fetchone()[0]
                      for db in ("duck", "spark")]  # fmt: skip
            differing = con.execute(
                f"select count(*) from ((select {listed} from duck.marts.{table} except all "
                f"select {listed} from spark.marts.{table}) union all (select {listed} from "
                f"spark.marts.{table} except all select {listed} from duck.marts.{table}))"
            ).fetchone()[0]
            found[table] = {"rows": counts[0], "spark_rows": counts[1], "differing": differing}
    finally:
        con.close()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m callmetrics.bench.spark")
    parser.add_argument("--raw", required=True, help="raw directory (copied, never changed)")
    parser.add_argument("--work", required=True, help="folder for the copy and the warehouses")
    parser.add_argument("--out", required=True, help="result path without suffix")
    parser.add_argument("--spark-memory", default="8g", help="the Thrift server's driver heap")
    parser.add_argument("--increment-calls", type=int, default=0,
                        help="calls of the new day (default: calls / days of the data)")
    parser.add_argument("--late-share", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--duckdb-memory-limit", default="3GB")
    args = parser.parse_args(argv)

    from callmetrics.generate import generate_increment
    from callmetrics.settings import PROJECT_ROOT
    from callmetrics.spark.server import Server, start, stop

    work = Path(args.work).absolute()
    work.mkdir(parents=True, exist_ok=True)
    raw = work / "raw"
    if not raw.exists():
        print(f"copying {args.raw} to {raw}", file=sys.stderr, flush=True)
        shutil.copytree(args.raw, raw)
    data = raw_facts(raw)
    home = work / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    server = Server(base=work / "spark-server", host="127.0.0.1", port=_free_port(),
                    memory=args.spark_memory)  # fmt: skip
    shutil.rmtree(server.base, ignore_errors=True)
    common = {"DAGSTER_HOME": str(home), "DBT_TARGET_PATH": str(work / "target"),
              "CALLMETRICS_DUCKDB_MEMORY_LIMIT": args.duckdb_memory_limit,
              SPARK_HOST_ENV: server.host, SPARK_PORT_ENV: str(server.port),
              SPARK_DIR_ENV: str(server.base)}  # fmt: skip
    warehouses = {e: work / e / "callmetrics.duckdb" for e in ("duckdb", "spark")}
    for path in warehouses.values():
        shutil.rmtree(path.parent, ignore_errors=True)
    started_at = datetime.now(UTC)
    runs: list[BuildRun] = []
    checks: dict[str, Any] = {}
    server_start = time.perf_counter()
    start(server)
    server_seconds = round(time.perf_counter() - server_start, 1)
    jvm = server.pid()
    jvm_idle = tree_rss_bytes(jvm) if jvm else 0
    increment: dict[str, Any] = {}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(finished: bool) -> None:
        """The results so far (after every build, so a run cut short still leaves its figures)."""
        result = {
            "started_at": started_at.isoformat(timespec="seconds"),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "complete": finished,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "duckdb": duckdb.__version__, "spark": _spark_version()},  # fmt: skip
            "data": {**data, "first_day": data["first_day"].isoformat(),
                     "last_day": data["last_day"].isoformat(), "raw": str(args.raw)},  # fmt: skip
            "spark_server": {
                "master": "local[2]", "driver_memory": args.spark_memory,
                "start_seconds": server_seconds, "idle_rss_bytes": jvm_idle,
            },  # fmt: skip
            "duckdb_memory_limit": args.duckdb_memory_limit,
            "increment": increment,
            "runs": [asdict(r) for r in runs],
            "marts_compared": checks,
        }
        out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        out.with_suffix(".md").write_text(report(result))

    try:
        for engine in ("duckdb", "spark"):
            print(f"full build on {engine}", file=sys.stderr, flush=True)
            runs.append(run_build(engine, "full", raw, warehouses[engine], common,
                                  jvm if engine == "spark" else None,
                                  work / f"{engine}-full.log"))  # fmt: skip
            write(finished=False)
        checks["full"] = compare_marts(*(warehouses[e].resolve() for e in ("duckdb", "spark")))
        day = data["last_day"] + timedelta(days=1)
        calls = args.increment_calls or max(1, data["calls"] // max(1, data["days"]))
        t0 = time.perf_counter()
        summary = generate_increment(raw, day=day, seed=args.seed, calls=calls,
                                     late_share=args.late_share)  # fmt: skip
        increment = {"day": day.isoformat(), "calls": calls, "late_share": args.late_share,
                     "generate_seconds": round(time.perf_counter() - t0, 1),
                     "rows": dict(summary.rows)}  # fmt: skip
        write(finished=False)
        for engine in ("duckdb", "spark"):
            print(f"nightly increment on {engine}", file=sys.stderr, flush=True)
            runs.append(run_build(engine, "increment", raw, warehouses[engine], common,
                                  jvm if engine == "spark" else None,
                                  work / f"{engine}-increment.log"))  # fmt: skip
            write(finished=False)
        checks["increment"] = compare_marts(
            *(warehouses[e].resolve() for e in ("duckdb", "spark"))
        )
    finally:
        stop(server)
    write(finished=True)
    print(out.with_suffix(".md").read_text())
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _spark_version() -> str:
    try:
        import pyspark

        return str(pyspark.__version__)
    except ImportError:
        return "not installed"


def raw_facts(raw: Path) -> dict[str, Any]:
    """Calls and days of a raw directory (distinct call ids; UTC days of started_at)."""
    con = duckdb.connect()
    try:
        con.execute("set timezone = 'UTC'")
        calls, first, last = con.execute(
            "select count(distinct id), min(started_at), max(started_at) from "
            "read_parquet(?, union_by_name = true, hive_partitioning = false)",
            [str(raw / "calls" / "**" / "*.parquet")],
        ).fetchone()
    finally:
        con.close()
    first_day, last_day = first.date(), last.date()
    return {"calls": int(calls), "first_day": first_day, "last_day": last_day,
            "days": (last_day - first_day).days + 1}  # fmt: skip


def _mib(value: int) -> str:
    return f"{value / MIB:,.0f} MiB"


def report(result: dict[str, Any]) -> str:
    data, spark = result["data"], result["spark_server"]
    runs = {(r["engine"], r["kind"]): r for r in result["runs"]}
    lines = [
        f"# Spark beside DuckDB: {data['calls']:,} calls over {data['days']} days",
        "",
        *([] if result.get("complete", True) else
          ["**Incomplete: the run stopped before every build below had run.**", ""]),
        f"Run {result['started_at']} to {result['finished_at']} on "
        f"{result['machine']['cpus']} CPUs (shared), Spark {result['machine']['spark']} "
        f"({spark['master']}, driver {spark['driver_memory']}, Thrift server started in "
        f"{spark['start_seconds']} s, {_mib(spark['idle_rss_bytes'])} resident when idle), "
        f"DuckDB {result['machine']['duckdb']} (memory limit {result['duckdb_memory_limit']}). "
        f"Data: {data['first_day']} to {data['last_day']} ({data['raw']}). Each build is "
        "`callmetrics build` (raw checks, dbt build with its tests, publishing, the nightly "
        "export); on Spark it includes copying the marts into the DuckDB work file.",
        "",
        "| build | engine | wall time | peak memory (all processes) | of which the Spark JVM "
        "| CPU time (build + JVM) | dbt step | load average before/after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind in ("full", "increment"):
        for engine in ("duckdb", "spark"):
            r = runs.get((engine, kind))
            if r is None:
                continue
            dbt = next((v for k, v in r["step_seconds"].items() if k.startswith("dbt")), None)
            jvm = _mib(r["jvm_peak_bytes"]) if engine == "spark" else "-"
            lines.append(
                f"| {kind} | {engine} | {r['wall_seconds']:.1f} s | {_mib(r['peak_rss_bytes'])} "
                f"| {jvm} | {r['cpu_seconds'] + r['jvm_cpu_seconds']:.0f} s | "
                f"{'-' if dbt is None else f'{dbt:.1f} s'} | "
                f"{r['load_average'][0]:.1f} / {r['load_average'][1]:.1f} |"
            )
    lines.append("")
    for kind in ("full", "increment"):
        d, s = runs.get(("duckdb", kind)), runs.get(("spark", kind))
        if d and s:
            ratio = s["wall_seconds"] / d["wall_seconds"]
            lines.append(f"- {kind}: Spark / DuckDB wall time {ratio:.2f}x")
    inc = result.get("increment") or {}
    if inc:
        lines.append(
            f"- the increment: {inc['calls']:,} calls on {inc['day']}, late share "
            f"{inc['late_share']}, generated in {inc['generate_seconds']} s"
        )
    for kind, tables in result["marts_compared"].items():
        bad = {t: v for t, v in tables.items() if v["differing"] or v["rows"] != v["spark_rows"]}
        rows = sum(v["rows"] for v in tables.values())
        verdict = "equal" if not bad else f"DIFFERENT: {bad}"
        lines.append(
            f"- marts after the {kind} build ({len(tables)} tables, {rows:,} rows; every column "
            f"but floating sums and _loaded_at): {verdict}"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
