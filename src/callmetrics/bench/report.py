"""The result tables: every figure of a run, its ratios and targets, as JSON and markdown.

``<out>/<label>.json`` holds everything measured (each step's figures, both memory readings,
the data's facts, dbt's slowest nodes); ``<out>/<label>.md`` is the table people read.
``<out>/summary.md`` lists every run found in ``<out>`` and the growth between scales.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from callmetrics.settings import PROJECT_ROOT

MIB = 2**20
GIB = 2**30

# Targets of issue 5, per scale (calls): (figure key, what it says, the figure's upper limit).
TARGETS: dict[int, list[tuple[str, str, float]]] = {
    1_000_000: [
        ("generate_seconds", "generate under 60 s", 60.0),
        ("full_build_over_floor", "full build / floor at most 3x", 3.0),
        ("export_org_30d_median_ms", "one organization, 30 days, warm median under 20 ms", 20.0),
        ("export_all_seconds", "export-all under 15 s", 15.0),
        ("peak_memory_gib", "peak memory of any step under 4 GB", 4.0),
        ("quiet_total_over_full_build_total",
         "build with no new file / full build at most 10% (end to end)", 0.10),
        ("increment_total_over_full_build_total",
         "one new day + 2% late versions / full build at most 15% (end to end)", 0.15),
    ],
    10_000_000: [
        ("peak_memory_gib", "peak memory of any step under 12 GB (memory limit set)", 12.0),
        ("increment_over_full_build", "nightly increment / full build at most 10%", 0.10),
    ],
}
# Steps of the product (the references, floor and naive, are not held to the memory target).
PRODUCT_STEPS = (
    "generate", "build", "export_org_30d", "export_reseller_30d", "export_all_orgs_whole",
    "export_all", "increment_generate", "increment_build", "quiet_build", "touched_build",
)  # fmt: skip


@dataclass
class Report:
    label: str
    scale: dict[str, Any]
    facts: dict[str, Any]
    runs: dict[str, dict[str, Any]]
    started_at: str
    finished_at: str
    naive_matches_exporter: bool | None = None
    notes: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, float | None] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.machine:
            self.machine = machine()
        self.figures = derive(self.runs)
        own = increment_as_of(self.scale) == self.scale["calls"]
        self.targets = check_targets(self.scale["calls"], self.figures, own_increment=own)


def machine() -> dict[str, Any]:
    import duckdb

    mem_total = None
    try:
        with open("/proc/meminfo") as handle:
            mem_total = int(handle.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
            text=True, check=False,
        ).stdout.strip() or None  # fmt: skip
    except OSError:
        commit = None
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_total / GIB, 1) if mem_total else None,
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "platform": platform.platform(),
        "commit": commit,
    }


def _get(runs: dict[str, dict[str, Any]], key: str, figure: str) -> float | None:
    run = runs.get(key)
    if run is None:
        return None
    value = run["figures"].get(figure)
    return float(value) if isinstance(value, int | float) else None


def _ratio(top: float | None, bottom: float | None) -> float | None:
    if top is None or bottom is None or bottom <= 0:
        return None
    return top / bottom


def _without_tests(runs: dict[str, dict[str, Any]], key: str) -> float | None:
    total, tests = _get(runs, key, "seconds"), _get(runs, key, "dbt_test_seconds")
    if total is None:
        return None
    return total - (tests or 0.0)


def _without_copy(runs: dict[str, dict[str, Any]], key: str) -> float | None:
    """A build without its dbt tests and without copying the live warehouse into the work file:
    the copy happens only while fewer than three versions exist (or after a rollback); a steady
    night reuses a kept version instead (docs/publishing.md)."""
    seconds = _without_tests(runs, key)
    if seconds is None or _fig(runs.get(key), "work_method") != "copy":
        return seconds
    return seconds - (_get(runs, key, "prepare_work_seconds") or 0.0)


def derive(runs: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """The headline figures and ratios from the steps' raw figures."""
    full = _without_tests(runs, "build")
    increment = _without_tests(runs, "increment_build")
    increment_steady = _without_copy(runs, "increment_build")
    floor = _get(runs, "floor", "seconds")
    naive = _get(runs, "naive", "median_seconds")
    org_median = _get(runs, "export_org_30d", "median_seconds")
    peaks = [r["peak_rss_bytes"] for k, r in runs.items() if k in PRODUCT_STEPS]
    figures: dict[str, float | None] = {
        "generate_seconds": _get(runs, "generate", "seconds"),
        "floor_seconds": floor,
        "naive_org_30d_median_seconds": naive,
        "full_build_total_seconds": _get(runs, "build", "seconds"),
        "full_build_seconds": full,
        "full_build_dbt_tests_seconds": _get(runs, "build", "dbt_test_seconds"),
        "full_build_dbt_models_seconds": _get(runs, "build", "dbt_model_seconds"),
        "increment_generate_seconds": _get(runs, "increment_generate", "seconds"),
        "increment_build_total_seconds": _get(runs, "increment_build", "seconds"),
        "increment_build_seconds": increment,
        "increment_dbt_tests_seconds": _get(runs, "increment_build", "dbt_test_seconds"),
        "export_org_30d_median_ms": _ms(org_median),
        "export_org_30d_p95_ms": _ms(_get(runs, "export_org_30d", "p95_seconds")),
        "export_reseller_30d_median_ms": _ms(_get(runs, "export_reseller_30d", "median_seconds")),
        "export_reseller_30d_p95_ms": _ms(_get(runs, "export_reseller_30d", "p95_seconds")),
        "export_all_orgs_whole_median_ms": _ms(
            _get(runs, "export_all_orgs_whole", "median_seconds")
        ),
        "export_all_orgs_whole_p95_ms": _ms(_get(runs, "export_all_orgs_whole", "p95_seconds")),
        "export_all_seconds": _get(runs, "export_all", "seconds"),
        "full_build_publish_seconds": _get(runs, "build", "publish_seconds"),
        "full_build_prepare_work_seconds": _get(runs, "build", "prepare_work_seconds"),
        "increment_publish_seconds": _get(runs, "increment_build", "publish_seconds"),
        "increment_prepare_work_seconds": _get(runs, "increment_build", "prepare_work_seconds"),
        "peak_memory_gib": max(peaks) / GIB if peaks else None,
        "full_build_over_floor": _ratio(full, floor),
        "full_build_total_over_floor": _ratio(_get(runs, "build", "seconds"), floor),
        "increment_over_full_build": _ratio(increment, full),
        "increment_without_copy_seconds": increment_steady,
        "increment_without_copy_over_full_build": _ratio(increment_steady, full),
        "increment_total_over_full_build_total": _ratio(
            _get(runs, "increment_build", "seconds"), _get(runs, "build", "seconds")
        ),
        "export_over_naive": _ratio(org_median, naive),
        "quiet_build_total_seconds": _get(runs, "quiet_build", "seconds"),
        "quiet_build_seconds": _without_tests(runs, "quiet_build"),
        "quiet_dbt_tests_seconds": _get(runs, "quiet_build", "dbt_test_seconds"),
        "quiet_total_over_full_build_total": _ratio(
            _get(runs, "quiet_build", "seconds"), _get(runs, "build", "seconds")
        ),
        "quiet_over_full_build": _ratio(_without_tests(runs, "quiet_build"), full),
        "touched_build_total_seconds": _get(runs, "touched_build", "seconds"),
        "touched_total_over_full_build_total": _ratio(
            _get(runs, "touched_build", "seconds"), _get(runs, "build", "seconds")
        ),
    }
    return figures


