"""`callmetrics generate`: write a synthetic raw directory (see callmetrics.generation)."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from callmetrics.errors import UserError
from callmetrics.generation import GenerationSummary, generate_increment, generate_raw
from callmetrics.generation.base import DEFAULT_END

__all__ = ["GenerationSummary", "generate_increment", "generate_raw", "run_generate"]


def parse_day(text: str | None, option: str) -> date:
    if text is None:
        return DEFAULT_END
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} must be a date like 2025-03-01, got {text!r}") from None


def run_generate(args: argparse.Namespace) -> int:
    """Entry point of `callmetrics generate` (arguments from cli.py)."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a directory")
    summary = generate_raw(
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
