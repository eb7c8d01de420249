"""The dbt resource skips dagster-dbt's two fixed costs before a dbt call (a `dbt --version`
subprocess, a dbt adapter opened in this process) and still reports dbt's real version."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from callmetrics.orchestration.project import ProjectDbtCli, dbt_executable
from callmetrics.settings import DBT_PROJECT_DIR


def test_the_version_comes_without_a_subprocess_and_no_adapter_is_opened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    executable = dbt_executable()
    printed = subprocess.check_output([executable, "--version"], text=True)
    expected = re.search(r"(\d+\.\d+\.\d+)", printed)
    assert expected is not None, printed

    def no_subprocess(*args: object, **kwargs: object) -> bytes:
        raise AssertionError(f"a subprocess was started: {args}")

    monkeypatch.setattr("dagster_dbt.core.resource.check_output", no_subprocess)
    resource = ProjectDbtCli(
        project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR),
        dbt_executable=executable,
    )  # fmt: skip
    assert Path(executable).parent.joinpath("python").exists()  # the venv's own dbt
    assert str(resource._cli_version) == expected.group(1)
    assert resource._initialize_dbt_core_adapter(["build"]) is None
