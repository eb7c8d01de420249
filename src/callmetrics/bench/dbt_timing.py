"""dbt's own timing of a build, read from the ``run_results.json`` files it wrote.

dbt runs nodes on two threads, so summed node times overstate the wall clock. For models,
snapshots, seeds and tests this module reports the *covered* time: how long at least one node
of that kind was running (the union of their execution intervals), plus the slowest nodes.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

KINDS = ("model", "test", "snapshot", "seed")


def _instant(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def covered_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end] intervals."""
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None and current_start is not None:
        total += current_end - current_start
    return total


def run_results_since(target: Path, since: float) -> list[Path]:
    """Every run_results.json under the target path written at or after ``since``."""
    if not target.exists():
        return []
    return sorted(p for p in target.rglob("run_results.json") if p.stat().st_mtime >= since)


def dbt_timing(target: Path, since: float, slowest: int = 8) -> dict[str, Any]:
    intervals: dict[str, list[tuple[float, float]]] = {kind: [] for kind in KINDS}
    nodes: list[tuple[float, str]] = []
    counts: dict[str, int] = dict.fromkeys(KINDS, 0)
    files = run_results_since(target, since)
    for path in files:
        results = json.loads(path.read_text())
        for result in results.get("results", []):
            kind = result.get("unique_id", "").split(".")[0]
            if kind not in intervals:
                continue
            counts[kind] += 1
            execute = [t for t in result.get("timing", []) if t.get("name") == "execute"]
            if execute and execute[0].get("started_at") and execute[0].get("completed_at"):
                start, end = _instant(execute[0]["started_at"]), _instant(
                    execute[0]["completed_at"]
                )
                intervals[kind].append((start, end))
            nodes.append((float(result.get("execution_time") or 0.0), result["unique_id"]))
    nodes.sort(reverse=True)
    figures: dict[str, Any] = {"dbt_run_results": len(files)}
    # dbt's own elapsed time (nodes, from its first to its last), so that the dbt step's wall
    # time minus it is dbt's start-up: loading, parsing, connecting, writing artifacts
    figures["dbt_elapsed_seconds"] = sum(
        float(json.loads(path.read_text()).get("elapsed_time") or 0.0) for path in files
    )
    for kind in KINDS:
        figures[f"dbt_{kind}_count"] = counts[kind]
        figures[f"dbt_{kind}_seconds"] = covered_seconds(intervals[kind])
    figures["dbt_slowest_nodes"] = [
        {"node": node, "seconds": round(seconds, 3)} for seconds, node in nodes[:slowest]
    ]
    # every model, snapshot and seed (not the tests), slowest first: where a build's time goes
    figures["dbt_node_seconds"] = {
        node: round(seconds, 3) for seconds, node in nodes if not node.startswith("test.")
    }
    return figures
