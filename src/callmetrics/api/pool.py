"""A small pool of read-only exporters on the published warehouse, one version at a time.

``CALLMETRICS_WAREHOUSE`` is a symbolic link that a publish switches to a new version file
(``docs/publishing.md``). Every request looks at where the link points (one ``stat``): while
it is the version the pool has open, the request borrows one of its exporters; when it points
elsewhere, the pool opens the new version file (by its resolved path, so every connection of a
generation is on the same file whatever the link does meanwhile) and later requests use it.
The old generation is closed when its last in-flight request returns its exporter, so a request
always finishes on the version it started on, and the kept version files are soon free again
for the next build to reuse. Nothing here writes or locks the warehouse, so a build and a
publish are never blocked.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from callmetrics.api.cache import DEFAULT_MAX_BYTES, AnswerCache
from callmetrics.errors import UserError
from callmetrics.exporter import Exporter, WarehouseFacts

log = logging.getLogger("callmetrics.api")

FileKey = tuple[int, int, int]  # st_dev, st_ino, st_mtime_ns of the version file


class Unavailable(Exception):
    """No published warehouse can be read (none yet, or the live one cannot be opened)."""


@dataclass
class Generation:
    """The exporters open on one version file."""

    key: FileKey
    path: Path
    size: int
    facts: WarehouseFacts
    cache: AnswerCache = field(default_factory=AnswerCache)
    idle: list[Exporter] = field(default_factory=list)
    opened: int = 0
    in_flight: int = 0
    retired: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)

    def take(self) -> Exporter:
        with self.cond:
            while not self.idle and self.opened >= self.size:
                self.cond.wait()
            if self.idle:
                return self.idle.pop()
            self.opened += 1
        try:
            return Exporter(self.path)
        except BaseException as exc:
            with self.cond:
                self.opened -= 1
                self.cond.notify()
            if isinstance(exc, UserError | OSError):
                raise Unavailable(f"cannot open {self.path}: {exc}") from None
            raise

    def give(self, exporter: Exporter) -> None:
        with self.cond:
            self.idle.append(exporter)
            self.cond.notify()

    def close(self) -> None:
        with self.cond:
            idle, self.idle = self.idle, []
        for exporter in idle:
            exporter.close()


def _file_key(path: Path) -> FileKey:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_mtime_ns)


class WarehousePool:
    """Borrow an exporter on the live version with ``with pool.exporter() as (exp, gen):``."""

    def __init__(self, link: Path, size: int = 4, cache_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if size < 1:
            raise ValueError("the pool needs at least one connection")
        self.link = link
        self.size = size
        self.cache_bytes = cache_bytes
        self._lock = threading.Lock()  # guards _live and the in_flight counts
        self._opening = threading.Lock()  # one thread opens a new version at a time
        self._live: Generation | None = None
        self._closed = False

    def _live_key(self) -> FileKey:
        try:
            return _file_key(self.link)
        except OSError:
            raise Unavailable("no warehouse version is published yet") from None

    def _enter(self, key: FileKey) -> Generation | None:
        with self._lock:
            live = self._live
            if live is not None and live.key == key:
                live.in_flight += 1
                return live
        return None

    def _open(self) -> Generation:
        path = Path(os.path.realpath(self.link))
        try:
            key = _file_key(path)
            exporter = Exporter(path)
        except (OSError, UserError) as exc:
            raise Unavailable(f"the published warehouse {path} cannot be opened: {exc}") from None
        try:
            facts = exporter.facts
        except Exception:
            exporter.close()
            raise
        generation = Generation(key=key, path=path, size=self.size, facts=facts,
                                cache=AnswerCache(self.cache_bytes), idle=[exporter], opened=1)
        log.info("serving warehouse version %s (%s)", facts.version, path)
        return generation

    def _acquire(self) -> Generation:
        if self._closed:
            raise Unavailable("the server is shutting down")
        key = self._live_key()
        generation = self._enter(key)
        if generation is not None:
            return generation
        with self._opening:
            generation = self._enter(self._live_key())
            if generation is not None:
                return generation  # another thread opened it meanwhile
            try:
                fresh = self._open()
            except Unavailable:
                with self._lock:
                    if self._live is None:
                        raise
                    log.warning("keeping version %s: the new link target cannot be opened",
                                self._live.facts.version, exc_info=True)
                    self._live.in_flight += 1
                    return self._live
            with self._lock:
                old, self._live = self._live, fresh
                fresh.in_flight += 1
                if old is not None:
                    old.retired = True
                    if old.in_flight == 0:
                        old.close()
            return fresh

    def _release(self, generation: Generation) -> None:
        with self._lock:
            generation.in_flight -= 1
            done = generation.retired and generation.in_flight == 0
        if done:
            generation.close()

    @contextmanager
    def exporter(self) -> Iterator[tuple[Exporter, Generation]]:
        generation = self._acquire()
        try:
            exporter = generation.take()
            try:
                yield exporter, generation
            finally:
                generation.give(exporter)
        finally:
            self._release(generation)

    def facts(self) -> WarehouseFacts:
        """The live version's facts (opening it if needed)."""
        with self.exporter() as (_, generation):
            return generation.facts

    def close(self) -> None:
        with self._lock:
            self._closed = True
            live, self._live = self._live, None
            if live is not None:
                live.retired = True
                done = live.in_flight == 0
            else:
                done = False
        if live is not None and done:
            live.close()
