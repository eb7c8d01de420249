"""Did anything arrive since the live version was built? The quiet night's check.

A build reads two inputs, the raw directory and the dbt project, on one engine. Before a build
touches either, the store records what they were (`inputs_of`: every raw Parquet file's
relative path, size and modification time, a digest of the project's dbt files, and the dbt
target, `CALLMETRICS_TARGET`: a version built by DuckDB is not what a Spark build would
publish, so switching engine with no new file is no quiet night) in the work file's
information; publishing keeps that record beside the version (`inputs.json` in its folder).

A later build whose inputs are the same as the live version's, for a day whose payloads that
version already wrote, has nothing to do: the live version is what a build would publish
again (the models are arrival-based and equal a fresh build over the same files), the
freshness checks would see the same files for the same day, and the payloads on disk were
written from it. `quiet_night` says so from a directory listing and a few small files, so
`callmetrics build` skips dbt, Dagster and publishing altogether on such a night.

The record is taken before dbt lists the raw files, so a file landing during a build is
either loaded and recorded, or not recorded: the next build then sees it as new and runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from callmetrics.settings import DBT_PROJECT_DIR, RAW_TABLES, TARGETS

INPUTS_FILE = "inputs.json"
# What dbt reads of the project: a change to any of these may change what a build publishes.
PROJECT_PARTS = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "snapshots",
                 "tests/dbt")  # fmt: skip
# What every export folder holds last: its manifest, with the time it was written.
PAYLOAD_MANIFEST = "manifest.json"

Inputs = dict[str, Any]


def raw_listing(raw_dir: Path) -> dict[str, list[int]]:
    """Every raw Parquet file of the contract's tables: relative path -> [size, mtime_ns]."""
    listing: dict[str, list[int]] = {}
    for table in RAW_TABLES:
        for path in sorted((raw_dir / table).rglob("*.parquet")):
            stat = path.stat()
            listing[path.relative_to(raw_dir).as_posix()] = [stat.st_size, stat.st_mtime_ns]
    return listing


def project_digest(project_dir: Path = DBT_PROJECT_DIR) -> str:
    """A SHA-256 over the names and bytes of the dbt project's files."""
    digest = hashlib.sha256()
    for part in PROJECT_PARTS:
        root = project_dir / part
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            digest.update(path.relative_to(project_dir).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


def inputs_of(
    raw_dir: Path, project_dir: Path = DBT_PROJECT_DIR, target: str = TARGETS[0]
) -> Inputs:
    """What a build starting now reads, and the dbt target (engine) it runs on (see the module
    docstring)."""
    return {
        "raw_dir": str(raw_dir),
        "raw_files": raw_listing(raw_dir),
        "project": project_digest(project_dir),
        "target": target,
    }


def read_inputs(version_dir: Path) -> Inputs | None:
    """The inputs a published version was built from; None when it has no record."""
    try:
        data = json.loads((version_dir / INPUTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class QuietNight:
    """Nothing arrived: the live version `version` stands, with its payloads for the day."""

    version: str
    raw_files: int
    payload_folders: list[Path]

    def describe(self) -> str:
        return (
            f"nothing arrived: the {self.raw_files} raw files and the dbt project are those "
            f"{self.version} was built from, and its payloads are written; dbt, the Dagster job "
            f"and publishing are skipped ({self.version} keeps serving)"
        )


def payloads_written_at(folder: Path) -> datetime | None:
    """When the payloads of an export folder were written (None: not written)."""
    try:
        manifest = json.loads((folder / PAYLOAD_MANIFEST).read_text(encoding="utf-8"))
        return datetime.fromisoformat(str(manifest["generatedAt"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def quiet_night(
    raw_dir: Path,
    live_name: str | None,
    live_dir: Path | None,
    published_at: str,
    payload_folders: list[Path],
    project_dir: Path = DBT_PROJECT_DIR,
    target: str = TARGETS[0],
) -> QuietNight | None:
    """A QuietNight when a build now has nothing to do, else None (see the module docstring).

    `live_name`, `live_dir`, `published_at`: the live version, its folder and when it was
    published (None: nothing published yet); `payload_folders`: the export folders the run's
    day writes, which must have been written since the live version was published;
    `target`: the engine a build now would run on.
    """
    if live_name is None or live_dir is None:
        return None
    recorded = read_inputs(live_dir)
    if recorded is None or recorded != inputs_of(raw_dir, project_dir, target):
        return None
    published = datetime.fromisoformat(published_at)
    for folder in payload_folders:
        written = payloads_written_at(folder)
        if written is None or written < published:
            return None
    return QuietNight(
        version=live_name,
        raw_files=len(recorded.get("raw_files", {})),
        payload_folders=payload_folders,
    )


def write_inputs(version_dir: Path, inputs: Inputs) -> None:
    """Keep the build's inputs beside its version (written before the version is published)."""
    path = version_dir / INPUTS_FILE
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(inputs, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
