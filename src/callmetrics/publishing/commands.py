"""`callmetrics rollback`: make the previous published version live again."""

from __future__ import annotations

import argparse
import sys

from callmetrics.errors import UserError
from callmetrics.publishing.manifest import Version
from callmetrics.publishing.store import WarehouseStore


def _describe(version: Version) -> str:
    how = version.method if version.base is None else f"{version.method} of v{version.base:06d}"
    return f"{version.name} (published {version.published_at}, {how})"


def run_rollback(args: argparse.Namespace) -> int:
    store = WarehouseStore.from_settings()
    if getattr(args, "list", False):
        versions = store.versions()
        if not versions:
            raise UserError(f"no published version of {store.link}: run `callmetrics build`")
        for version in reversed(versions):
            mark = "live" if version is versions[-1] else "    "
            print(f"{mark} {_describe(version)}")
        return 0
    if store.live() is None:
        raise UserError(f"no published version of {store.link}: run `callmetrics build`")
    live, rolled_back = store.rollback()
    print(
        f"callmetrics rollback: {store.link} now serves {_describe(live)}; "
        f"{rolled_back.name} is no longer served (the next build discards it). "
        "Readers with an open connection keep their version until they reconnect.",
        file=sys.stderr,
    )
    return 0