def fixed_costs(run: dict[str, Any] | None) -> dict[str, float] | None:
    """Where a build's wall time went: the Dagster steps, dbt's start-up (the dbt step's wall
    time less dbt's own elapsed time: loading, parsing, connecting, artifacts), dbt's nodes
    (models, tests), and what Dagster and the command spend outside every step."""
    total = _get({"r": run} if run else {}, "r", "seconds")
    steps = _fig(run, "dagster_steps") or {}
    if total is None or not steps:
        return None
    dbt_wall = steps.get("dbt_models")
    elapsed = _fig(run, "dbt_elapsed_seconds")
    costs = {f"step {name}": seconds for name, seconds in steps.items()}
    if dbt_wall is not None and elapsed is not None:
        costs["of dbt_models: dbt start-up, parse and artifacts"] = dbt_wall - elapsed
        costs["of dbt_models: dbt models (covered)"] = _fig(run, "dbt_model_seconds") or 0.0
        costs["of dbt_models: dbt tests (covered)"] = _fig(run, "dbt_test_seconds") or 0.0
    costs["outside the steps (loading definitions, Dagster run, command)"] = total - sum(
        steps.values()
    )
    return costs


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def check_targets(
    calls: int, figures: dict[str, float | None], own_increment: bool = True
) -> list[dict[str, Any]]:
    """The scale's targets met or not. The increment's targets are of the history's own
    increment: a run given another history's (`--increment-as-of`) is not held to them."""
    checks = []
    for key, text, limit in TARGETS.get(calls, []):
        if key.startswith("increment") and not own_increment:
            continue
        value = figures.get(key)
        met = None if value is None else value <= limit
        checks.append({"target": text, "figure": key, "value": value, "limit": limit,
                       "met": met})  # fmt: skip
    return checks


