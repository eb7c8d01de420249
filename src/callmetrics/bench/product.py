"""The product interfaces the benchmark drives, in one place.

Each function calls the real thing: the synthetic generator, the in-process Dagster build,
the publishing step. Imports are local so a step's child loads only what it uses.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call with the keyword arguments the function takes (None values are left out)."""
    accepted = inspect.signature(func).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    given = {k: v for k, v in kwargs.items() if v is not None and (takes_any or k in accepted)}
    return func(*args, **given)


def generate_raw(raw_dir: Path, *, calls: int, days: int, seed: int, end: str | None) -> Any:
    from callmetrics.generate import generate_raw as product_generate_raw

    return _call(product_generate_raw, raw_dir, calls=calls, days=days, seed=seed, end=end,
                 progress=False, quiet=True)  # fmt: skip


def generate_increment(raw_dir: Path, *, day: str, seed: int, calls: int, late_share: float) -> Any:
    from datetime import date

    from callmetrics.generate import generate_increment as product_generate_increment

    return product_generate_increment(
        raw_dir, day=date.fromisoformat(day), seed=seed, calls=calls, late_share=late_share
    )


def prepare_pipeline() -> None:
    """Load the Dagster definitions once: this parses the dbt project when needed."""
    import sys

    from callmetrics.settings import PROJECT_ROOT

    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    import orchestration.definitions  # noqa: F401


def run_build(full_refresh: bool) -> int | None:
    from callmetrics.pipeline import run_build as product_run_build

    return product_run_build(full_refresh=full_refresh)
