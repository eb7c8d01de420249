"""`callmetrics build`: run the Dagster `nightly` job in process, as the schedule does.

The command and the schedule cannot drift apart: both run the job of
`callmetrics.orchestration.definitions` (raw freshness checks, snapshot, dbt models and tests, mart
freshness, export). The command picks the partition from the data: the UTC day of the newest
call in the raw directory (clamped to the partitions), i.e. the extract's day that just ended.

Progress goes to standard error one step at a time; dbt's own output goes to a log file beside
the warehouse (`build.log`), named in the error line when something fails.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from dagster import BetaWarning, PreviewWarning, logger

from callmetrics.errors import UserError
from callmetrics.orchestration.assets.export import export_windows
from callmetrics.orchestration.assets.publish import warehouse_store
from callmetrics.orchestration.assets.raw import newest_value
from callmetrics.orchestration.definitions import NIGHTLY_JOB, build_definitions
from callmetrics.orchestration.instance import open_instance
from callmetrics.orchestration.partitions import (
    daily_partitions,
    first_partition_day,
    latest_partition_day,
)
from callmetrics.preflight import check_raw_dir
from callmetrics.publishing.buildlock import BuildLock
from callmetrics.publishing.store import WarehouseStore
from callmetrics.settings import Settings
from callmetrics.spark.build import check_target

LOG_NAME = "build.log"
PROGRESS_LOGGER = "callmetrics_progress"

# Human names of the job's steps (anything else is shown by its step key).
STEP_LABELS = {
    "raw_sources_fresh": "checking the raw sources' freshness",
    "dbt_models": "dbt: snapshot, seeds, models and tests",
    "warehouse__published_version": "publishing the new warehouse version",
    "exports__metrics_payloads": "exporting payloads (day and trailing 30 days)",
}
EXPORT_STEP = "exports__metrics_payloads"
# What Dagster reports when Ctrl-C (SIGINT) or SIGTERM stops a step.
INTERRUPT_ERRORS = frozenset({"DagsterExecutionInterruptedError", "KeyboardInterrupt"})
INTERRUPTED_STATUS = 130


@dataclass
class BuildReport:
    """What happened, gathered from the run's events as they arrive."""

    stream: TextIO
    built: list[str] = field(default_factory=list)
    tests_passed: int = 0
    checks_passed: int = 0
    checks_failed: list[str] = field(default_factory=list)
    checks_warned: list[str] = field(default_factory=list)
    step_failures: list[str] = field(default_factory=list)
    current_step: str = ""
    interrupted: bool = False

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def on_event(self, event: Any) -> None:
        kind = event.event_type_value
        if kind == "STEP_START":
            step = event.step_key or ""
            label = STEP_LABELS.get(step) or (
                "checking the marts' freshness" if step.endswith("covers_run_day") else step
            )
            self.current_step = label
            self.say(f"  - {label}")
        elif kind == "ASSET_MATERIALIZATION" and event.asset_key is not None:
            name = ".".join(event.asset_key.path)
            if event.step_key and event.step_key.startswith("dbt_"):
                self.built.append(name)
                self.say(f"      built {name}")
        elif kind == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            name = f"{'.'.join(evaluation.asset_key.path)}:{evaluation.check_name}"
            if evaluation.passed:
                if (event.step_key or "").startswith("dbt_"):
                    self.tests_passed += 1
                else:
                    self.checks_passed += 1
            elif evaluation.severity.value == "WARN":
                self.checks_warned.append(name)
                self.say(f"      warning: {_check_text(evaluation, name)}")
            else:
                self.checks_failed.append(_check_text(evaluation, name))
                self.say(f"      FAILED {_check_text(evaluation, name)}")
        elif kind == "STEP_SUCCESS":
            millis = getattr(event.event_specific_data, "duration_ms", None)
            if millis is not None:
                self.say(f"      ok ({millis / 1000:.1f} s)")
        elif kind == "STEP_FAILURE":
            error = getattr(event.event_specific_data, "error", None)
            chain = error
            while chain is not None:
                if chain.cls_name in INTERRUPT_ERRORS:
                    self.interrupted = True
                chain = chain.cause
            while error is not None and error.cause is not None:
                error = error.cause  # the user code's own error, not Dagster's wrapper
            message = (error.message.strip().splitlines() or [""])[0] if error else ""
            message = re.sub(r"^[\w.]+(?:Error|Exception): ", "", message)
            self.step_failures.append(f"step {event.step_key} failed: {message}".rstrip(": "))


