"""The benchmark's steps, each run in a fresh child process by ``measure.run_step``.

``python -m callmetrics.bench.steps NAME ARGS_JSON RESULT_PATH`` runs one step and writes its
figures (seconds and counts) as JSON to RESULT_PATH. Every step calls the product's real
interface: the generator, ``callmetrics.pipeline.run_build``, the exporter, the CLI.
The warehouse and raw directory come from ``CALLMETRICS_WAREHOUSE`` and
``CALLMETRICS_RAW_DIR``, which the harness sets for every child.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Figures = dict[str, Any]
STEPS: dict[str, Callable[[dict[str, Any]], Figures]] = {}


def step(func: Callable[[dict[str, Any]], Figures]) -> Callable[[dict[str, Any]], Figures]:
    STEPS[func.__name__] = func
    return func


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (share in 0..1) of a non-empty list."""
    ordered = sorted(values)
    rank = math.ceil(round(share * len(ordered), 9))
    return ordered[min(max(rank, 1), len(ordered)) - 1]


def timings(samples: list[float]) -> Figures:
    return {
        "runs": len(samples),
        "median_seconds": statistics.median(samples),
        "p95_seconds": percentile(samples, 0.95),
        "min_seconds": min(samples),
        "max_seconds": max(samples),
    }


# -- data ------------------------------------------------------------------------------------


@step
def generate(args: dict[str, Any]) -> Figures:
    from callmetrics.bench.product import generate_raw

    raw = Path(args["raw_dir"])
    started = time.perf_counter()
    summary = generate_raw(raw, calls=args["calls"], days=args["days"], orgs=args["orgs"],
                           resellers=args["resellers"], seed=args["seed"],
                           end=args.get("end"))  # fmt: skip
    seconds = time.perf_counter() - started
    return {"seconds": seconds, **_raw_size(raw), "generated": summary}


@step
def inspect(args: dict[str, Any]) -> Figures:
    """What the later steps need to know about the data (not timed)."""
    from callmetrics.bench.inspect import inspect_raw

    return inspect_raw(Path(args["raw_dir"]), args.get("last_days", 30))


@step
def increment_generate(args: dict[str, Any]) -> Figures:
    from callmetrics.bench.product import generate_increment

    raw = Path(args["raw_dir"])
    before = _raw_size(raw)
    started = time.perf_counter()
    summary = generate_increment(raw, day=args["day"], seed=args["seed"], calls=args["calls"],
                                 late_share=args["late_share"],
                                 late_scale=args.get("late_scale", 1.0))  # fmt: skip
    seconds = time.perf_counter() - started
    after = _raw_size(raw)
    return {"seconds": seconds, "added_bytes": after["raw_bytes"] - before["raw_bytes"],
            "added_files": after["raw_files"] - before["raw_files"],
            "generated": summary}  # fmt: skip


def _raw_size(raw: Path) -> Figures:
    files = list(raw.rglob("*.parquet"))
    return {"raw_files": len(files), "raw_bytes": sum(p.stat().st_size for p in files)}


# -- references ------------------------------------------------------------------------------


@step
def floor(args: dict[str, Any]) -> Figures:
    from callmetrics.bench.floor import connect, run_floor

    con = connect(args.get("memory_limit"), Path(args["temp_dir"]))
    started = time.perf_counter()
    result = run_floor(con, Path(args["raw_dir"]))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": result.rows, "section_rows": result.section_rows,
            "counted_calls": result.total_calls}  # fmt: skip


@step
def naive(args: dict[str, Any]) -> Figures:
    from callmetrics.bench.naive import naive_payload

    samples, payload = [], None
    for _ in range(args["runs"]):
        started = time.perf_counter()
        payload = naive_payload(Path(args["raw_dir"]), args["org"], args["start"], args["end"])
        samples.append(time.perf_counter() - started)
    assert payload is not None
    Path(args["payload_out"]).write_text(json.dumps(payload, sort_keys=True))
    return {**timings(samples), "calls": payload["data"]["metrics"]["totalCalls"]}


# -- the pipeline ----------------------------------------------------------------------------


@step
def prepare(args: dict[str, Any]) -> Figures:
    """Parse the dbt project into the target path, as it is before any nightly run."""
    from callmetrics.bench.product import prepare_pipeline

    started = time.perf_counter()
    prepare_pipeline()
    return {"seconds": time.perf_counter() - started}


@step
def build(args: dict[str, Any]) -> Figures:
    from callmetrics.bench.dbt_timing import dbt_timing
    from callmetrics.bench.product import run_build

    publishing = _time_publishing()
    target = Path(os.environ["DBT_TARGET_PATH"])
    # dbt's run_results.json of each invocation, kept in the scratch target folder for
    # profiling after the run (copies keep their times, so a later build does not count them)
    label = args.get("label") or ("full" if args["full_refresh"] else "increment")
    kept = target / ("bench-run-results-" + label)
    shutil.rmtree(kept, ignore_errors=True)
    _keep_run_results(kept)
    since = time.time()
    started = time.perf_counter()
    status = run_build(full_refresh=args["full_refresh"])
    seconds = time.perf_counter() - started
    if status not in (0, None):
        raise SystemExit(f"run_build returned {status}")
    figures: Figures = {"seconds": seconds, **publishing, **_published_version()}
    figures.update(dbt_timing(target, since))
    figures["dagster_steps"] = _dagster_step_seconds(since)
    return figures


