"""Where payloads go: standard output or regular files, replaced atomically.

The rules, for ``--out PATH`` of ``export`` and every file ``export-all`` writes:

- ``-`` is standard output.
- Only regular files are written. A path that names a directory, a device node, a FIFO or a
  socket is refused with one line (``--out /dev/stdout`` therefore says to use ``--out -``).
- A symbolic link is followed, deliberately: the file it points at is replaced and the link
  stays a link (as a shell's ``>`` would). A link to nothing (dangling) is refused, so a typo
  in a link never creates files in unexpected places.
- A file is replaced atomically: the text goes to a temporary file in the same folder as the
  (link-resolved) target, is flushed to disk, then renamed over it. A reader sees the old
  payload or the new one; a failure (a full disk) removes the temporary file and leaves the old
  payload as it was.
- Permissions: a new file gets ``0666`` less the process's umask, like any file a shell
  creates; a replaced file keeps its own permission bits.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

from callmetrics.errors import UserError

STDOUT = "-"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def target_of(path: Path) -> tuple[Path, int | None]:
    """The regular file that writing to `path` replaces (symbolic links followed) and its
    permission bits (None when it does not exist yet); raises UserError for anything else."""
    if path.is_symlink() and not path.exists():
        raise UserError(
            f"cannot write {path}: it is a symbolic link to a missing file "
            f"({os.readlink(path)}); remove the link or point it at a file"
        )
    try:
        info = path.stat()  # follows links
    except FileNotFoundError:
        return path, None
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        hint = " (use --out - for standard output)" if not stat.S_ISDIR(info.st_mode) else ""
        raise UserError(
            f"cannot write {path}: it is {_kind(info.st_mode)}, not a regular file; "
            f"payloads are written only to regular files{hint}"
        )
    return Path(os.path.realpath(path)), stat.S_IMODE(info.st_mode)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to the regular file ``path`` (see the module docstring)."""
    target, mode = target_of(path)
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, mode if mode is not None else 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(out: str | None, text: str) -> None:
    """Write to standard output (`out` None or ``-``) or to the regular file `out`."""
    if out is None or out == STDOUT:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            # the reader went away (`| head`): not an error worth a traceback
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError as exc:
            raise UserError(f"cannot write to standard output: {exc.strerror or exc}") from None
        return
    write_atomic(Path(out), text)


def check_folder(out: Path) -> None:
    """`out` can be export-all's directory: it is one, or does not exist yet (it is created
    with the first payload, so a failed export before that leaves nothing behind)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"cannot write payloads into {out}: it exists and is not a directory")


def ensure_folder(out: Path) -> None:
    """Create export-all's directory (once there is something to write)."""
    check_folder(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out}: {exc.strerror or exc}") from None
