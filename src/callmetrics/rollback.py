"""`callmetrics rollback`: make the previous published version live again.

A command (the top layer): it drives the warehouse store, PostgreSQL's copy and Dagster's record
of the published version.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dagster import AssetObservation, DagsterInstance

from callmetrics.errors import UserError
from callmetrics.orchestration.assets.publish import PUBLISHED_KEY, warehouse_store
from callmetrics.orchestration.instance import dagster_home
from callmetrics.publishing.manifest import Version
from callmetrics.publishing.postgres import follow_rollback
from callmetrics.settings import Settings


def _describe(version: Version) -> str:
    how = version.method if version.base is None else f"{version.method} of v{version.base:06d}"
    return f"{version.name} (published {version.published_at}, {how})"


def run_rollback(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    store = warehouse_store(settings)
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
    _tell_dagster(dagster_home(), live, rolled_back)
    print(
        f"callmetrics rollback: {store.link} now serves {_describe(live)}; "
        f"{rolled_back.name} is no longer served (the next build discards it). "
        "Readers with an open connection keep their version until they reconnect.",
        file=sys.stderr,
    )
    followed = follow_rollback(live, settings)  # the second destination, when configured
    if followed:
        print(f"callmetrics rollback: {followed}", file=sys.stderr)
    return 0


def _tell_dagster(home: Path, live: Version, rolled_back: Version) -> None:
    """Record the rollback on the `warehouse/published_version` asset, so the Dagster UI shows which
    version is live. The rollback itself is done; a Dagster failure only costs that note."""
    if not home.is_dir():
        return
    try:
        with DagsterInstance.from_config(str(home)) as instance:
            instance.report_runless_asset_event(
                AssetObservation(
                    asset_key=PUBLISHED_KEY,
                    description=f"rollback: {live.name} is live again",
                    metadata={"version": live.name, "rolled_back": rolled_back.name},
                )
            )
    except Exception as exc:  # noqa: BLE001 - the rollback stands; say why the UI may lag
        print(f"callmetrics rollback: note: Dagster not told ({exc})", file=sys.stderr)
