"""The Hive jar pyspark 4's wheel leaves out and its Thrift server still needs at times.

Spark 4 no longer ships `hive-llap-common`, yet Hive 2.3's `SessionState.close`, which the
Thrift server runs when a client closes its session, sometimes builds a new Hive client, and
that client registers Hive's built-in functions. The registry names an LLAP class, so without
the jar the close fails (`NoClassDefFoundError: org/apache/hadoop/hive/llap/security/
LlapSigner$Signable`), dbt reports the node it had just built as failed, and the registry is left
half-initialised for the server's lifetime. It happens only when the closing thread has no
usable Hive client, so it is rare and looks random (one CI build so far failed that way).

The jar (Apache Hive 2.3.9, Apache License 2.0) is inside pyspark 3.5's source distribution on
PyPI. `python -m callmetrics.spark.hive_jars` (run by `make install-test`) downloads that
archive once at install time, takes the jar, checks its SHA-256 and keeps it in this Python
environment (`<sys.prefix>/share/callmetrics/jars`). The local server puts it on the driver's
class path (callmetrics.spark.server); nothing is downloaded when the server starts.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from callmetrics.errors import UserError

JAR = "hive-llap-common-2.3.9.jar"
JAR_SHA256 = "bbc07775a0b14180540b44d7879fb35dc92967a1e7a968063ca890c4e604c0b9"
SOURCE = "pyspark==3.5.5"  # its sdist holds deps/jars/<JAR>
FETCH = "python -m callmetrics.spark.hive_jars"


def jar_path() -> Path:
    """Where this environment keeps the jar."""
    return Path(sys.prefix) / "share" / "callmetrics" / "jars" / JAR


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def installed_jar() -> Path | None:
    """The jar, when it is installed and intact."""
    path = jar_path()
    return path if path.is_file() and _sha256(path) == JAR_SHA256 else None


def require_jar() -> Path:
    """The jar, or a one-line UserError saying how to install it."""
    path = installed_jar()
    if path is None:
        raise UserError(
            f"the local Spark server needs {JAR}, which pyspark 4 does not ship (without it a "
            f"closing session can fail a dbt node): run `{FETCH}` once (make install-test does)"
        )
    return path


def fetch(quiet: bool = False) -> Path:
    """Install the jar unless it is there: download the source archive, extract the jar,
    check its digest, then move it into place (a partial download never counts)."""
    found = installed_jar()
    if found is not None:
        return found
    target = jar_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="callmetrics-jars-") as scratch:
        folder = Path(scratch)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", SOURCE, "--no-deps", "--no-binary",
             ":all:", "--quiet", "--dest", str(folder)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        archives = sorted(folder.glob("pyspark-*.tar.gz"))
        if done.returncode != 0 or not archives:
            reason = (done.stderr.strip().splitlines() or ["no archive"])[-1]
            raise UserError(f"cannot download {SOURCE} to take {JAR} from it: {reason}")
        with tarfile.open(archives[0], "r:gz") as archive:
            member = next((m for m in archive if m.name.endswith(f"/deps/jars/{JAR}")), None)
            if member is None or (stream := archive.extractfile(member)) is None:
                raise UserError(f"{archives[0].name} holds no {JAR}")
            partial = target.with_suffix(".partial")
            partial.write_bytes(stream.read())
        if _sha256(partial) != JAR_SHA256:
            partial.unlink()
            raise UserError(f"{JAR} from {archives[0].name} does not have the expected SHA-256")
        partial.replace(target)
    if not quiet:
        print(f"callmetrics: installed {target}", file=sys.stderr)
    return target


def main() -> int:
    try:
        path = fetch()
    except UserError as exc:
        print(f"callmetrics: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
