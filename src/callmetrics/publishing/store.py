"""Write, audit, publish: the warehouse as immutable published versions behind a symbolic link.

Layout, for `CALLMETRICS_WAREHOUSE=data/warehouse/callmetrics.duckdb`::

    data/warehouse/callmetrics.duckdb        -> callmetrics.versions/v000042/callmetrics.duckdb
    data/warehouse/callmetrics.versions/
        manifest.json                           published versions, oldest first
        v000040/  v000041/  v000042/            one folder per kept version, each holding:
            callmetrics.duckdb                  the warehouse file
            inputs.json                         the raw files and dbt project it was built
                                                from (callmetrics.arrivals: a quiet night)
            parquet-digests.json                a digest of each mart's Parquet copy
        work/callmetrics.duckdb                 the build in progress (or a failed one)
        work.json                               which run prepared it, how, and its inputs
    data/warehouse/callmetrics.parquet/
        current -> v000042
        v000042/mart_metrics/part-0.parquet     one folder per mart and dimension

Every version file, and the work file, carries the link's own file name: DuckDB names a
database's catalog after its file name, so the catalog is `callmetrics` in every version and
while dbt builds (`callmetrics.marts.mart_metrics`, SQLAlchemy's schema names, dbt's
`database` and its docs catalog stay the same from one night to the next). A version is a
folder, published and pruned with one directory rename. A store in the older layout (one
`vNNNNNN.duckdb` file per version) is moved into this one by the first command that reads the
store (build, rollback, `rollback --list`), without a moment where the link points at nothing.

A build writes only the work file, a file no reader can hold: it is never published while
being written. The work file always starts as the live version's bytes, so a build applies
only what arrived since the live version (nothing twice). To avoid writing a whole copy every
night, the work file is the oldest kept version that is neither live nor the rollback target
and that no process holds open, brought to the live version's bytes by rewriting only the
blocks that differ (`files.sync_file`: a checkpoint rewrites only the blocks it changed, so
versions share most of theirs); method `reuse`. Only when no such version is free (a reader
holds it, or it is damaged) is the live version copied whole (`copy`); the first build starts
from an empty file (`fresh`). Publishing then stamps the version into the file, checkpoints
it (no WAL left), writes the Parquet copies (hard-linking the live version's copy of every mart
whose digest did not change) and switches the link with one atomic rename: readers see the
old version or the new one, never a mix, and a reader that has a version open keeps it (its
inode) until it reconnects.

Holding the store for a whole build is the build lock's job (`publishing.buildlock`); the
store's own lock covers each of its steps (prepare, publish, rollback).
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from callmetrics import arrivals
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
    sync_file,
    write_atomic,
)
from callmetrics.publishing.manifest import (
    Manifest,
    Version,
    legacy_number_of,
    number_of,
    version_name,
)
from callmetrics.settings import DEFAULT_KEEP_VERSIONS, KEEP_VERSIONS_ENV, TARGETS, Settings

DEFAULT_KEEP = DEFAULT_KEEP_VERSIONS
CURRENT = "current"
WORK = "work"
# in each version folder: the digest of each mart's Parquet copy (duck.table_digest)
DIGESTS_FILE = "parquet-digests.json"


def fault_point(fault: str | None, name: str) -> None:
    """Test hook (Settings.fault_point): the named point of a publish kills its own process
    (SIGKILL), as a crash would."""
    if fault == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class WorkSlot:
    """The file a build writes, and where its state came from."""

    path: Path
    # fresh (no live version), reuse (an older kept version's file brought to the live one's
    # bytes), copy (of the live one)
    method: str
    base: int | None
    prepare_seconds: float = 0.0
    run_id: str | None = None
    # reuse: the kept version whose file was brought up to date, and the bytes rewritten
    reused: int | None = None
    rewritten_bytes: int | None = None

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
    def __init__(
        self,
        warehouse: Path,
        keep: int = DEFAULT_KEEP,
        raw_dir: Path | None = None,
        fault: str | None = None,
        target: str = TARGETS[0],
    ) -> None:
        if keep < 2:
            raise UserError(
                f"{KEEP_VERSIONS_ENV} must be 2 or more (the live and the previous version)"
            )
        self.link = Path(os.path.abspath(warehouse))
        stem = self.link.stem
        self.versions_dir = self.link.with_name(f"{stem}.versions")
        self.parquet_dir = self.link.with_name(f"{stem}.parquet")
        self.manifest_path = self.versions_dir / "manifest.json"
        # every version file has the link's name, so the catalog name never changes
        self.db_name = self.link.name
        self.work_dir = self.versions_dir / WORK
        self.work_path = self.work_dir / self.db_name
        self.work_info_path = self.versions_dir / "work.json"
        self.keep = keep
        # the raw directory builds read: with it, each version records its inputs (arrivals)
        self.raw_dir = raw_dir
        # the dbt target (engine) builds run on: recorded with the inputs
        self.target = target
        self.fault = fault
        self._lock = StoreLock(self.versions_dir / ".lock", str(self.link))

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> WarehouseStore:
        settings = settings or Settings.from_env()
        return cls(
            settings.warehouse,
            keep=settings.keep_versions,
            raw_dir=settings.raw_dir,
            fault=settings.fault_point,
            target=settings.target,
        )

    # ----------------------------------------------------------------- reading the state

    def version_dir(self, number: int) -> Path:
        return self.versions_dir / version_name(number)

    def version_path(self, number: int) -> Path:
        """The database file of published version `number`."""
        return self.version_dir(number) / self.db_name

    def _version_path(self, version: Version) -> Path:
        return self.version_path(version.number)

    def _link_target(self, number: int) -> str:
        return f"{self.versions_dir.name}/{version_name(number)}/{self.db_name}"

    def _link_number(self) -> int | None:
        if not self.link.is_symlink():
            return None
        target = Path(os.readlink(self.link))
        if target.parent.parent.name != self.versions_dir.name or target.name != self.db_name:
            return None
        return number_of(target.parent.name)

    def _existing(self) -> set[int]:
        """Numbers of the version folders that hold their database file."""
        if not self.versions_dir.is_dir():
            return set()
        found = set()
        for path in self.versions_dir.iterdir():
            number = number_of(path.name)
            if number is not None and (path / self.db_name).is_file():
                found.add(number)
        return found

    def _load(self) -> Manifest:
        if self.versions_dir.is_dir() and any(
            legacy_number_of(p.name) is not None for p in self.versions_dir.iterdir()
        ):
            try:
                with self._lock.hold():
                    self._migrate_flat_layout()
            except UserError:
                pass  # a build holds the store; it migrates the layout itself
        manifest = Manifest.load(self.manifest_path)
        manifest.reconcile(self._link_number(), self._existing())
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

    def quiet_night(self, payload_folders: list[Path]) -> arrivals.QuietNight | None:
        """Whether a build now has nothing to do (`callmetrics.arrivals`): the live version was
        built from the raw files and project there are now and wrote `payload_folders`."""
        live = self.live()
        if live is None or self.raw_dir is None:
            return None
        return arrivals.quiet_night(
            self.raw_dir,
            live.name,
            self.version_dir(live.number),
            live.published_at,
            payload_folders,
            target=self.target,
        )

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
        manifest.reconcile(None, self._existing())
        number = manifest.last_number + 1
        self.version_dir(number).mkdir()
        os.rename(self.link, self.version_path(number))
        switch_symlink(self.link, self._link_target(number))
        manifest.history = [
            Version(number=number, published_at=_now().isoformat(), method="adopted")
        ]
        manifest.last_number = number
        manifest.save(self.manifest_path)

    def _migrate_flat_layout(self) -> None:
        """Move versions of the older layout (`vNNNNNN.duckdb` files, whose catalog name was
        the version's) into version folders. Each file is hard-linked into its folder first,
        then the warehouse link is switched, then the old names go: the link never dangles and
        a reader holding an old file keeps it."""
        legacy = sorted(
            (number, path)
            for path in self.versions_dir.iterdir()
            if (number := legacy_number_of(path.name)) is not None and path.is_file()
        )
        if not legacy:
            return
        for number, path in legacy:
            folder = self.version_dir(number)
            folder.mkdir(exist_ok=True)
            target = folder / self.db_name
            if not target.exists():
                os.link(path, target)
        fsync_dir(self.versions_dir)
        old_target = Path(os.readlink(self.link)) if self.link.is_symlink() else None
        if old_target is not None and old_target.parent.name == self.versions_dir.name:
            number = legacy_number_of(old_target.name)
            if number is not None:
                switch_symlink(self.link, self._link_target(number))
        for _, path in legacy:
            path.unlink()
            Path(f"{path}.wal").unlink(missing_ok=True)
        for name in ("work.duckdb", "work.duckdb.wal", "work.duckdb.copying"):
            (self.versions_dir / name).unlink(missing_ok=True)

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
        remove_tree(self.work_dir)
        self.work_info_path.unlink(missing_ok=True)
        published = {v.number for v in manifest.history}
        for path in self.versions_dir.iterdir():
            number = number_of(path.name)
            if number is not None and number not in published:
                remove_tree(path)
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
                remove_tree(path.parent)
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

    def ensure_work(self, run_id: str) -> WorkSlot:
        """The work file of run `run_id`, prepared by this call if the run has none yet.

        Each step of an orchestrated run that writes the warehouse calls this, so the first one
        prepares the work file and the others build on it.
        """
        with self._lock.hold():
            info = self._work_info()
            if info is not None and info.get("run_id") == run_id:
                return _slot_of(self.work_path, info)
            return self.prepare_work(run_id=run_id)

    def prepare_work(self, run_id: str | None = None) -> WorkSlot:
        """Set up the work file a build writes (see the module docstring)."""
        started = time.perf_counter()
        with self._lock.hold():
            manifest = self._state()
            self._clear_scrap(manifest)
            # what this build reads, recorded before dbt lists a file (callmetrics.arrivals)
            inputs = (
                None
                if self.raw_dir is None
                else arrivals.inputs_of(self.raw_dir, target=self.target)
            )
            live = manifest.history[-1] if manifest.history else None
            reused: int | None = None
            rewritten: int | None = None
            step = "preparing the work file"
            try:
                if live is None:
                    step = "creating a fresh work file"
                    self.work_dir.mkdir()
                    duck.create_compatible(self.work_path)
                    method, base = "fresh", None
                else:
                    slot = self._free_slot(manifest)
                    if slot is not None:
                        # The kept file is brought to the live version's bytes, rewriting only
                        # the blocks that differ: the build starts from the live state (no
                        # night's arrivals applied twice) without writing a whole copy.
                        step = f"reusing {slot.name} as the work file"
                        os.rename(self.version_dir(slot.number), self.work_dir)
                        manifest.history.remove(slot)
                        manifest.save(self.manifest_path)
                        step = f"bringing {slot.name} up to {live.name} in the work file"
                        rewritten = sync_file(self._version_path(live), self.work_path)
                        method, base, reused = "reuse", live.number, slot.number
                    else:
                        manifest.save(self.manifest_path)
                        step = f"copying {live.name} into the work file"
                        self.work_dir.mkdir()
                        copying = self.work_dir / f"{self.db_name}.copying"
                        copy_file(self._version_path(live), copying)
                        os.rename(copying, self.work_path)
                        method, base = "copy", live.number
                # a reused folder's record of its own inputs is not this build's
                (self.work_dir / arrivals.INPUTS_FILE).unlink(missing_ok=True)
            except (OSError, duckdb.Error) as exc:
                # leave nothing half-written behind: a retry after freeing space starts clean
                remove_tree(self.work_dir)
                raise UserError(
                    f"{step} in {self.versions_dir} failed: {_reason(exc)}; "
                    "nothing was published"
                ) from None
            info = {
                "method": method,
                "base": base,
                "reused": reused,
                "rewritten_bytes": rewritten,
                "prepared_at": _now().isoformat(),
                "prepare_seconds": round(time.perf_counter() - started, 3),
                "pid": os.getpid(),
                "run_id": run_id,
                "inputs": inputs,
            }
            try:
                write_atomic(self.work_info_path, json.dumps(info))
            except OSError as exc:
                remove_tree(self.work_dir)
                raise UserError(
                    f"writing {self.work_info_path} failed: {_reason(exc)}; nothing was published"
                ) from None
            return _slot_of(self.work_path, info)

    # ----------------------------------------------------------------- publish

    def publish_work(self, run_id: str | None = None) -> PublishReport:
        """Audit the work file, stamp, checkpoint, export Parquet, switch the link.

        With `run_id`, only the work file that run prepared is published."""
        fault_point(self.fault, "before_publish")
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
            try:
                remove_tree(staging)
                staging.mkdir(parents=True)
                live = manifest.history[-1] if manifest.history else None
                audit, copies, t_checkpoint, t_parquet = self._stamp_and_export(
                    info, number, published_at, staging, live
                )
                # beside the version: its Parquet digests and, when known, its inputs
                write_atomic(self.work_dir / DIGESTS_FILE, json.dumps(copies.digests))
                inputs = info.get("inputs")
                if isinstance(inputs, dict):
                    arrivals.write_inputs(self.work_dir, inputs)
            except (OSError, duckdb.Error) as exc:
                remove_tree(staging)
                raise UserError(
                    f"publishing {name} (checkpoint and Parquet copies) failed: {_reason(exc)}; "
                    "nothing was published"
                ) from None
            except BaseException:
                remove_tree(staging)
                raise
            fault_point(self.fault, "after_parquet")
            version_dir = self.version_dir(number)
            fsync_file(self.work_path)
            os.rename(self.work_dir, version_dir)
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
            fault_point(self.fault, "before_switch")
            switch_symlink(self.link, self._link_target(number))  # the commit point
            fault_point(self.fault, "after_switch")
            switch_symlink(self.parquet_dir / CURRENT, name)
            t_switch = time.perf_counter()
            seconds = {
                "prepare": float(str(info.get("prepare_seconds", 0.0))),
                "checkpoint": round(t_checkpoint - t0, 3),
                "parquet": round(t_parquet - t_checkpoint, 3),
                "parquet_kept": len(copies.kept),
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
                parquet_bytes=copies.bytes,
                warehouse_bytes=self.version_path(number).stat().st_size,
                parquet_folder=self.parquet_dir / CURRENT,
            )

    def _stamp_and_export(
        self,
        info: dict[str, object],
        number: int,
        published_at: datetime,
        staging: Path,
        live: Version | None,
    ) -> tuple[duck.Audit, duck.ParquetCopies, float, float]:
        """Audit the marts, stamp the version, checkpoint, write the Parquet copies (linking
        the live version's copy of each mart that did not change)."""
        previous, previous_digests = None, None
        if live is not None:
            previous = self.parquet_dir / live.name
            previous_digests = _read_json(self.version_dir(live.number) / DIGESTS_FILE)
        name = version_name(number)
        base = None if info.get("base") is None else int(str(info["base"]))
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
            copies = duck.export_parquet(
                con, audit.parquet_tables, staging, previous, previous_digests
            )
            t_parquet = time.perf_counter()
        if Path(f"{self.work_path}.wal").exists():
            raise RuntimeError(f"{self.work_path}.wal is left after a checkpoint")
        return audit, copies, t_checkpoint, t_parquet

    def _prune(self, manifest: Manifest) -> None:
        """Keep the newest `keep` versions; a reader holding a removed one keeps its inode."""
        while len(manifest.history) > self.keep:
            old = manifest.history.pop(0)
            remove_tree(self.version_dir(old.number))
        kept = {v.name for v in manifest.history}
        for path in self.parquet_dir.iterdir():
            if path.name != CURRENT and path.name not in kept:
                remove_tree(path)

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


def _slot_of(path: Path, info: dict[str, object]) -> WorkSlot:
    """The WorkSlot that a work file's information (work.json) describes."""

    def number(key: str) -> int | None:
        value = info.get(key)
        return None if value is None else int(str(value))

    return WorkSlot(
        path=path,
        method=str(info.get("method")),
        base=number("base"),
        prepare_seconds=float(str(info.get("prepare_seconds", 0.0))),
        run_id=None if info.get("run_id") is None else str(info.get("run_id")),
        reused=number("reused"),
        rewritten_bytes=number("rewritten_bytes"),
    )


def _read_json(path: Path) -> dict[str, str] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None


def _now() -> datetime:
    return datetime.now(UTC)


def _reason(exc: BaseException) -> str:
    """An OS or DuckDB error in a few words ('No space left on device')."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
