"""The product interfaces the benchmark drives, in one place.

Each function calls the real thing: the synthetic generator (``callmetrics.generate``), the
in-process Dagster build (``callmetrics.pipeline.run_build``, which also publishes). Imports are
local so a step's child loads only what it uses.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any


def generate_raw(
    raw_dir: Path, *, calls: int, days: int, orgs: int, resellers: int, seed: int,
    end: str | None,
) -> dict[str, Any]:  # fmt: skip
    from callmetrics.generate import generate_raw as product_generate_raw

    options: dict[str, Any] = {"calls": calls, "days": days, "orgs": orgs,
                               "resellers": resellers, "seed": seed}  # fmt: skip
    if end:
        options["end_date"] = date.fromisoformat(end)
    summary = product_generate_raw(raw_dir, **options)
    return {"rows": dict(summary.rows), "files": dict(summary.files)}


def generate_increment(
    raw_dir: Path, *, day: str, seed: int, calls: int, late_share: float, late_scale: float = 1.0
) -> dict[str, Any]:
    from callmetrics.generate import generate_increment as product_generate_increment

    summary = product_generate_increment(
        raw_dir, day=date.fromisoformat(day), seed=seed, calls=calls, late_share=late_share,
        late_scale=late_scale,
    )
    return {"rows": dict(summary.rows), "changes": dict(summary.changes)}


def prepare_pipeline() -> None:
    """Build the Dagster definitions once: this parses the dbt project when needed."""
    from callmetrics.orchestration.definitions import build_definitions
    from callmetrics.settings import Settings

    build_definitions(Settings.from_env())


def run_build(full_refresh: bool) -> int | None:
    from callmetrics.pipeline import run_build as product_run_build

    return product_run_build(full_refresh=full_refresh)
