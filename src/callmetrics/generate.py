"""`callmetrics generate`: write a synthetic raw directory (see callmetrics.generation)."""

from __future__ import annotations

import argparse
import contextlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from callmetrics.errors import UserError
from callmetrics.generation import GenerationSummary, generate_increment, generate_raw
from callmetrics.generation.base import clear_raw_dir

__all__ = ["GenerationSummary", "generate_increment", "generate_raw", "run_generate"]


def yesterday() -> date:
    """The last whole UTC day: the default end of generated data, so a fresh demo's newest
    calls are as recent as a nightly extract's and its freshness checks pass."""
    return datetime.now(UTC).date() - timedelta(days=1)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def parse_day(text: str | None, option: str) -> date:
    if text is None:
        return yesterday()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} must be a date like 2025-03-01, got {text!r}") from None


def run_generate(args: argparse.Namespace) -> int:
    """Entry point of `callmetrics generate` (arguments from cli.py)."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a directory")
    summary = write_raw(
        out,
        calls=args.calls,
        days=args.days,
        orgs=args.orgs,
        resellers=args.resellers,
        seed=args.seed,
        end_date=parse_day(args.end, "--end"),
        dirt_rate=args.dirt_rate,
        progress=not args.quiet,
        force=getattr(args, "force", False),
    )
    if not args.quiet:
        rows = ", ".join(f"{t} {n:,}" for t, n in summary.rows.items())
        print(f"wrote {out}: {rows} ({summary.seconds:.1f}s)")
    return 0


def write_raw(out: Path, **options: Any) -> GenerationSummary:
    """generate_raw for the command line: a full or read-only disk is one line, and the
    partial tables are removed so that a retry starts clean."""
    try:
        return generate_raw(out, **options)
    except (OSError, duckdb.Error) as exc:
        # generate_raw refuses a directory holding raw tables unless --force replaces them, so
        # every table folder there now is this run's: remove the partial ones for a clean retry
        with contextlib.suppress(OSError):
            clear_raw_dir(out)
        raise UserError(
            f"cannot write the raw data into {out}: {_reason(exc)}; nothing was kept "
            "(free some space or choose a writable --out, then run again)"
        ) from None
