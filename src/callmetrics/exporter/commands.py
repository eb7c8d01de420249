"""``callmetrics export`` and ``callmetrics export-all`` (``shared/spec/interfaces.md``)."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from callmetrics.exporter.api import AllPayloads, Exporter, Request
from callmetrics.exporter.output import check_folder, ensure_folder, write_atomic, write_text
from callmetrics.exporter.payload import MetricsPayload
from callmetrics.exporter.timerange import ONE_US, TimeRange, iso, parse_range

MANIFEST = "manifest.json"
ALL_FILE = "all-organizations.json"


def request_range(start: str, end: str) -> TimeRange:
    """The parsed range, kept inside what the exporter can split into buckets.

    The exporter reads the partial bucket before the first whole one up to `first - 1 us`;
    for a start at the very first instant datetime can hold (0001-01-01T00:00:00Z) that
    microsecond does not exist (OverflowError). The range then starts one microsecond later,
    which keeps every possible call (none can start before the year 1) and the dates listed.
    """
    time_range = parse_range(start, end)
    earliest = datetime.min.replace(tzinfo=UTC)
    if time_range.start == earliest and time_range.end > earliest:
        time_range = TimeRange(
            start=earliest + ONE_US,
            end=time_range.end,
            first_date=time_range.first_date,
            last_date=time_range.last_date,
        )
    return time_range


ORG_ZONES = "org"


def _request(args: argparse.Namespace, time_zone: str | None) -> Request | None:
    """A ``Request`` when a time zone, granularity or comparison was asked, else ``None``
    (the plain UTC range of the published API)."""
    unit, versus = getattr(args, "granularity", None), getattr(args, "compare", None)
    if time_zone is None and unit is None and versus is None:
        return None
    return Request.parse(args.start, args.end, time_zone, unit, versus)


def run_export(args: argparse.Namespace) -> int:
    request = _request(args, args.tz)
    time_range = request_range(args.start, args.end) if request is None else request
    with Exporter() as exporter:
        answer = exporter.answer(time_range, args.org, args.reseller)
    write_text(args.out, answer.to_json() + "\n")
    return 0


def run_export_all(args: argparse.Namespace) -> int:
    own_zones = args.tz is not None and args.tz.strip().lower() == ORG_ZONES
    request = _request(args, None if own_zones else args.tz)
    if own_zones:
        request = Request.parse(args.start, args.end, None, args.granularity, args.compare)
    time_range = request_range(args.start, args.end) if request is None else request.time_range
    out = Path(args.out)
    check_folder(out)
    with Exporter() as exporter:
        result = exporter.export_all(request or time_range, organization_zones=own_zones)
        warehouse = str(exporter.path)
    ensure_folder(out)  # only once there is something to write: a failed export leaves no folder
    manifest = write_all(out, result, warehouse)
    print(
        f"wrote {len(manifest['files'])} payloads for {iso(time_range.start)} .. "
        f"{iso(time_range.end)} to {out} (index: {out / MANIFEST})",
        file=sys.stderr,
    )
    return 0


def write_all(out: Path, result: AllPayloads, warehouse: str) -> dict:
    """Write every payload, then the manifest (last, so it only names files already there)."""
    files: list[dict[str, object]] = []

    def emit(kind: str, scope_id: str | None, relative: str, payload: MetricsPayload) -> None:
        write_atomic(out / relative, payload.to_json() + "\n")
        files.append({"scope": kind, "id": scope_id, "path": relative,
                      "totalCalls": payload.data.metrics.total_calls})

    for org_id, payload in result.organizations.items():
        emit("organization", org_id, f"organizations/{file_name(org_id)}", payload)
    for reseller_id, payload in result.resellers.items():
        emit("reseller", reseller_id, f"resellers/{file_name(reseller_id)}", payload)
    assert result.all_organizations is not None
    emit("all", None, ALL_FILE, result.all_organizations)
    manifest = {
        "range": {"start": iso(result.time_range.start), "end": iso(result.time_range.end)},
        "generatedAt": iso(datetime.now(UTC)),
        "warehouse": warehouse,
        "files": files,
    }
    write_atomic(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def file_name(scope_id: str) -> str:
    """A safe, distinct ``.json`` file name for an opaque id (the manifest maps ids to files).

    Plain ids (UUIDs) are used as they are; anything else is percent-encoded, and very long
    names are shortened with a hash of the id.
    """
    name = quote(scope_id, safe="-_")  # also encodes '.', so no name is '.', '..' or hidden
    name = name.replace(".", "%2E")
    if len(name) > 150:
        name = name[:100] + "-" + hashlib.sha256(scope_id.encode()).hexdigest()[:16]
    return (name or "%00") + ".json"
