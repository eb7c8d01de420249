"""What a failed dbt invocation says, read from its structured output, never from console text.

`run_results.json` lists every node dbt ran with its status and message; when dbt could not
even start (a parsing or compilation error of the project) there are no results, and the error
comes from dbt's structured (JSON) log, which dagster-dbt collects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_FAILED = ("error", "fail", "runtime error")


def _first_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[0] if lines else ""


def failed_nodes(run_results: Path) -> list[str]:
    """One line per node that failed or errored, in the order dbt ran them:
    'dbt test <name> failed (3 failing rows)' or 'dbt model <name> failed: <first line>'."""
    try:
        results: list[dict[str, Any]] = json.loads(run_results.read_text(encoding="utf-8"))[
            "results"
        ]
    except (OSError, ValueError, KeyError):
        return []
    lines = []
    for result in results:
        if str(result.get("status", "")).lower() not in _FAILED:
            continue
        unique_id = str(result.get("unique_id", ""))
        kind, _, rest = unique_id.partition(".")
        name = rest.split(".", 1)[-1] if rest else unique_id
        failures = result.get("failures")
        if kind == "test" and failures:
            lines.append(f"dbt test {name} failed ({failures} failing rows)")
        else:
            message = _first_line(result.get("message"))
            lines.append(f"dbt {kind} {name} failed" + (f": {message}" if message else ""))
    return lines


def failure_summary(run_results: Path, log_errors: list[str]) -> str:
    """One line for a failed invocation: its first failed node (and how many more), else the
    first error dbt logged."""
    nodes = failed_nodes(run_results)
    if nodes:
        more = len(nodes) - 1
        plural = "s" if more > 1 else ""
        return nodes[0] + (f" (and {more} more failed node{plural})" if more else "")
    error = next((_first_line(text) for text in log_errors if _first_line(text)), "")
    return f"dbt could not run: {error}" if error else "dbt failed (see the build log)"