def _check_text(evaluation: Any, name: str) -> str:
    description = evaluation.description
    if description:
        return description
    rows = evaluation.metadata.get("dagster_dbt/failed_row_count")
    detail = f" ({rows.value} failing rows)" if rows is not None else ""
    return f"dbt test {evaluation.check_name} on {'.'.join(evaluation.asset_key.path)}{detail}"


class _ProgressHandler(logging.Handler):
    def __init__(self, report: BuildReport) -> None:
        super().__init__(level=logging.DEBUG)
        self.report = report

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        if event is not None:
            self.report.on_event(event)


def _progress_logger_def(report: BuildReport) -> Any:
    @logger(description="callmetrics build: one line per step on standard error")
    def progress(_init_context: Any) -> logging.Logger:
        log = logging.getLogger(f"callmetrics.build.{id(report)}")
        log.setLevel(logging.DEBUG)
        log.propagate = False
        log.handlers = [_ProgressHandler(report)]
        return log

    return progress


def make_warehouse_folder(settings: Settings) -> None:
    try:
        settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create the warehouse folder {settings.warehouse.parent}: "
            f"{exc.strerror or exc}"
        ) from None


def as_of_day(settings: Settings) -> date:
    """The partition a build runs for: the UTC day of the newest raw call, within the partitions.

    With no call at all, the latest partition (the raw freshness check then says why it fails).
    """
    partitions = daily_partitions(settings.partitions_start)
    newest = newest_value(settings.raw_dir, "calls", "started_at")
    latest = latest_partition_day(partitions)
    if newest is None:
        return latest
    return max(first_partition_day(partitions), min(newest.date(), latest))


@contextlib.contextmanager
def _quiet_dagster_loggers() -> Iterator[None]:
    """dagster-dbt logs each dbt command at INFO on stderr: keep stderr to the progress lines."""
    loggers = [logging.getLogger(name) for name in ("dagster", "dagster.builtin")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)


