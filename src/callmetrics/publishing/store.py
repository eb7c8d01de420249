"""Write, audit, publish: the warehouse as immutable published versions behind a symbolic link.

Layout, for `CALLMETRICS_WAREHOUSE=data/warehouse/callmetrics.duckdb`::

    data/warehouse/callmetrics.duckdb        -> callmetrics.versions/v000042.duckdb
    data/warehouse/callmetrics.versions/
        manifest.json                           published versions, oldest first
        v000040.duckdb v000041.duckdb v000042.duckdb
        work.duckdb                             the build in progress (or a failed one)
    data/warehouse/callmetrics.parquet/
        current -> v000042
        v000042/mart_metrics/part-0.parquet     one folder per mart and dimension

A build writes only `work.duckdb`, a file no reader can hold: it is never published while
being written. To avoid copying the warehouse every night, the work file is the oldest kept
version that is neither live nor the rollback target and that no process holds open; it catches
up incrementally from its own older published state (the models are arrival-based and equal to
a full refresh), after the snapshots, the only state a build cannot recompute from the raw
files, are copied in from the live version. Only when no such version is free (a reader holds
it, or it is damaged) is the live version copied. Publishing then stamps the version into the
file, checkpoints it (no WAL left), writes the Parquet copies and switches the link with one
atomic rename: readers see the old version or the new one, never a mix, and a reader that has
a version open keeps it (its inode) until it reconnects.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from callmetrics.errors import UserError
from callmetrics.publishing import duck
from callmetrics.publishing.files import (
    StoreLock,
    copy_file,
    fsync_dir,
    fsync_file,
    is_held,
    remove_tree,
    switch_symlink,
    write_atomic,
)
from callmetrics.publishing.manifest import Manifest, Version, number_of, version_name
from callmetrics.settings import WAREHOUSE_ENV, Settings

KEEP_ENV = "CALLMETRICS_KEEP_VERSIONS"
DEFAULT_KEEP = 3
# Test hook: the named point of a build kills its own process (SIGKILL), as a crash would.
FAULT_POINT_ENV = "CALLMETRICS_FAULT_POINT"
CURRENT = "current"


def fault_point(name: str) -> None:
    if os.environ.get(FAULT_POINT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class WorkSlot:
    """The file a build writes, and where its state came from."""

    path: Path
    method: str  # fresh (no live version), reuse (an older kept version), copy (of the live one)
    base: int | None
    carried: list[str] = field(default_factory=list)
    prepare_seconds: float = 0.0
    run_id: str | None = None

    @property
    def base_name(self) -> str | None:
        return None if self.base is None else version_name(self.base)


@dataclass(frozen=True)
class PublishReport:
    version: Version
    seconds: dict[str, float]
    parquet_bytes: int
    warehouse_bytes: int
    parquet_folder: Path


class WarehouseStore:
    def __init__(self, warehouse: Path, keep: int = DEFAULT_KEEP) -> None:
        if keep < 2:
            raise UserError(f"{KEEP_ENV} must be 2 or more (the live and the previous version)")
        self.link = Path(os.path.abspath(warehouse))
        stem = self.link.stem
        self.versions_dir = self.link.with_name(f"{stem}.versions")
        self.parquet_dir = self.link.with_name(f"{stem}.parquet")
        self.manifest_path = self.versions_dir / "manifest.json"
        self.work_path = self.versions_dir / "work.duckdb"
        self.work_info_path = self.versions_dir / "work.json"
        self.keep = keep
        self._lock = StoreLock(self.versions_dir / ".lock", str(self.link))

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> WarehouseStore:
        settings = settings or Settings.from_env()
        text = os.environ.get(KEEP_ENV)
        try:
            keep = int(text) if text else DEFAULT_KEEP
        except ValueError:
            raise UserError(f"{KEEP_ENV}={text!r} is not a whole number") from None
        return cls(settings.warehouse, keep=keep)

    # ----------------------------------------------------------------- reading the state

    def _version_path(self, version: Version) -> Path:
        return self.versions_dir / version.file_name

    def _link_target(self, number: int) -> str:
        return f"{self.versions_dir.name}/{version_name(number)}.duckdb"

    def _link_number(self) -> int | None:
        if not self.link.is_symlink():
            return None
        target = Path(os.readlink(self.link))
        if target.parent.name != self.versions_dir.name:
            return None
        return number_of(target.name)

    def _load(self) -> Manifest:
        manifest = Manifest.load(self.manifest_path)
        files = (
            {p.name for p in self.versions_dir.iterdir() if p.is_file()}
            if self.versions_dir.is_dir()
            else set()
        )
        manifest.reconcile(self._link_number(), files)
        return manifest

    def versions(self) -> list[Version]:
        """Published versions kept, oldest first; the last one is live."""
        return self._load().history

    def live(self) -> Version | None:
        history = self._load().history
        return history[-1] if history else None

    def live_path(self) -> Path | None:
        live = self.live()
        return None if live is None else self._version_path(live)

    def after_failure(self, live_before: Version | None) -> str:
        """What readers are served after a failed run that started with `live_before` live:
        one clause for the run's error line."""
        live = self.live()
        if live is None:
            return "nothing was published (no version is live yet)"
        if live_before is not None and live.number == live_before.number:
            return f"not published: {live.name} keeps serving"
        return f"{live.name} was published before the run failed"

    # ----------------------------------------------------------------- repairs (under lock)

    def _state(self) -> Manifest:
        """The reconciled manifest, saved, after repairing what a killed step left."""
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        self._adopt_unversioned()
        manifest = self._load()
        manifest.save(self.manifest_path)
        self._repair_parquet_pointer(manifest)
        return manifest

    def _adopt_unversioned(self) -> None:
        """A warehouse built before versioning (a plain file) becomes the first version."""
        if self.link.is_symlink() or not self.link.exists():
            return
        wal = Path(f"{self.link}.wal")
        if wal.exists():
            try:
                with duckdb.connect(str(self.link)) as con:
                    con.execute("checkpoint")
            except duckdb.Error as exc:
                raise UserError(
                    f"cannot take over {self.link}: it has a write-ahead log and is open "
                    f"elsewhere ({exc}); close the programs using it and build again"
                ) from None
        manifest = Manifest.load(self.manifest_path)
        files = {p.name for p in self.versions_dir.iterdir()}
        manifest.reconcile(None, files)
        number = manifest.last_number + 1
        os.rename(self.link, self.versions_dir / f"{version_name(number)}.duckdb")
        switch_symlink(self.link, self._link_target(number))
        manifest.history = [
            Version(number=number, published_at=_now().isoformat(), method="adopted")
        ]
        manifest.last_number = number
        manifest.save(self.manifest_path)

    def _repair_parquet_pointer(self, manifest: Manifest) -> None:
        if not manifest.history:
            return
        live = manifest.history[-1]
        pointer = self.parquet_dir / CURRENT
        if (self.parquet_dir / live.name).is_dir() and (
            not pointer.is_symlink() or os.readlink(pointer) != live.name
        ):
            switch_symlink(pointer, live.name)

    def _clear_scrap(self, manifest: Manifest) -> None:
        """Remove what killed or failed builds left: the work file, unpublished versions."""
        if self.work_path.exists() and is_held(self.work_path):
            raise UserError(
                f"{self.work_path} is open in another process: a build is still running "
                "(or a killed build's dbt process is); stop it and try again"
            )
        for path in (
            self.work_path,
            Path(f"{self.work_path}.wal"),
            self.work_info_path,
            self.versions_dir / "work.duckdb.copying",
        ):
            path.unlink(missing_ok=True)
        published = {v.file_name for v in manifest.history}
        for path in self.versions_dir.iterdir():
            base = path.name.removesuffix(".wal")
            if number_of(base) is not None and base not in published:
                path.unlink(missing_ok=True)
        if self.parquet_dir.is_dir():
            names = {v.name for v in manifest.history}
            for path in self.parquet_dir.iterdir():
                if path.name != CURRENT and path.name not in names:
                    remove_tree(path)

    # ----------------------------------------------------------------- build

    def _free_slot(self, manifest: Manifest) -> Version | None:
        """The oldest kept version that is neither live nor the rollback target, that no
        process holds and that opens as the version it claims to be; damaged ones are dropped."""
        for candidate in list(manifest.history[:-2]):
            path = self._version_path(candidate)
            if is_held(path):
                continue
            try:
                stamped = duck.stamped_version(path)
            except duckdb.Error:
                stamped = -1
            if stamped not in (None, candidate.number):
                manifest.history.remove(candidate)
                path.unlink(missing_ok=True)
                continue
            return candidate
        return None

    def _work_info(self) -> dict[str, object] | None:
        if not self.work_path.exists() or not self.work_info_path.exists():
            return None
        try:
            return dict(json.loads(self.work_info_path.read_text(encoding="utf-8")))
        except ValueError:
            return None

    def work_run_id(self) -> str | None:
        """The run whose build is in the work file, if one is there."""
        info = self._work_info()
        run_id = None if info is None else info.get("run_id")
        return None if run_id is None else str(run_id)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Keep other builds, publishes and rollbacks of this warehouse out for a while."""
        with self._lock.hold():
            yield

    def ensure_work(self, run_id: str) -> WorkSlot:
        """The work file of run `run_id`, prepared by this call if the run has none yet.

        Each step of an orchestrated run that writes the warehouse calls this, so the first one
        prepares the work file and the others build on it.
        """
        with self._lock.hold():
            info = self._work_info()
            if info is not None and info.get("run_id") == run_id:
                base, carried = info.get("base"), info.get("carried")
                return WorkSlot(
                    path=self.work_path,
                    method=str(info.get("method")),
                    base=None if base is None else int(str(base)),
                    carried=[str(t) for t in carried] if isinstance(carried, list) else [],
                    prepare_seconds=float(str(info.get("prepare_seconds", 0.0))),
                    run_id=run_id,
                )
            return self.prepare_work(run_id=run_id)

    @contextmanager
    def building(self, run_id: str) -> Iterator[WorkSlot]:
        """Point CALLMETRICS_WAREHOUSE (which dbt's profile reads) at the run's work file."""
        work = self.ensure_work(run_id)
        saved = os.environ.get(WAREHOUSE_ENV)
        os.environ[WAREHOUSE_ENV] = str(work.path)
        try:
            yield work
        finally:
            if saved is None:
                os.environ.pop(WAREHOUSE_ENV, None)
            else:
                os.environ[WAREHOUSE_ENV] = saved

    def prepare_work(self, run_id: str | None = None) -> WorkSlot:
        """Set up the work file a build writes (see the module docstring)."""
        started = time.perf_counter()
        with self._lock.hold():
            manifest = self._state()
            self._clear_scrap(manifest)
            live = manifest.history[-1] if manifest.history else None
            carried: list[str] = []
            if live is None:
                duck.create_compatible(self.work_path)
                method, base = "fresh", None
            else:
                slot = self._free_slot(manifest)
                if slot is not None:
                    os.rename(self._version_path(slot), self.work_path)
                    manifest.history.remove(slot)
                    manifest.save(self.manifest_path)
                    carried = duck.carry_state(self.work_path, self._version_path(live))
                    method, base = "reuse", slot.number
                else:
                    manifest.save(self.manifest_path)
                    copying = self.versions_dir / "work.duckdb.copying"
                    copy_file(self._version_path(live), copying)
                    os.rename(copying, self.work_path)
                    method, base = "copy", live.number
            slot_info = WorkSlot(
                path=self.work_path,
                method=method,
                base=base,
                carried=carried,
                prepare_seconds=round(time.perf_counter() - started, 3),
                run_id=run_id,
            )
            write_atomic(
                self.work_info_path,
                json.dumps(
                    {
                        "method": method,
                        "base": base,
                        "carried": carried,
                        "prepared_at": _now().isoformat(),
                        "prepare_seconds": slot_info.prepare_seconds,
                        "pid": os.getpid(),
                        "run_id": run_id,
                    }
                ),
            )
            return slot_info

    def discard_work(self) -> None:
        with self._lock.hold():
            for path in (self.work_path, Path(f"{self.work_path}.wal"), self.work_info_path):
                path.unlink(missing_ok=True)

    # ----------------------------------------------------------------- publish

    def publish_work(self, run_id: str | None = None) -> PublishReport:
        """Audit the work file, stamp, checkpoint, export Parquet, switch the link.

        With `run_id`, only the work file that run prepared is published."""
        fault_point("before_publish")
        with self._lock.hold():
            t0 = time.perf_counter()
            manifest = self._state()
            found = self._work_info()
            if found is None:
                raise UserError(
                    f"there is no finished build to publish in {self.versions_dir}: "
                    "run `callmetrics build`"
                )
            if run_id is not None and found.get("run_id") != run_id:
                raise UserError(
                    f"the work file in {self.versions_dir} was not built by run {run_id}: "
                    "nothing published; run the whole nightly job"
                )
            stray_wal = Path(f"{self.link}.wal")
            if stray_wal.exists():
                raise UserError(
                    f"{stray_wal} exists: a program opened the published warehouse read-write "
                    "through the link; published versions are read-only. Close it, move the "
                    "file away and build again"
                )
            info = found
            number = manifest.last_number + 1
            name = version_name(number)
            base = None if info.get("base") is None else int(str(info["base"]))
            published_at = _now()
            staging = self.parquet_dir / f".tmp-{name}"
            remove_tree(staging)
            staging.mkdir(parents=True)
            with duckdb.connect(str(self.work_path)) as con:
                audit = duck.audit_marts(con)
                if not audit.row_counts:
                    raise UserError(
                        f"the build left no tables in schema '{duck.MARTS_SCHEMA}': "
                        "nothing published"
                    )
                duck.stamp(
                    con,
                    number=number,
                    name=name,
                    published_at=published_at,
                    base=None if base is None else version_name(base),
                    method=str(info.get("method", "unknown")),
                )
                con.execute("checkpoint")
                t_checkpoint = time.perf_counter()
                parquet_bytes = duck.export_parquet(con, audit.parquet_tables, staging)
                t_parquet = time.perf_counter()
            if Path(f"{self.work_path}.wal").exists():
                raise RuntimeError(f"{self.work_path}.wal is left after a checkpoint")
            fault_point("after_parquet")
            version_path = self.versions_dir / f"{name}.duckdb"
            fsync_file(self.work_path)
            os.rename(self.work_path, version_path)
            self.work_info_path.unlink(missing_ok=True)
            fsync_dir(self.versions_dir)
            os.rename(staging, self.parquet_dir / name)
            fsync_dir(self.parquet_dir)
            version = Version(
                number=number,
                published_at=published_at.isoformat(),
                base=base,
                method=str(info.get("method", "unknown")),
                row_counts=audit.row_counts,
            )
            manifest.history.append(version)
            manifest.last_number = number
            manifest.save(self.manifest_path)
            fault_point("before_switch")
            switch_symlink(self.link, self._link_target(number))  # the commit point
            fault_point("after_switch")
            switch_symlink(self.parquet_dir / CURRENT, name)
            t_switch = time.perf_counter()
            seconds = {
                "prepare": float(str(info.get("prepare_seconds", 0.0))),
                "checkpoint": round(t_checkpoint - t0, 3),
                "parquet": round(t_parquet - t_checkpoint, 3),
                "switch": round(t_switch - t_parquet, 3),
                "total": round(t_switch - t0, 3),
            }
            version = replace(version, publish_seconds=seconds)
            manifest.history[-1] = version
            self._prune(manifest)
            manifest.save(self.manifest_path)
            return PublishReport(
                version=version,
                seconds=seconds,
                parquet_bytes=parquet_bytes,
                warehouse_bytes=version_path.stat().st_size,
                parquet_folder=self.parquet_dir / CURRENT,
            )

    def _prune(self, manifest: Manifest) -> None:
        """Keep the newest `keep` versions; a reader holding a removed one keeps its inode."""
        while len(manifest.history) > self.keep:
            old = manifest.history.pop(0)
            self._version_path(old).unlink(missing_ok=True)
        kept = {v.name for v in manifest.history}
        for path in self.parquet_dir.iterdir():
            if path.name != CURRENT and path.name not in kept:
                remove_tree(path)

    @contextmanager
    def build_slot(self) -> Iterator[BuildSlot]:
        """Hold the store for a whole build: prepare the work file, yield it, and leave it
        unpublished (for inspection, discarded by the next build) unless `publish()` is called.
        """
        with self._lock.hold():
            yield BuildSlot(self, self.prepare_work())

    # ----------------------------------------------------------------- rollback

    def rollback(self) -> tuple[Version, Version]:
        """Make the previous version live again; return (now live, rolled back)."""
        with self._lock.hold():
            manifest = self._state()
            if len(manifest.history) < 2:
                raise UserError(
                    f"there is no earlier published version of {self.link} to roll back to"
                )
            current, previous = manifest.history[-1], manifest.history[-2]
            switch_symlink(self.link, self._link_target(previous.number))  # the commit point
            if (self.parquet_dir / previous.name).is_dir():
                switch_symlink(self.parquet_dir / CURRENT, previous.name)
            manifest.history.pop()
            manifest.rolled_back.append(current.number)
            manifest.save(self.manifest_path)
            return previous, current


class BuildSlot:
    """A build in progress: dbt writes `path`; `publish()` makes it the live version."""

    def __init__(self, store: WarehouseStore, work: WorkSlot) -> None:
        self.store = store
        self.work = work
        self.report: PublishReport | None = None

    @property
    def path(self) -> Path:
        return self.work.path

    @contextmanager
    def pointed(self) -> Iterator[None]:
        """CALLMETRICS_WAREHOUSE names the work file while the build runs (dbt reads it)."""
        saved = os.environ.get(WAREHOUSE_ENV)
        os.environ[WAREHOUSE_ENV] = str(self.path)
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop(WAREHOUSE_ENV, None)
            else:
                os.environ[WAREHOUSE_ENV] = saved

    def publish(self) -> PublishReport:
        self.report = self.store.publish_work()
        return self.report


def _now() -> datetime:
    return datetime.now(UTC)