# -- rendering ---------------------------------------------------------------------------------


def _fmt(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "n/a"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "%":
        return f"{100 * value:.1f}%"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "GiB":
        return f"{value:.2f} GiB"
    return f"{value:.2f} s"


def _times(ratio: float | None) -> str:
    if ratio is None:
        return "n/a"
    return f"{ratio:.4f}x (naive is {1 / ratio:,.0f}x slower)" if ratio > 0 else "0x"


def _mem(run: dict[str, Any] | None) -> str:
    return "n/a" if run is None else f"{run['peak_rss_bytes'] / MIB:,.0f} MiB"


def _cpu(run: dict[str, Any] | None) -> str:
    """The step's CPU time and its wall time (the child's, start-up included)."""
    if run is None or not run.get("cpu_seconds"):
        return "n/a"
    return f"{run['cpu_seconds']:,.1f} s of {run['wall_seconds']:,.1f} s"


def _fig(run: dict[str, Any] | None, key: str, default: Any = None) -> Any:
    return default if run is None else run["figures"].get(key, default)


def step_rows(report: Report) -> list[tuple[str, str, str, str, str]]:
    """(step, time, peak memory, CPU time, notes) for the markdown table."""
    runs, f, facts = report.runs, report.figures, report.facts
    rows: list[tuple[str, str, str, str, str]] = []

    def add(key: str, title: str, time: str, notes: str = "") -> None:
        if key in runs:
            rows.append((title, time, _mem(runs.get(key)), _cpu(runs.get(key)), notes))

    gen = runs.get("generate")
    add("generate", "generate raw data", _fmt(f["generate_seconds"]),
        f"{facts.get('raw_call_rows', 0):,} call rows, {facts.get('raw_event_rows', 0):,} "
        f"events, {(_fig(gen, 'raw_bytes', 0)) / MIB:,.0f} MiB Parquet")  # fmt: skip
    floor = runs.get("floor")
    add("floor", "floor: one DuckDB query over raw Parquet", _fmt(f["floor_seconds"]),
        f"{_fig(floor, 'counted_calls', 0):,} counted calls, {_fig(floor, 'rows', 0):,} part rows")
    naive = runs.get("naive")
    add("naive", "naive: pandas, one organization, 30 days",
        _fmt(f["naive_org_30d_median_seconds"]),
        f"median of {_fig(naive, 'runs', 0)}; {_fig(naive, 'calls', 0):,} calls in payload")
    build = runs.get("build")
    add("build", "full build (run_build: snapshot, models, tests, nightly export)",
        _fmt(f["full_build_total_seconds"]),
        f"dbt models {_fmt(_fig(build, 'dbt_model_seconds'))}, snapshots "
        f"{_fmt(_fig(build, 'dbt_snapshot_seconds'))}")  # fmt: skip
    if "build" in runs:
        rows.append(("  of which dbt tests", _fmt(f["full_build_dbt_tests_seconds"]), "", "",
                     f"{_fig(build, 'dbt_test_count', 0)} tests (time any test was running)"))
        if f["full_build_publish_seconds"] is not None:
            rows.append(("  of which publishing", _fmt(f["full_build_publish_seconds"]), "", "",
                         f"{_publish_notes(build)}; preparing the work file "
                         f"{_fmt(f['full_build_prepare_work_seconds'])} "
                         f"({_fig(build, 'work_method', 'n/a')})"))
        rows.append(("  full build without dbt tests", _fmt(f["full_build_seconds"]), "", "",
                     "the figure compared with the floor"))  # fmt: skip
    org = runs.get("export_org_30d")
    add("export_org_30d", "export: one organization, 30 days, warm",
        f"median {_fmt(f['export_org_30d_median_ms'], 'ms')}, "
        f"p95 {_fmt(f['export_org_30d_p95_ms'], 'ms')}",
        f"{_fig(org, 'runs', 0)} calls; {_fig(org, 'calls', 0):,} calls in payload")
    res = runs.get("export_reseller_30d")
    add("export_reseller_30d", "export: one reseller, 30 days, warm",
        f"median {_fmt(f['export_reseller_30d_median_ms'], 'ms')}, "
        f"p95 {_fmt(f['export_reseller_30d_p95_ms'], 'ms')}",
        f"{_fig(res, 'runs', 0)} calls; {_fig(res, 'calls', 0):,} calls in payload")
    every = runs.get("export_all_orgs_whole")
    add("export_all_orgs_whole", "export: all organizations, whole range, warm",
        f"median {_fmt(f['export_all_orgs_whole_median_ms'], 'ms')}, "
        f"p95 {_fmt(f['export_all_orgs_whole_p95_ms'], 'ms')}",
        f"{_fig(every, 'runs', 0)} calls; {_fig(every, 'calls', 0):,} calls in payload")
    add("export_all", "export-all (command, 30 days)", _fmt(f["export_all_seconds"]),
        f"{_fig(runs.get('export_all'), 'files', 0)} payload files")
    quiet = runs.get("quiet_build")
    quiet_notes = (
        f"of which dbt tests {_fmt(_fig(quiet, 'dbt_test_seconds'))}, publishing "
        f"{_fmt(_fig(quiet, 'publish_seconds'))}; without tests {_fmt(f['quiet_build_seconds'])}"
        if _fig(quiet, "dbt_run_results") else
        "nothing arrived: the check (raw file listing, project digest, payload manifests) ran; "
        "dbt, the Dagster job and publishing did not"
    )  # fmt: skip
    add("quiet_build", "build with no new file (the same raw files again)",
        _fmt(f["quiet_build_total_seconds"]), quiet_notes)
    touched = runs.get("touched_build")
    add("touched_build", "build after one raw file is rewritten with the same rows (dbt runs, "
        "nothing new)", _fmt(f["touched_build_total_seconds"]),
        f"of which dbt tests {_fmt(_fig(touched, 'dbt_test_seconds'))}, publishing "
        f"{_fmt(_fig(touched, 'publish_seconds'))} ({_publish_notes(touched)})")  # fmt: skip
    inc = runs.get("increment_generate")
    add("increment_generate", "nightly increment: generate one day", _fmt(
        f["increment_generate_seconds"]),
        f"{_fig(inc, 'added_bytes', 0) / MIB:,.1f} MiB in {_fig(inc, 'added_files', 0)} files")
    incb = runs.get("increment_build")
    add("increment_build", "nightly increment: incremental build",
        _fmt(f["increment_build_total_seconds"]),
        f"of which dbt tests {_fmt(_fig(incb, 'dbt_test_seconds'))}, publishing "
        f"{_fmt(f['increment_publish_seconds'])} ({_publish_notes(incb)}), preparing the work "
        f"file {_fmt(f['increment_prepare_work_seconds'])} ({_fig(incb, 'work_method', 'n/a')}"
        f"); without tests {_fmt(f['increment_build_seconds'])}")  # fmt: skip
    return rows


def _publish_notes(run: dict[str, Any] | None) -> str:
    """The publish step's own breakdown and the sizes it left, as the store recorded them."""
    parts = _fig(run, "publish_breakdown_seconds") or {}
    shown = ", ".join(f"{k} {v:.2f} s" for k, v in parts.items() if k in (
        "checkpoint", "parquet", "switch"))  # fmt: skip
    if "parquet_kept" in parts:
        shown += f"; {parts['parquet_kept']:.0f} unchanged Parquet copies linked"
    sizes = []
    for key, title in (("warehouse_bytes", "warehouse"), ("parquet_bytes", "Parquet copies")):
        value = _fig(run, key)
        if isinstance(value, int | float):
            sizes.append(f"{title} {value / MIB:,.0f} MiB")
    return "; ".join(p for p in ("audit+stamp+checkpoint, Parquet, switch: " + shown
                                 if shown else "", ", ".join(sizes)) if p) or "n/a"


def render_markdown(report: Report) -> str:
    f = report.figures
    scale = report.scale
    lines = [
        f"# Benchmark: {scale['calls']:,} calls over {scale['days']} days",
        "",
        f"Run {report.started_at} to {report.finished_at} on {report.machine.get('cpus')} CPUs, "
        f"{report.machine.get('memory_gib')} GiB (DuckDB {report.machine.get('duckdb')}, "
        f"commit {report.machine.get('commit')}). DuckDB memory limit: "
        f"{scale.get('memory_limit') or 'profile default'}. Seed {scale['seed']}.",
        f"Data: {report.facts.get('first_day')} to {report.facts.get('last_day')}, "
        f"{report.facts.get('organizations')} organizations; the exporter and the naive "
        f"script use the busiest organization (`{report.facts.get('busiest_org')}`) and "
        f"reseller (`{report.facts.get('busiest_reseller')}`) over "
        f"{report.facts.get('window_start')} to {report.facts.get('last_day')}.",
        "",
        "| step | time | peak memory | CPU time of wall time | notes |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in step_rows(report)]
    lines += [
        "",
        "| ratio | value |",
        "|---|---|",
        f"| full build (without dbt tests) / floor | {_fmt(f['full_build_over_floor'], 'x')} |",
        f"| full build (with everything) / floor | {_fmt(f['full_build_total_over_floor'], 'x')} |",
        f"| nightly increment / full build (without dbt tests) | "
        f"{_fmt(f['increment_over_full_build'], '%')} |",
        f"| nightly increment / full build (with everything) | "
        f"{_fmt(f['increment_total_over_full_build_total'], '%')} |",
        f"| nightly increment without the one-time work-file copy / full build (without dbt "
        f"tests) | {_fmt(f.get('increment_without_copy_over_full_build'), '%')} |",
        f"| build with no new file / full build (with everything) | "
        f"{_fmt(f.get('quiet_total_over_full_build_total'), '%')} |",
        f"| build with no new file / full build (without dbt tests) | "
        f"{_fmt(f.get('quiet_over_full_build'), '%')} |",
        f"| build after a rewritten file (dbt runs, nothing new) / full build (with everything) "
        f"| {_fmt(f.get('touched_total_over_full_build_total'), '%')} |",
        f"| export, one organization 30 days (warm median) / naive pandas | "
        f"{_times(f['export_over_naive'])} |",
        "",
        f"Peak memory of any product step: {_fmt(f['peak_memory_gib'], 'GiB')}. "
        f"Naive payload equals the exporter's: {report.naive_matches_exporter}.",
    ]
    if report.targets:
        lines += ["", "| target | value | met |", "|---|---|---|"]
        for t in report.targets:
            share = "increment" in t["figure"] or "quiet" in t["figure"]
            unit = "%" if share else "x" if "over" in t["figure"] else (
                "ms" if t["figure"].endswith("_ms") else "GiB" if "gib" in t["figure"] else "s"
            )
            met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
            lines.append(f"| {t['target']} | {_fmt(t['value'], unit)} | {met} |")
    builds = (("build", "full build"), ("quiet_build", "build with no new file"),
              ("touched_build", "build after a rewritten file"),
              ("increment_build", "incremental build"))
    for key, title in builds:
        steps = report.runs.get(key, {}).get("figures", {}).get("dagster_steps") or {}
        if steps:
            lines += ["", f"Dagster steps of the {title} (wall seconds): " + ", ".join(
                f"`{name}` {seconds:.2f}" for name, seconds in steps.items()
            ) + "."]  # fmt: skip
    for key, title in builds[1:]:
        costs = fixed_costs(report.runs.get(key))
        if costs:
            lines += ["", f"Where the {title}'s time went (seconds):", ""]
            lines += [f"- {name}: {seconds:.2f}" for name, seconds in costs.items()]
    for key, title in builds:
        slow = report.runs.get(key, {}).get("figures", {}).get("dbt_slowest_nodes") or []
        if slow:
            lines += ["", f"Slowest dbt nodes of the {title} (execution time, seconds):", ""]
            lines += [f"- `{n['node']}`: {n['seconds']:.2f}" for n in slow]
    busy = {k: max(r.get("load_average") or (0.0, 0.0)) for k, r in report.runs.items()}
    cpus = report.machine.get("cpus") or 1
    # A build on its own keeps about cpus + 1 processes busy (DuckDB's threads, dbt's and
    # Dagster's Python), and the 1-minute load average read after a step includes the step.
    loaded = {k: v for k, v in busy.items() if v > cpus + 1.5}
    if loaded:
        lines += ["", f"**Warning**: the machine was busy with other work during "
                  f"{', '.join(f'{k} (load {v:.1f})' for k, v in loaded.items())}; "
                  f"those times are too slow.", ""]  # fmt: skip
    if report.notes:
        lines += ["", *[f"- {note}" for note in report.notes]]
    return "\n".join(lines) + "\n"


def write_report(report: Report, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{report.label}.json"
    md_path = out / f"{report.label}.md"
    json_path.write_text(json.dumps(asdict(report), indent=2, default=str) + "\n")
    md_path.write_text(render_markdown(report))
    write_summary(out)
    return json_path, md_path


def report_from_json(path: Path) -> Report:
    """A run's report read back from its JSON, its figures derived again by this code (to
    re-render a committed run after the tables gain a figure)."""
    data = json.loads(path.read_text())
    for derived in ("figures", "targets"):
        data.pop(derived, None)
    return Report(**data)


def load_reports(out: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted(out.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except ValueError:
            continue
        if isinstance(data, dict) and {"label", "scale", "figures"} <= data.keys():
            found.append(data)
    return sorted(found, key=lambda d: (d["scale"]["calls"], d["scale"]["days"]))


# (figure, key in a report's figures, the 10M run it reads, largest growth allowed from 1M to
# 10M calls or None). The increment's growth counts against its target only between equal
# arrivals: a run's own increment holds late work drawn from its whole history (10x at 10M), so
# the 10M run that replays the 1M increment (`--increment-as-of 1000000`) is the one compared.
GROWTH_TARGETS = (
    ("full build (without dbt tests)", "full_build_seconds", "any", 12.0),
    ("nightly increment, the same arrival (the 1M run's increment on both histories)",
     "increment_build_total_seconds", "same", 3.0),
    ("nightly increment, each history's own (10x the arrival at 10M)",
     "increment_build_total_seconds", "own", None),
)  # fmt: skip


def increment_as_of(scale: dict[str, Any]) -> int:
    """The history size whose increment a run of this scale generated (its own when not
    given)."""
    return int(scale.get("increment_as_of") or scale["calls"])


def _newest(reports: list[dict[str, Any]], calls: int, as_of: int | None) -> dict[str, Any] | None:
    runs = [r for r in reports if r["scale"]["calls"] == calls
            and (as_of is None or increment_as_of(r["scale"]) == as_of)]  # fmt: skip
    return max(runs, key=lambda r: r.get("started_at") or "", default=None)


def _commit(report: dict[str, Any]) -> str | None:
    return (report.get("machine") or {}).get("commit")


def write_summary(out: Path) -> Path:
    """One line per run in ``out``, and the growth between the newest 1M and 10M runs."""
    reports = load_reports(out)
    lines = [
        "# Benchmark results",
        "",
        "| run | generate | floor | full build | increment | export org 30d median | "
        "export-all | peak memory |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        f = r["figures"]
        lines.append(
            f"| [{r['label']}]({r['label']}.md) | {_fmt(f.get('generate_seconds'))} | "
            f"{_fmt(f.get('floor_seconds'))} | {_fmt(f.get('full_build_seconds'))} | "
            f"{_fmt(f.get('increment_build_seconds'))} | "
            f"{_fmt(f.get('export_org_30d_median_ms'), 'ms')} | "
            f"{_fmt(f.get('export_all_seconds'))} | {_fmt(f.get('peak_memory_gib'), 'GiB')} |"
        )
    small = _newest(reports, 1_000_000, 1_000_000)
    large = {"any": _newest(reports, 10_000_000, None),
             "same": _newest(reports, 10_000_000, 1_000_000),
             "own": _newest(reports, 10_000_000, 10_000_000)}  # fmt: skip
    growth_lines = []
    for name, key, which, target in GROWTH_TARGETS:
        big = large[which]
        if small is None or big is None:
            continue
        if _commit(small) != _commit(big):
            growth_lines.append(f"- {name}: not computed, {small['label']} and {big['label']} "
                                f"are of different commits ({_commit(small)}, {_commit(big)})")
            continue
        growth = _ratio(big["figures"].get(key), small["figures"].get(key))
        if target is None:
            verdict = "no target"
        else:
            met = "n/a" if growth is None else ("yes" if growth <= target else "**no**")
            verdict = f"target at most {target:g}x: {met}"
        growth_lines.append(f"- {name}: {_fmt(growth, 'x')} ({big['label']} / "
                            f"{small['label']}; {verdict})")  # fmt: skip
    if growth_lines:
        lines += ["", "Growth from 1M to 10M calls (the newest runs at each scale):", "",
                  *growth_lines, ""]  # fmt: skip
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path
