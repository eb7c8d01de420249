"""Daily partitions of the exports: a partition is the UTC day whose payloads a run writes.

Only `exports/metrics_payloads` is partitioned. The dbt models and the published version are
not: they are incremental on arrival (`_loaded_at` watermarks, file names), not on the day a
call started, so a run processes everything that arrived since the last run, whatever its day.
The nightly job runs for a day (its partition): the raw sources must reach it (freshness), and
the exporter writes that day's payloads and the trailing 30 days. A backfill of a range of days
is one run (`BackfillPolicy.single_run()`) that writes each day's payloads.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache

from dagster import (
    AssetCheckExecutionContext,
    AssetExecutionContext,
    BackfillPolicy,
    DailyPartitionsDefinition,
)

TIMEZONE = "UTC"


@cache
def daily_partitions(start: date) -> DailyPartitionsDefinition:
    """The UTC days from `start` (`Settings.partitions_start`) to the last complete day."""
    return DailyPartitionsDefinition(start_date=start.isoformat(), timezone=TIMEZONE)


SINGLE_RUN = BackfillPolicy.single_run()

_PARTITION_TAG = "dagster/partition"
_RANGE_START_TAG = "dagster/asset_partition_range_start"
_RANGE_END_TAG = "dagster/asset_partition_range_end"


def run_days(context: AssetExecutionContext | AssetCheckExecutionContext) -> tuple[date, date]:
    """First and last day (both included) of the partition or partition range of the run.

    Read from the run's tags, so it also works in steps of unpartitioned assets (the raw
    sources' checks) inside a partitioned run.
    """
    tags = context.run.tags
    if _RANGE_START_TAG in tags and _RANGE_END_TAG in tags:
        first, last = tags[_RANGE_START_TAG], tags[_RANGE_END_TAG]
    elif _PARTITION_TAG in tags:
        first = last = tags[_PARTITION_TAG]
    else:
        raise ValueError(
            "this run has no partition: launch it for a day (the nightly schedule and "
            "`callmetrics build` do)"
        )
    return date.fromisoformat(first), date.fromisoformat(last)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def day_end(day: date) -> datetime:
    """The exclusive end of a day: midnight after it."""
    return day_start(day) + timedelta(days=1)


def latest_partition_day(partitions: DailyPartitionsDefinition) -> date:
    """The last complete UTC day: the newest partition."""
    key = partitions.get_last_partition_key()
    assert key is not None, "the partitions start in the future"
    return date.fromisoformat(key)


def first_partition_day(partitions: DailyPartitionsDefinition) -> date:
    return date.fromisoformat(partitions.get_first_partition_key())