def _keep_run_results(into: Path) -> None:
    """Copy dbt's run_results.json out of each invocation's target folder before it is removed.

    The dbt assets delete a successful invocation's target folder; this wraps
    ``shutil.rmtree`` in the build's child process so the file is copied first (the folder is
    still removed, exactly as without the benchmark).
    """
    real_rmtree = shutil.rmtree
    copies = itertools.count()

    def rmtree_keeping_results(path: Any, *a: Any, **k: Any) -> Any:
        results = Path(path) / "run_results.json"
        if results.is_file():
            copy = into / str(next(copies)) / "run_results.json"
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(results, copy)
        return real_rmtree(path, *a, **k)

    shutil.rmtree = rmtree_keeping_results  # type: ignore[assignment]


def _dagster_step_seconds(since: float) -> dict[str, float]:
    """Wall time of each step of the job run just finished, from the Dagster instance; empty
    when the build started no run (a quiet night skips the job)."""
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        records = instance.get_run_records(limit=1)
        started = records[0].start_time if records else None
        if started is None or started < since:
            return {}
        stats = instance.get_run_step_stats(records[0].dagster_run.run_id)
    return {
        s.step_key: round(s.end_time - s.start_time, 3)
        for s in stats
        if s.start_time is not None and s.end_time is not None
    }


def _published_version() -> Figures:
    """What the store recorded for the version this build published: how its work file was
    prepared (fresh, reuse of an older version, or a copy of the live one), the publish step's
    own breakdown (checkpoint, Parquet copies, link switch) and the sizes it left."""
    try:
        from callmetrics.publishing.store import WarehouseStore
    except ImportError:
        return {}
    store = WarehouseStore.from_settings()
    live = store.live()
    if live is None:
        return {}
    path = store.live_path()
    parquet = store.parquet_dir / live.name
    return {
        "published_version": live.name,
        "work_method": live.method,
        "publish_breakdown_seconds": dict(live.publish_seconds),
        "warehouse_bytes": path.stat().st_size if path is not None and path.exists() else None,
        "parquet_bytes": sum(f.stat().st_size for f in parquet.rglob("*") if f.is_file())
        if parquet.is_dir()
        else None,
    }


def _time_publishing() -> Figures:
    """Time the publishing step inside ``run_build`` as its own figure.

    ``run_build`` prepares a work file and publishes it (``callmetrics.publishing``); the two
    methods are wrapped with a stopwatch, without changing what they do. The returned dict is
    filled in while the build runs.
    """
    figures: Figures = {}
    try:
        from callmetrics.publishing.store import WarehouseStore
    except ImportError:
        return figures

    def timed(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*a: Any, **k: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*a, **k)
            finally:
                key = f"{name}_seconds"
                figures[key] = figures.get(key, 0.0) + time.perf_counter() - started

        return wrapper

    for name, attr in (("publish", "publish_work"), ("prepare_work", "prepare_work")):
        if hasattr(WarehouseStore, attr):
            setattr(WarehouseStore, attr, timed(name, getattr(WarehouseStore, attr)))
    return figures


# -- the exporter ----------------------------------------------------------------------------


@step
def export_warm(args: dict[str, Any]) -> Figures:
    """Repeated payloads on one warm exporter connection: median and 95th percentile."""
    from callmetrics.exporter.api import Exporter
    from callmetrics.exporter.timerange import parse_range

    window = parse_range(args["start"], args["end"])
    org, reseller = args.get("org"), args.get("reseller")
    opened = time.perf_counter()
    with Exporter() as exporter:
        open_seconds = time.perf_counter() - opened
        payload = exporter.payload(window, organization_id=org, reseller_id=reseller)
        for _ in range(args.get("warmup", 3) - 1):
            exporter.payload(window, organization_id=org, reseller_id=reseller)
        samples = []
        for _ in range(args["runs"]):
            started = time.perf_counter()
            payload = exporter.payload(window, organization_id=org, reseller_id=reseller)
            payload.to_json()
            samples.append(time.perf_counter() - started)
    if args.get("payload_out"):
        Path(args["payload_out"]).write_text(payload.to_json())
    return {**timings(samples), "open_seconds": open_seconds,
            "calls": payload.data.metrics.total_calls}  # fmt: skip


@step
def export_all(args: dict[str, Any]) -> Figures:
    """The `callmetrics export-all` command, as a user runs it (cold: opens the warehouse)."""
    from callmetrics.cli import main

    out = Path(args["out"])
    started = time.perf_counter()
    status = main(["export-all", "--start", args["start"], "--end", args["end"], "--out", str(out)])
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"export-all exited {status}")
    files = [p for p in out.rglob("*.json") if p.name != "manifest.json"]
    return {"seconds": seconds, "files": len(files)}


@step
def hold_memory(args: dict[str, Any]) -> Figures:
    """Calibration: hold ``mib`` MiB resident for a moment (checks the memory measurement)."""
    block = bytearray(args["mib"] * 2**20)
    for offset in range(0, len(block), 4096):
        block[offset] = 1
    time.sleep(args.get("seconds", 0.2))
    return {"seconds": 0.0, "held_mib": len(block) // 2**20}


def own_peak_memory() -> dict[str, int]:
    """This process's high-water resident memory (``VmHWM``: since its ``exec``, so not the
    parent's memory a fork briefly shares) and the largest of its waited-for children's."""
    hwm = 0
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {"self_hwm_bytes": hwm, "children_maxrss_bytes": children}


def main(argv: list[str]) -> int:
    name, args_json, result_path = argv
    figures = STEPS[name](json.loads(args_json))
    figures["finished_at"] = datetime.now(UTC).isoformat()
    figures["memory"] = own_peak_memory()
    Path(result_path).write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
