"""``callmetrics export`` and ``callmetrics export-all`` (``shared/spec/interfaces.md``)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from callmetrics.errors import UserError
from callmetrics.exporter.api import AllPayloads, Exporter, Request
from callmetrics.exporter.payload import MetricsPayload
from callmetrics.exporter.timerange import iso, parse_range

MANIFEST = "manifest.json"
ALL_FILE = "all-organizations.json"


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
    time_range = parse_range(args.start, args.end) if request is None else request
    with Exporter() as exporter:
        payload = exporter.payload(time_range, args.org, args.reseller)
    text = payload.to_json() + "\n"
    if args.out:
        write_atomic(Path(args.out), text)
    else:
        sys.stdout.write(text)
    return 0


def run_export_all(args: argparse.Namespace) -> int:
    own_zones = args.tz is not None and args.tz.strip().lower() == ORG_ZONES
    request = _request(args, None if own_zones else args.tz)
    if own_zones:
        request = Request.parse(args.start, args.end, None, args.granularity, args.compare)
    time_range = parse_range(args.start, args.end) if request is None else request.time_range
    out = Path(args.out)
    with Exporter() as exporter:
        result = exporter.export_all(request or time_range, organization_zones=own_zones)
        warehouse = str(exporter.path)
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


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
