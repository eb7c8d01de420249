"""One benchmark run at one scale: every step in its own child, then the result tables.

Order (the references run on exactly the data the full build reads):

1. generate the raw directory (or, with `--raw`, mirror an existing one as symbolic links,
untimed);  2. inspect it (untimed: date range, busiest organization and
reseller);  3. the floor query;  4. the naive pandas payload;  5. parse the dbt project
(untimed, as it is before any nightly run);  6. the full build, then a build with no new
file (a quiet night: the check says nothing arrived), then a build after one raw file is
rewritten with the same rows (the check sees a change, dbt runs and finds nothing new: the
fixed costs of a dbt run);  7. the exporter: one
organization over 30 days and one reseller over 30 days (warm, repeated), all organizations
over the whole range (warm, repeated), `export-all` over the trailing 30 days;  8. the nightly
increment: one new day of calls plus late versions and late telemetry, generated (timed apart)
then built incrementally.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from callmetrics.bench.measure import StepRun, load_step, run_step
from callmetrics.bench.report import Report, write_report
from callmetrics.settings import PROJECT_ROOT, RAW_DIR_ENV, WAREHOUSE_ENV

MEMORY_LIMIT_ENV = "CALLMETRICS_DUCKDB_MEMORY_LIMIT"
# Steps that only read the raw data: `--resume` keeps their measurements (and the raw data) from
# an earlier attempt that stopped later. The product's steps always run again.
RESUMABLE_STEPS = ("generate", "inspect", "floor", "naive")
EXPORT_DIR_ENV = "CALLMETRICS_EXPORT_DIR"


@dataclass
class BenchConfig:
    calls: int
    days: int
    out: Path
    work: Path
    seed: int = 42
    orgs: int = 100
    resellers: int = 10
    end: str | None = None
    memory_limit: str | None = None
    export_runs: int = 100
    all_orgs_runs: int = 10
    naive_runs: int = 3
    late_share: float = 0.02
    # the increment of a history of this many calls (its new day and its late work), whatever
    # the history's own size: a 10M run given 1M replays the 1M run's arrival, so the two runs'
    # increments differ only by the history under them (None: this history's own increment)
    increment_as_of: int | None = None
    keep: bool = False
    resume: bool = False
    # the build after a rewritten raw file publishes a second version: the increment's work file
    # is then a third (three warehouse files on disk at once)
    touched_build: bool = True
    name: str | None = None
    notes: list[str] = field(default_factory=list)
    # an existing raw directory (read-only) mirrored as symbolic links instead of generating
    raw_source: Path | None = None

    @property
    def increment_history(self) -> int:
        """The history size whose increment the run generates (see increment_as_of)."""
        return min(self.increment_as_of or self.calls, self.calls)

    @property
    def label(self) -> str:
        return self.name or f"calls-{self.calls}-days-{self.days}"


def _say(message: str) -> None:
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    print(f"[bench {stamp}] {message}", flush=True)


class Bench:
    def __init__(self, config: BenchConfig) -> None:
        self.config = config
        self.work = config.work.resolve()
        self.raw = self.work / "raw"
        self.logs = self.work / "steps"
        self.runs: dict[str, StepRun] = {}
        self.resuming = config.resume
        self.resumed: list[str] = []
        self.env = {
            RAW_DIR_ENV: str(self.raw),
            WAREHOUSE_ENV: str(self.work / "warehouse" / "callmetrics.duckdb"),
            "DBT_PROFILES_DIR": str(PROJECT_ROOT),
            "DBT_TARGET_PATH": str(self.work / "target"),
            "DBT_LOG_PATH": str(self.work / "dbt-logs"),
            "DAGSTER_HOME": str(self.work / "dagster_home"),
            EXPORT_DIR_ENV: str(self.work / "nightly-exports"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DO_NOT_TRACK": "1",
        }
        if config.memory_limit:
            self.env[MEMORY_LIMIT_ENV] = config.memory_limit

    def step(self, key: str, name: str, args: dict[str, Any]) -> StepRun:
        if self.resuming and key in RESUMABLE_STEPS:
            kept = load_step(self.logs, key)
            if kept is not None:
                self.runs[key] = kept
                self.resumed.append(key)
                _say(f"{key}: kept from the earlier run ({kept.wall_seconds:.3f} s)")
                return kept
        self.resuming = False  # a step that runs again invalidates what follows it
        _say(f"{key} ...")
        run = run_step(name, args, self.logs, self.env, key=key)
        self.runs[key] = run
        seconds = run.figures.get("seconds", run.figures.get("median_seconds"))
        shown = f"{seconds:.3f} s" if isinstance(seconds, float) else "done"
        _say(f"{key}: {shown}, peak {run.peak_rss_bytes / 2**20:.0f} MiB")
        return run

    def run(self) -> Report:
        config = self.config
        if self.resuming and not (self.raw / "_generation_summary.json").exists():
            self.resuming = False  # nothing to resume: start afresh
        if not self.resuming:
            if self.work.exists():
                shutil.rmtree(self.work)
            self.work.mkdir(parents=True)
        for folder in ("dagster_home", "target", "warehouse", "export-all", "nightly-exports"):
            # product state is never resumed: only the raw data and the reference steps are
            shutil.rmtree(self.work / folder, ignore_errors=True)
        (self.work / "dagster_home").mkdir()
        (self.work / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        started = datetime.now(UTC)
        memory_limit = config.memory_limit or os.environ.get(MEMORY_LIMIT_ENV)

        if config.raw_source is not None:
            if not self.resuming:
                mirror_raw(config.raw_source, self.raw)
            _say(f"raw data: {self.raw} mirrors {config.raw_source} (symbolic links)")
        else:
            self.step("generate", "generate", {"raw_dir": str(self.raw), "calls": config.calls,
                      "days": config.days, "orgs": config.orgs, "resellers": config.resellers,
                      "seed": config.seed, "end": config.end})  # fmt: skip
        facts = self.step("inspect", "inspect", {"raw_dir": str(self.raw)}).figures
        last_day = date.fromisoformat(facts["last_day"])
        window = (facts["window_start"], facts["last_day"])
        whole = (facts["first_day"], facts["last_day"])
        org, reseller = facts["busiest_org"], facts["busiest_reseller"]

        self.step("floor", "floor", {"raw_dir": str(self.raw), "memory_limit": memory_limit,
                  "temp_dir": str(self.work / "duckdb-tmp")})  # fmt: skip
        naive_out = self.work / "naive-payload.json"
        self.step("naive", "naive", {"raw_dir": str(self.raw), "org": org, "start": window[0],
                  "end": window[1], "runs": config.naive_runs,
                  "payload_out": str(naive_out)})  # fmt: skip
        self.step("prepare", "prepare", {})
        self.step("build", "build", {"full_refresh": True})
        # the same raw files again: a night without a new file (its fixed costs)
        self.step("quiet_build", "build", {"full_refresh": False, "label": "quiet"})
        if config.touched_build:
            # one raw file rewritten with the same bytes: not quiet, yet nothing new for dbt
            rewrite_one_file(self.raw)
            self.step("touched_build", "build", {"full_refresh": False, "label": "touched"})
        export_out = self.work / "export-payload.json"
        self.step("export_org_30d", "export_warm", {"org": org, "start": window[0],
                  "end": window[1], "runs": config.export_runs,
                  "payload_out": str(export_out)})  # fmt: skip
        if reseller is not None:
            self.step("export_reseller_30d", "export_warm", {"reseller": reseller,
                      "start": window[0], "end": window[1],
                      "runs": config.export_runs})  # fmt: skip
        self.step("export_all_orgs_whole", "export_warm", {"start": whole[0], "end": whole[1],
                  "runs": config.all_orgs_runs})  # fmt: skip
        self.step("export_all", "export_all", {"start": window[0], "end": window[1],
                  "out": str(self.work / "export-all")})  # fmt: skip

        new_day = last_day + timedelta(days=1)
        self.step("increment_generate", "increment_generate", {"raw_dir": str(self.raw),
                  "day": new_day.isoformat(), "seed": config.seed + 1,
                  "calls": max(1, config.increment_history // config.days),
                  "late_share": config.late_share,
                  "late_scale": config.increment_history / config.calls})  # fmt: skip
        self.step("increment_build", "build", {"full_refresh": False})

        naive_matches = _same_payload(naive_out, export_out)
        report = Report(
            label=config.label,
            scale={"calls": config.calls, "days": config.days, "orgs": config.orgs,
                   "resellers": config.resellers, "seed": config.seed,
                   "memory_limit": memory_limit,
                   "increment_as_of": config.increment_history},  # fmt: skip
            facts=facts,
            runs={key: _run_dict(run) for key, run in self.runs.items()},
            started_at=started.isoformat(timespec="seconds"),
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
            naive_matches_exporter=naive_matches,
            notes=list(config.notes) + ([
                f"Raw data: the existing directory {config.raw_source}, mirrored as symbolic "
                "links (not generated by this run)."
            ] if config.raw_source is not None else []) + ([
                f"Steps {', '.join(self.resumed)} were measured by an earlier attempt at this "
                "run on the same raw data (`--resume`), which stopped at a later step."
            ] if self.resumed else []),
        )
        write_report(report, config.out)
        if not config.keep:
            for folder in ("raw", "warehouse", "export-all", "nightly-exports", "duckdb-tmp"):
                shutil.rmtree(self.work / folder, ignore_errors=True)
        return report


def mirror_raw(source: Path, raw: Path) -> None:
    """`raw` as a tree of symbolic links to `source`'s files: the increment adds files of its
    own beside them and never writes the source."""
    for path in sorted(source.rglob("*")):
        target = raw / path.relative_to(source)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path.resolve())


def rewrite_one_file(raw: Path) -> Path:
    """Replace the smallest raw Parquet file with a fresh copy of its bytes (a new file of the
    same content and a new modification time; a mirrored link becomes a file, its source is
    untouched)."""
    smallest = min(raw.rglob("*.parquet"), key=lambda p: (p.stat().st_size, str(p)))
    data = smallest.read_bytes()
    smallest.unlink()
    smallest.write_bytes(data)
    return smallest


def _same_payload(left: Path, right: Path) -> bool | None:
    if not (left.exists() and right.exists()):
        return None
    return json.loads(left.read_text()) == json.loads(right.read_text())


def _run_dict(run: StepRun) -> dict[str, Any]:
    data = asdict(run)
    data["log"] = str(run.log)
    return data
