"""`callmetrics rollback`: make the previous published version live again."""

from __future__ import annotations

import argparse
import os
import sys

from callmetrics.errors import UserError
from callmetrics.publishing.manifest import Version
from callmetrics.publishing.store import WarehouseStore
from callmetrics.settings import PROJECT_ROOT

DAGSTER_HOME_ENV = "DAGSTER_HOME"


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
    _tell_dagster(live, rolled_back)
    print(
        f"callmetrics rollback: {store.link} now serves {_describe(live)}; "
        f"{rolled_back.name} is no longer served (the next build discards it). "
        "Readers with an open connection keep their version until they reconnect.",
        file=sys.stderr,
    )
    from callmetrics.publishing.postgres import follow_rollback

    followed = follow_rollback(live)  # the second destination, when configured
    if followed:
        print(f"callmetrics rollback: {followed}", file=sys.stderr)
    return 0


def _tell_dagster(live: Version, rolled_back: Version) -> None:
    """Record the rollback on the `warehouse/published_version` asset, so the Dagster UI shows which
    version is live. The rollback itself is done; a Dagster failure only costs that note."""
    home = os.environ.get(DAGSTER_HOME_ENV) or str(PROJECT_ROOT / "dagster_home")
    if not os.path.isdir(home):
        return
    os.environ.setdefault(DAGSTER_HOME_ENV, home)
    try:
        from dagster import AssetObservation, DagsterInstance

        from orchestration.assets.publish import PUBLISHED_KEY

        with DagsterInstance.get() as instance:
            instance.report_runless_asset_event(
                AssetObservation(
                    asset_key=PUBLISHED_KEY,
                    description=f"rollback: {live.name} is live again",
                    metadata={"version": live.name, "rolled_back": rolled_back.name},
                )
            )
    except Exception as exc:  # noqa: BLE001 - the rollback stands; say why the UI may lag
        print(f"callmetrics rollback: note: Dagster not told ({exc})", file=sys.stderr)
