"""`--out` writes only regular files, atomically, with the umask's permissions (issue 16, item 3).

Every special file here is one the test makes in its own tmp folder: a FIFO stands in for a
device node (both are "not a regular file" to the writer), a symbolic link to a FIFO stands in
for `/dev/stdout`. The command line runs as a real process against a real warehouse.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BuiltWarehouse

RANGE = ["--start", "2025-01-01", "--end", "2025-12-31"]


def run_cli(
    wh: BuiltWarehouse, *args: str, umask: int | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CALLMETRICS_WAREHOUSE": str(wh.warehouse),
           "CALLMETRICS_RAW_DIR": str(wh.raw_dir)}  # fmt: skip

    def set_umask() -> None:
        if umask is not None:
            os.umask(umask)

    return subprocess.run(
        [sys.executable, "-m", "callmetrics.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=set_umask,
        check=False,
    )


def one_line_error(done: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for phrase in phrases:
        assert phrase in lines[0]


def test_out_dash_is_standard_output(handmade_warehouse: BuiltWarehouse, tmp_path: Path) -> None:
    done = run_cli(handmade_warehouse, "export", *RANGE, "--out", "-")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["data"]["metrics"]["totalCalls"] > 0
    assert not (Path.cwd() / "-").exists()


def test_out_refuses_directories_fifos_and_links_to_them(
    handmade_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    fifo = tmp_path / "device-like"
    os.mkfifo(fifo)
    stdout_like = tmp_path / "stdout"
    stdout_like.symlink_to(fifo)  # like /dev/stdout -> /proc/self/fd/1 -> a pipe
    folder = tmp_path / "folder"
    folder.mkdir()
    for path, kind in ((fifo, "FIFO"), (stdout_like, "FIFO"), (folder, "a directory")):
        done = run_cli(handmade_warehouse, "export", *RANGE, "--out", str(path))
        one_line_error(done, str(path), kind, "not a regular file")
    one_line_error(run_cli(handmade_warehouse, "export", *RANGE, "--out", str(fifo)),
                   "use --out - for standard output")  # fmt: skip
    # nothing was replaced: the FIFO and the link are what they were, the folder is empty
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert stdout_like.is_symlink() and os.readlink(stdout_like) == str(fifo)
    assert list(folder.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["device-like", "folder", "stdout"]


def test_out_follows_a_symlink_and_replaces_its_target_atomically(
    handmade_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    real = tmp_path / "payloads" / "latest.json"
    real.parent.mkdir()
    real.write_text("old\n")
    real.chmod(0o640)
    link = tmp_path / "latest-link.json"
    link.symlink_to(real)
    done = run_cli(handmade_warehouse, "export", *RANGE, "--out", str(link))
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and os.readlink(link) == str(real)  # still a link
    payload = json.loads(real.read_text())
    assert payload["data"]["metrics"]["totalCalls"] > 0
    assert stat.S_IMODE(real.stat().st_mode) == 0o640  # a replaced file keeps its mode
    assert sorted(p.name for p in real.parent.iterdir()) == ["latest.json"]  # no temp left
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "nowhere" / "x.json")
    one_line_error(run_cli(handmade_warehouse, "export", *RANGE, "--out", str(dangling)),
                   "symbolic link to a missing file")  # fmt: skip
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_respect_the_umask(
    handmade_warehouse: BuiltWarehouse, tmp_path: Path, umask: int, mode: int
) -> None:
    out = tmp_path / "p.json"
    done = run_cli(handmade_warehouse, "export", *RANGE, "--out", str(out), umask=umask)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == mode
    folder = tmp_path / "all"
    done = run_cli(handmade_warehouse, "export-all", *RANGE, "--out", str(folder), umask=umask)
    assert done.returncode == 0, done.stderr
    files = [p for p in folder.rglob("*.json")]
    assert len(files) > 2
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {mode}


def test_export_all_into_a_file_is_one_line(
    handmade_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    one_line_error(run_cli(handmade_warehouse, "export-all", *RANGE, "--out", str(blocker)),
                   "is not a directory")  # fmt: skip
