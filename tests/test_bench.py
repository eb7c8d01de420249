"""The benchmark harness: its references are right, its measurements honest, its table complete.

No timing thresholds: the figures are checked for presence and sanity, never for speed.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from callmetrics.bench.dbt_timing import covered_seconds
from callmetrics.bench.floor import connect, floor_parts, run_floor
from callmetrics.bench.measure import StepFailed, load_step, run_step
from callmetrics.bench.naive import naive_payload
from callmetrics.bench.report import Report, check_targets, render_markdown, write_summary
from callmetrics.bench.runner import Bench, BenchConfig
from callmetrics.bench.steps import percentile
from tests.fixtures.handmade import (
    COUNTED_CALLS,
    EXPECTED_ORG1_PAYLOAD,
    ORG1_RANGE,
    write_handmade_raw,
)

MIB = 2**20


@pytest.fixture(scope="module")
def handmade_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_handmade_raw(tmp_path_factory.mktemp("bench-handmade") / "raw")


def _summed(rows: list[dict[str, Any]], part: str, group: tuple[str, ...]) -> dict:
    sums: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in rows:
        if row["part"] != part:
            continue
        key = tuple(row[g] for g in group)
        for name, value in row.items():
            if isinstance(value, int | float) and name != "bucket":
                sums[key][name] += value
    return {k: dict(v) for k, v in sums.items()}


# -- the floor -------------------------------------------------------------------------------


def test_floor_computes_org1_parts_worked_out_by_hand(handmade_raw: Path) -> None:
    rows = floor_parts(connect(), handmade_raw)
    org1 = _summed(rows, "sections", ("organization_id",))[("org-1",)]
    # c-1 300 s, c-2 150 s, c-3 60.000001 s, c-4 600 s, c-5 60 s.
    assert org1["calls"] == 5
    assert (org1["resolved"], org1["transferred"], org1["abandoned"], org1["other"]) == (
        1, 2, 1, 1,
    )  # fmt: skip
    assert org1["duration_us"] == 1_170_000_001
    assert (org1["sentiment_calls"], org1["positive_calls"]) == (3, 1)
    assert (org1["corrections_calls"], org1["zero_correction_calls"]) == (3, 1)
    # e-1 (once, not twice), e-2, e-9: ttft 400 + 500.5 + 300; ratios 0.25, 0, 0.1.
    assert (org1["latency_samples"], org1["latency_ms_sum"]) == (3, 1200.5)
    assert org1["token_samples"] == 3 and org1["token_ratio_sum"] == pytest.approx(0.35)
    assert org1["confidence_samples"] == 3 and org1["confidence_sum"] == pytest.approx(1.9)
    assert (org1["tool_calls"], org1["tool_successes"]) == (2, 1)
    assert org1["escalation_us"] == 60_000_000 + 60_000_001  # c-2 at +60 s, c-3 its duration
    agents = _summed(rows, "agents", ("organization_id", "key"))
    assert {k[1]: v["calls"] for k, v in agents.items() if k[0] == "org-1"} == {
        "a-1": 2, "a-2": 1, "a-4": 1,
    }  # fmt: skip
    reasons = _summed(rows, "reasons", ("organization_id", "key"))
    assert reasons[("org-1", "billing dispute")]["calls"] == 2
    assert reasons[("org-1", "billing dispute")]["escalation_us"] == 120_000_001
    assert reasons[("org-3", "technical issue requiring specialist")]["escalation_us"] == (
        120_000_000
    )  # transferred_at after the end: the duration


def test_floor_buckets_are_15_minute_utc(handmade_raw: Path) -> None:
    rows = floor_parts(connect(), handmade_raw)
    buckets = {
        (r["organization_id"], r["bucket"]) for r in rows if r["part"] == "sections"
    }
    # 2025-01-10 09:00 UTC is bucket 1_929_444 (epoch seconds / 900); c-3 at 13:59:59.999999
    # falls in 13:45 (1_929_463); c-5 at 2025-01-11 00:00 in 1_929_504.
    assert ("org-1", 1_929_444) in buckets
    assert ("org-1", 1_929_463) in buckets
    assert ("org-1", 1_929_504) in buckets


def test_run_floor_counts_every_counted_call(handmade_raw: Path, tmp_path: Path) -> None:
    result = run_floor(connect("1GB", tmp_path / "spill"), handmade_raw)
    assert result.total_calls == COUNTED_CALLS
    assert result.section_rows == 6
    assert result.rows == 13  # 6 sections + 4 agent rows + 3 reason rows


# -- the naive alternative -----------------------------------------------------------------


def test_naive_payload_equals_the_hand_worked_payload(handmade_raw: Path) -> None:
    assert naive_payload(handmade_raw, "org-1", *ORG1_RANGE) == EXPECTED_ORG1_PAYLOAD


def test_naive_payload_of_a_range_with_no_calls(handmade_raw: Path) -> None:
    data = naive_payload(handmade_raw, "org-2", "2024-01-01", "2024-01-02")["data"]
    assert data["metrics"] == {
        "totalCalls": 0, "totalMinutes": 0.0, "resolutionRate": 0.0, "avgDuration": 0.0,
        "activeAgents": 0, "responseTime": None, "sentimentPercent": None,
        "escalationRate": None,
    }  # fmt: skip
    assert [d["date"] for d in data["dailyVolume"]] == ["2024-01-01", "2024-01-02"]
    assert len(data["hourlyDistribution"]) == 24
    assert data["agentPerformance"] == [] and data["escalationReasons"] == []


# -- measurement ----------------------------------------------------------------------------


def test_each_step_runs_in_a_fresh_child_measured_apart(tmp_path: Path) -> None:
    big = run_step("hold_memory", {"mib": 300}, tmp_path, key="big")
    small = run_step("hold_memory", {"mib": 20}, tmp_path, key="small")
    assert big.figures["held_mib"] == 300
    assert 300 * MIB <= big.peak_rss_bytes < 600 * MIB
    # The second child's peak is its own, not the first one's.
    assert small.peak_rss_bytes < 200 * MIB
    assert big.log.name == "big.log" and small.log.exists()


def test_a_step_measurement_is_kept_for_resume(tmp_path: Path) -> None:
    """`--resume` reads back exactly what the first attempt measured; a failed or never-run step
    has nothing to resume."""
    run = run_step("hold_memory", {"mib": 30}, tmp_path, key="held")
    assert load_step(tmp_path, "held") == run
    with pytest.raises(StepFailed):
        run_step("no_such_step", {}, tmp_path, key="broken")
    assert load_step(tmp_path, "broken") is None
    assert load_step(tmp_path, "never") is None


def test_a_failing_step_raises_with_its_log(tmp_path: Path) -> None:
    with pytest.raises(StepFailed, match="step nowhere failed"):
        run_step("no_such_step", {}, tmp_path, key="nowhere")


def test_covered_seconds_is_the_union_of_intervals() -> None:
    assert covered_seconds([]) == 0
    assert covered_seconds([(0.0, 2.0), (1.0, 3.0), (5.0, 6.0)]) == 4.0
    assert covered_seconds([(0.0, 10.0), (2.0, 3.0)]) == 10.0


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 0.5) == 50.0
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([float(v) for v in range(1, 21)], 0.95) == 19.0


def test_targets_apply_at_their_scale_only() -> None:
    figures = {"generate_seconds": 61.0, "full_build_over_floor": 2.5,
               "export_org_30d_median_ms": 5.0, "export_all_seconds": None,
               "peak_memory_gib": 3.9}  # fmt: skip
    checks = {c["figure"]: c["met"] for c in check_targets(1_000_000, figures)}
    assert checks == {"generate_seconds": False, "full_build_over_floor": True,
                      "export_org_30d_median_ms": True, "export_all_seconds": None,
                      "peak_memory_gib": True, "quiet_total_over_full_build_total": None,
                      "increment_total_over_full_build_total": None}  # fmt: skip
    assert check_targets(5_000, figures) == []


# -- a tiny run of the whole harness ---------------------------------------------------------

TINY_STEPS = (
    "generate", "inspect", "floor", "naive", "prepare", "build", "quiet_build", "touched_build",
    "export_org_30d", "export_reseller_30d", "export_all_orgs_whole", "export_all",
    "increment_generate", "increment_build",
)  # fmt: skip
# A quiet night runs neither dbt nor the job: its dbt figures are zero.
ZERO_FIGURES = ("quiet_dbt_tests_seconds",)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, Path]:
    root = tmp_path_factory.mktemp("bench-tiny")
    config = BenchConfig(
        calls=2_000, days=30, orgs=6, resellers=2, out=root / "results", work=root / "work",
        export_runs=100, all_orgs_runs=2, naive_runs=1, name="tiny",
    )  # fmt: skip
    return Bench(config).run(), root / "results"


def test_tiny_run_measures_every_step(tiny_run: tuple[Report, Path]) -> None:
    report, _ = tiny_run
    assert set(report.runs) == set(TINY_STEPS)
    for key, run in report.runs.items():
        assert 10 * MIB < run["peak_rss_bytes"] < 8 * 2**30, key
        assert run["wall_seconds"] > 0, key
        assert run["cpu_seconds"] > 0, key
    for name, value in report.figures.items():
        assert value is not None, f"figure {name} is missing"
        if name in ZERO_FIGURES:
            assert value == 0, f"figure {name} = {value}"
            continue
        assert math.isfinite(value) and value > 0, f"figure {name} = {value}"
    assert report.runs["export_org_30d"]["figures"]["runs"] == 100
    assert report.runs["export_reseller_30d"]["figures"]["runs"] == 100
    org = report.figures
    assert org["export_org_30d_median_ms"] <= org["export_org_30d_p95_ms"]


def test_tiny_run_references_agree_with_the_product(tiny_run: tuple[Report, Path]) -> None:
    report, _ = tiny_run
    # The floor counted exactly the calls the exporter reports over the whole range.
    floor_calls = report.runs["floor"]["figures"]["counted_calls"]
    assert floor_calls == report.runs["export_all_orgs_whole"]["figures"]["calls"]
    assert floor_calls > 1_000
    # The naive pandas payload is the exporter's, field for field.
    assert report.naive_matches_exporter is True
    assert report.runs["naive"]["figures"]["calls"] == report.runs["export_org_30d"]["figures"][
        "calls"
    ]


def test_tiny_run_reads_dbt_timing_apart(tiny_run: tuple[Report, Path]) -> None:
    report, _ = tiny_run
    quiet = report.runs["quiet_build"]["figures"]
    assert quiet["dbt_run_results"] == 0 and quiet["dagster_steps"] == {}
    assert quiet["seconds"] < report.runs["touched_build"]["figures"]["seconds"]
    for key in ("build", "touched_build", "increment_build"):
        figures = report.runs[key]["figures"]
        assert figures["dbt_model_count"] >= 10, key
        assert figures["dbt_test_count"] >= 10, key
        assert 0 < figures["dbt_test_seconds"] < figures["seconds"], key
        assert figures["dagster_steps"], key
    added = report.runs["increment_generate"]["figures"]
    assert added["added_files"] > 0 and added["added_bytes"] > 0


def test_tiny_run_writes_complete_tables(tiny_run: tuple[Report, Path]) -> None:
    report, out = tiny_run
    saved = json.loads((out / "tiny.json").read_text())
    assert saved["figures"] == pytest.approx(report.figures)
    markdown = (out / "tiny.md").read_text()
    assert markdown == render_markdown(report)
    table = markdown.split("| step | time | peak memory | CPU time of wall time | notes |")[1]
    table = table.split("\n\n")[0]
    assert "n/a" not in table
    for title in ("generate raw data", "floor:", "naive:", "full build", "of which dbt tests",
                  "of which publishing", "one organization, 30 days", "one reseller, 30 days",
                  "all organizations, whole range", "export-all", "incremental build",
                  "build with no new file"):  # fmt: skip
        assert title in table, title
    ratios = markdown.split("| ratio | value |")[1]
    assert "n/a" not in ratios.split("\n\n")[0]
    summary = (out / "summary.md").read_text()
    assert "[tiny](tiny.md)" in summary
    assert write_summary(out).read_text() == summary


def test_summary_states_growth_between_the_newest_runs_at_each_scale(tmp_path: Path) -> None:
    def saved(label: str, calls: int, started: str, full: float, increment: float,
              commit: str = "abc1234", as_of: int | None = None) -> None:  # fmt: skip
        figures = {"full_build_seconds": full, "increment_build_total_seconds": increment}
        scale = {"calls": calls, "days": 365, "increment_as_of": as_of or calls}
        (tmp_path / f"{label}.json").write_text(json.dumps({
            "label": label, "scale": scale, "started_at": started,
            "figures": figures, "machine": {"commit": commit},
        }))  # fmt: skip

    same = "- nightly increment, the same arrival (the 1M run's increment on both histories)"
    own = "- nightly increment, each history's own (10x the arrival at 10M)"
    saved("old-1m", 1_000_000, "2026-01-01T00:00:00+00:00", 10.0, 1.0)
    saved("new-1m", 1_000_000, "2026-02-01T00:00:00+00:00", 80.0, 25.0)
    saved("new-10m", 10_000_000, "2026-02-01T01:00:00+00:00", 720.0, 100.0)
    summary = write_summary(tmp_path).read_text()
    assert ("- full build (without dbt tests): 9.00x (new-10m / new-1m; target at most 12x: "
            "yes)") in summary  # fmt: skip
    assert f"{own}: 4.00x (new-10m / new-1m; no target)" in summary
    assert same not in summary  # no 10M run of the 1M run's increment yet
    # the 10M run replaying the 1M increment is the one held to the growth target
    saved("same-10m", 10_000_000, "2026-02-01T02:00:00+00:00", 700.0, 75.0, as_of=1_000_000)
    summary = write_summary(tmp_path).read_text()
    assert "- full build (without dbt tests): 8.75x (same-10m / new-1m; target" in summary
    assert f"{same}: 3.00x (same-10m / new-1m; target at most 3x: yes)" in summary
    assert f"{own}: 4.00x (new-10m / new-1m; no target)" in summary
    saved("newer-10m", 10_000_000, "2026-03-01T00:00:00+00:00", 700.0, 90.0, commit="def5678")
    summary = write_summary(tmp_path).read_text()
    assert ("- full build (without dbt tests): not computed, new-1m and newer-10m are of "
            "different commits (abc1234, def5678)") in summary  # fmt: skip
    assert f"{same}: 3.00x" in summary


def test_a_run_of_another_historys_increment_is_not_held_to_the_increment_targets() -> None:
    figures = {"increment_over_full_build": 0.5, "peak_memory_gib": 11.0}
    own = [t["figure"] for t in check_targets(10_000_000, figures)]
    other = [t["figure"] for t in check_targets(10_000_000, figures, own_increment=False)]
    assert own == ["peak_memory_gib", "increment_over_full_build"]
    assert other == ["peak_memory_gib"]
