"""One build of a warehouse at a time, refused up front with who is building.

`callmetrics build` holds an `flock` on `<warehouse>.versions/build.lock` for its whole run and
writes its pid, start time and command into the file. A second build fails at once with one
line naming the running one, instead of building for minutes and failing at publish. The
kernel drops the lock when its process dies, even by SIGKILL: a later build takes the lock
over and says whose stale lock it was. The file descriptor is not inherited by dbt or any
other child process (Python opens it close-on-exec), so only the build itself holds it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from callmetrics.errors import UserError

LOCK_NAME = "build.lock"


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) the build lock."""

    pid: int | None
    started_at: str
    command: str

    def describe(self) -> str:
        pid = "an unknown pid" if self.pid is None else f"pid {self.pid}"
        return f"{pid}, started {self.started_at}"


def _read(fd: int) -> Holder | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", errors="replace").strip()
    if not text:
        return None
    try:
        data = json.loads(text)
        pid = data.get("pid")
        return Holder(
            pid=int(pid) if pid is not None else None,
            started_at=str(data.get("started_at", "at an unknown time")),
            command=str(data.get("command", "")),
        )
    except (ValueError, TypeError, AttributeError):
        return Holder(pid=None, started_at="at an unknown time", command="")


class BuildLock:
    def __init__(self, versions_dir: Path, warehouse: Path) -> None:
        self.path = versions_dir / LOCK_NAME
        self.warehouse = warehouse

    @contextmanager
    def hold(self) -> Iterator[Holder | None]:
        """Hold the lock for the block; yields the stale holder taken over, if any."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(
                f"cannot create the build lock {self.path}: {exc.strerror or exc}; "
                "the warehouse folder must be writable by the build"
            ) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                holder = _read(fd)
                who = holder.describe() if holder else "its pid is not recorded yet"
                raise UserError(
                    f"another build of {self.warehouse} is running ({who}); wait for it to "
                    "end, or stop that process, and try again"
                ) from None
            # A clean end empties the file; the flock was free, so whoever wrote what is left
            # died without cleaning up (killed, power cut): a stale lock, taken over.
            stale = _read(fd)
            me = {
                "pid": os.getpid(),
                "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": " ".join(sys.argv),
            }
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(me) + "\n").encode())
            os.fsync(fd)
            try:
                yield stale
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
