"""File-system steps of publishing: atomic pointer switches, durable renames, locks.

Every step that readers can observe is a single `rename(2)` (atomic on POSIX): a symbolic link
is switched by creating a new link under a temporary name and renaming it over the old one.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from callmetrics.errors import UserError


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new entry in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def switch_symlink(link: Path, target: str) -> None:
    """Point `link` at `target` (relative to the link's folder) in one atomic rename."""
    temp = link.with_name(f".{link.name}.switch-{os.getpid()}")
    temp.unlink(missing_ok=True)
    os.symlink(target, temp)
    os.replace(temp, link)
    fsync_dir(link.parent)


def write_atomic(path: Path, text: str) -> None:
    """Write a small text file so readers see the old content or the new, never a part."""
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)  # a full disk leaves no half-written temporary file
        raise
    fsync_dir(path.parent)


def copy_file(source: Path, dest: Path) -> None:
    """Copy bytes with copy_file_range (a reflink, so no data copied, where the file system
    supports it), falling back to an ordinary copy."""
    with open(source, "rb") as src, open(dest, "wb") as dst:
        remaining = os.fstat(src.fileno()).st_size
        try:
            while remaining > 0:
                done = os.copy_file_range(src.fileno(), dst.fileno(), remaining)
                if done == 0:
                    break
                remaining -= done
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            src.seek(0)
            dst.seek(0)
            dst.truncate()
            shutil.copyfileobj(src, dst, length=16 * 1024 * 1024)
        dst.flush()
        os.fsync(dst.fileno())


SYNC_BLOCK = 1 << 20


def sync_file(source: Path, dest: Path) -> int:
    """Make `dest` (an older copy of a file like `source`) byte for byte equal to `source`,
    writing only the blocks that differ, then truncating it to `source`'s size; return the bytes
    written. A DuckDB file rewrites only the blocks a checkpoint changed, so an older version of
    the warehouse shares most of its blocks with the live one: this reads both files but writes
    a fraction of a copy."""
    written = 0
    with open(source, "rb") as src, open(dest, "r+b") as dst:
        size = os.fstat(src.fileno()).st_size
        new = bytearray(SYNC_BLOCK)
        old = bytearray(SYNC_BLOCK)
        offset = 0
        while offset < size:
            count = src.readinto(new)
            if count == 0:
                break
            have = dst.readinto(old)
            if have != count or memoryview(new)[:count] != memoryview(old)[:count]:
                dst.seek(offset)
                dst.write(memoryview(new)[:count])
                written += count
            offset += count
            dst.seek(offset)
        dst.truncate(size)
        dst.flush()
        os.fsync(dst.fileno())
    return written


def is_held(path: Path) -> bool:
    """True when another process holds a DuckDB lock on `path` (a reader or a writer).

    DuckDB takes a POSIX record lock on its database file: shared for a read-only connection,
    exclusive for a read-write one. Asking for an exclusive lock without waiting tells whether
    anyone holds either. Locks held by this process never conflict with it, so a probe in this
    process only sees other processes.
    """
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return True
        raise
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


class StoreLock:
    """One build, publish or rollback at a time per warehouse (an `flock` on a lock file).

    The kernel drops the lock when the holding process dies, even by SIGKILL, so a killed build
    never blocks the next one. Re-entrant within a process: a build that holds the lock for its
    whole run can call publish, which takes it again.
    """

    _held: dict[str, tuple[int, int]] = {}
    _guard = threading.Lock()

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what

    @contextmanager
    def hold(self) -> Iterator[None]:
        key = str(self.path)
        with self._guard:
            if key in self._held:
                fd, depth = self._held[key]
                self._held[key] = (fd, depth + 1)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    os.close(fd)
                    if exc.errno in (errno.EACCES, errno.EAGAIN, errno.EWOULDBLOCK):
                        raise UserError(
                            f"another build or rollback of {self.what} is running; "
                            "wait for it to end and try again"
                        ) from None
                    raise
                self._held[key] = (fd, 1)
        try:
            yield
        finally:
            with self._guard:
                fd, depth = self._held[key]
                if depth > 1:
                    self._held[key] = (fd, depth - 1)
                else:
                    del self._held[key]
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)


def remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path)