@contextlib.contextmanager
def _stderr_into(log_file: TextIO, report: BuildReport) -> Iterator[None]:
    """Send file descriptor 2 (this process's and every child's: dbt, Dagster's helper
    processes) into the build log for the run, so the terminal shows only the progress lines
    (written to a copy of the original stderr) and the log holds everything else, including
    what the helpers print when Ctrl-C reaches the whole process group."""
    sys.stderr.flush()
    saved = os.dup(2)
    progress = os.fdopen(os.dup(2), "w", encoding="utf-8", buffering=1)
    stream = report.stream
    report.stream = progress
    os.dup2(log_file.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        report.stream = stream
        progress.close()


def _append_log(log_path: Path, line: str) -> None:
    """Best effort: the final line in the log too (a full disk may refuse even that)."""
    with contextlib.suppress(OSError), log_path.open("a", encoding="utf-8") as log:
        log.write(line + "\n")


def failure_line(report: BuildReport, log_path: Path, serving: str = "") -> str:
    """One line saying what failed, what readers are served now (`serving`, from the
    warehouse store) and, when it failed before the export, that the export did not run."""
    served = f"; {serving}" if serving else ""
    if report.step_failures and report.step_failures[0].startswith(f"step {EXPORT_STEP} "):
        return f"{report.step_failures[0]}{served} (full log: {log_path})"
    if report.checks_failed:
        what = report.checks_failed[0]
        more = len(report.checks_failed) - 1
        if more:
            what += f" (and {more} more failed check{'s' if more > 1 else ''})"
    else:
        # a dbt step's failure says its first failed node, read from run_results.json
        # (orchestration/assets/dbt_results.py)
        what = report.step_failures[0] if report.step_failures else "the run failed"
    return f"{what}{served}; the export did not run (full log: {log_path})"


def run_build(full_refresh: bool = False, settings: Settings | None = None) -> int:
    """Run the nightly job once over CALLMETRICS_RAW_DIR into CALLMETRICS_WAREHOUSE (or the
    paths of `settings`)."""
    started = time.monotonic()
    settings = settings or Settings.from_env()
    inventory = check_raw_dir(settings.raw_dir)
    check_target(settings)  # CALLMETRICS_TARGET=spark: the extra and the server, in one line
    make_warehouse_folder(settings)
    report = BuildReport(stream=sys.stderr)
    files = sum(len(found) for found in inventory.files.values())
    report.say(f"callmetrics build: raw {settings.raw_dir} ({files} Parquet files)")
    report.say(f"  warehouse {settings.warehouse}")
    store = warehouse_store(settings)
    with BuildLock(store.versions_dir, settings.warehouse).hold() as stale:
        if stale is not None:
            report.say(f"  taking over a stale build lock ({stale.describe()}; no longer running)")
        quiet = None if full_refresh else store.quiet_night(payload_folders(settings))
        if quiet is not None:  # nothing arrived (callmetrics.arrivals): no dbt, no Dagster run
            report.say(f"callmetrics build: done in {time.monotonic() - started:.1f} s: "
                       f"{quiet.describe()}")  # fmt: skip
            return 0
        return _run_job(settings, store, report, full_refresh, started)


def payload_folders(settings: Settings) -> list[Path]:
    """The export folders the nightly job writes for the day a build now runs for."""
    day = as_of_day(settings)
    return [settings.exports / day.isoformat() / name for name in export_windows(day)]


def _run_job(
    settings: Settings,
    store: WarehouseStore,
    report: BuildReport,
    full_refresh: bool,
    started: float,
) -> int:
    """The nightly job, in process, under the build lock."""
    report.say("  - loading the Dagster definitions (parsing the dbt project if it changed)")
    # Dagster flags single-run backfill policies as beta: not news to someone running a build.
    warnings.filterwarnings("ignore", category=BetaWarning)
    warnings.filterwarnings("ignore", category=PreviewWarning)
    defs = build_definitions(settings)
    day = as_of_day(settings)
    report.say(
        f"  running job '{NIGHTLY_JOB}' for {day.isoformat()}"
        + (" with a full refresh" if full_refresh else "")
    )
    job = defs.resolve_job_def(NIGHTLY_JOB).with_logger_defs(
        {PROGRESS_LOGGER: _progress_logger_def(report)}
    )
    run_config = {
        "ops": {"dbt_models": {"config": {"full_refresh": full_refresh}}},
        "loggers": {PROGRESS_LOGGER: {}},
    }
    log_path = settings.warehouse.parent / LOG_NAME
    live_before = store.live()
    try:
        log_file = log_path.open("w", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {log_path}: {exc.strerror or exc}") from None
    result = None
    with (
        log_file,
        _stderr_into(log_file, report),
        contextlib.redirect_stdout(log_file),
        _quiet_dagster_loggers(),
        open_instance() as instance,
    ):
        try:
            result = job.execute_in_process(
                run_config=run_config,
                instance=instance,
                partition_key=day.isoformat(),
                raise_on_error=False,
                tags={"callmetrics/trigger": "cli"},
            )
        except KeyboardInterrupt:
            report.interrupted = True
        if report.interrupted:
            # A run stopped by Ctrl-C leaves dagster-dbt's event generators suspended; Python
            # reports closing them ("generator ignored GeneratorExit") on stderr whenever they
            # are collected. Collect them now (the interrupt's traceback, which held them, is
            # gone), while stderr still goes to the build log.
            gc.collect()
    elapsed = time.monotonic() - started
    if report.interrupted:
        serving = store.after_failure(live_before)
        step = f" during {report.current_step}" if report.current_step else ""
        line = (
            f"callmetrics build: interrupted{step}; {serving}; run `callmetrics build` again "
            f"to build (its unfinished work file is discarded first) (log: {log_path})"
        )
        _append_log(log_path, line)
        print(line, file=sys.stderr)
        return INTERRUPTED_STATUS
    if result is None or not result.success:
        serving = store.after_failure(live_before)
        line = f"callmetrics build: error: {failure_line(report, log_path, serving)}"
        _append_log(log_path, line)
        print(line, file=sys.stderr)
        return 1
    warned = f", {len(report.checks_warned)} warnings" if report.checks_warned else ""
    report.say(
        f"callmetrics build: done in {elapsed:.1f} s: {len(report.built)} dbt nodes built, "
        f"{report.tests_passed} dbt tests and {report.checks_passed} freshness checks passed"
        f"{warned}; payloads for {day.isoformat()} in "
        f"{settings.exports / day.isoformat()}"
    )
    return 0
