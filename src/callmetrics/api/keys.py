"""API keys: created and revoked by ``callmetrics keys``, checked by the server on every request.

A key is ``cmk_<id>_<secret>``: a public 12-hex-digit id (what logs and ``keys list`` show) and
a secret of 256 random bits from ``secrets``. The keys file (``CALLMETRICS_KEYS``, default
``data/api-keys.json``, mode 0600) stores only the SHA-256 of the whole key. A fast hash is
the right one here: the secret is random and 256 bits long, so nobody can guess it back from
its hash, and a slow password hash (bcrypt, scrypt) would only add its cost to every request.
The id finds the record; the hashes are then compared with ``hmac.compare_digest`` (constant
time), also when the id is unknown, so timing says nothing about which ids exist.

The file is rewritten whole through a temporary file and a rename, under an ``flock``, so the
server (which re-reads it when its inode, size or time changes) sees the old or the new file.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from callmetrics.errors import UserError
from callmetrics.settings import KEYS_ENV

PREFIX = "cmk_"
_ID_HEX = 12
_SECRET_BYTES = 32  # 256 bits
_TOKEN = re.compile(rf"^{PREFIX}(?P<id>[0-9a-f]{{{_ID_HEX}}})_[A-Za-z0-9_-]{{43}}$")
_FORMAT = 1

ScopeKind = Literal["organization", "reseller", "platform"]


@dataclass(frozen=True)
class ApiKey:
    """One key's record: never the secret, only its hash."""

    id: str
    name: str
    scope: ScopeKind
    scope_id: str | None
    hash: str
    created: str
    revoked: str | None = None

    @property
    def scope_label(self) -> str:
        return "platform" if self.scope == "platform" else f"{self.scope} {self.scope_id}"


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def key_id_of(token: str) -> str | None:
    """The id part of a well-formed key; ``None`` for anything else."""
    match = _TOKEN.match(token)
    return match["id"] if match else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _read(path: Path) -> list[ApiKey]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise UserError(f"cannot read the keys file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
        return [ApiKey(**record) for record in data["keys"]]
    except (ValueError, KeyError, TypeError):
        raise UserError(
            f"the keys file {path} is not a callmetrics keys file: restore it or point "
            f"{KEYS_ENV} at another file"
        ) from None


def _write(path: Path, keys: list[ApiKey]) -> None:
    text = json.dumps({"format": _FORMAT, "keys": [asdict(k) for k in keys]}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(f"{path}.lock", "a")  # noqa: SIM115 (held for the block)
    except OSError as exc:
        raise UserError(f"cannot write the keys file {path}: {exc.strerror or exc}") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def create_key(
    path: Path, scope: ScopeKind, scope_id: str | None, name: str | None = None
) -> tuple[ApiKey, str]:
    """Add a key; return its record and the key itself (shown once, never stored)."""
    if (scope == "platform") != (scope_id is None):
        raise ValueError("a platform key has no scope id; the others need one")
    if scope_id is not None and not scope_id.strip():
        raise UserError(f"the {scope} id is empty: give the id the key may see")
    with _locked(path):
        keys = _read(path)
        taken = {k.id for k in keys}
        key_id = secrets.token_hex(_ID_HEX // 2)
        while key_id in taken:
            key_id = secrets.token_hex(_ID_HEX // 2)
        token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
        assert key_id_of(token) == key_id
        record = ApiKey(
            id=key_id, name=name or "", scope=scope, scope_id=scope_id,
            hash=hash_key(token), created=_now(),
        )
        _write(path, [*keys, record])
    return record, token


def list_keys(path: Path) -> list[ApiKey]:
    return _read(path)


def revoke_key(path: Path, key_id: str) -> ApiKey:
    """Mark a key revoked (kept in the file, so ``keys list`` still shows it)."""
    with _locked(path):
        keys = _read(path)
        for n, key in enumerate(keys):
            if key.id == key_id:
                if key.revoked is None:
                    keys[n] = replace(key, revoked=_now())
                    _write(path, keys)
                return keys[n]
    raise UserError(f"no key has the id {key_id!r}: `callmetrics keys list` shows the ids")


_DUMMY_HASH = hash_key(PREFIX + "0" * _ID_HEX + "_" + "0" * 43)


class KeysUnreadable(Exception):
    """The keys file exists but cannot be read or parsed: no key can be checked."""


class KeyRing:
    """The server's view of the keys file, re-read whenever the file changes. A file that
    cannot be read refuses every key (``KeysUnreadable``) until it is fixed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int, int] | None = None
        self._keys: dict[str, ApiKey] = {}

    def _current(self) -> dict[str, ApiKey]:
        try:
            st = os.stat(self.path)
            signature = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            signature = None
        with self._lock:
            if signature != self._signature:
                try:
                    keys = _read(self.path) if signature is not None else []
                except UserError as exc:
                    raise KeysUnreadable(str(exc)) from None
                self._keys = {k.id: k for k in keys}
                self._signature = signature
            return self._keys

    def authenticate(self, token: str) -> ApiKey | None:
        """The live key this token is, or ``None`` (malformed, unknown or revoked)."""
        key_id = key_id_of(token)
        if key_id is None:
            return None
        key = self._current().get(key_id)
        expected = key.hash if key is not None else _DUMMY_HASH
        matches = hmac.compare_digest(hash_key(token), expected)
        if key is None or not matches or key.revoked is not None:
            return None
        return key
