"""One typed `Settings`: every CALLMETRICS_* variable the project reads is a field, validated in
one line, documented in the README's table, and reaches dbt as `--vars` of the one call."""

from __future__ import annotations

import re
from dataclasses import fields
from datetime import date, time, timedelta
from pathlib import Path

import pytest

from callmetrics.cli import main
from callmetrics.settings import PROJECT_ROOT, Settings, SettingsError, documented

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
# Where the code reads variables: Python, dbt's profile and project, its models and macros.
READERS = ("src", "profiles.yml", "dbt_project.yml", "models", "macros", "snapshots")
VARIABLE = re.compile(r"\bCALLMETRICS_[A-Z0-9_]+\b")


def variables_named_in_code() -> set[str]:
    found: set[str] = set()
    for name in READERS:
        top = PROJECT_ROOT / name
        files = [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file()]
        for path in files:
            if path.suffix in {".py", ".yml", ".sql"}:
                found.update(VARIABLE.findall(path.read_text(encoding="utf-8")))
    return found


def test_every_variable_the_code_names_is_a_setting() -> None:
    names = {spec.metadata["env"] for spec in fields(Settings)}
    named = variables_named_in_code()
    assert len(named) >= 18
    assert named - names == set()


def test_the_readme_table_is_the_settings() -> None:
    rows = re.findall(r"^\| `(CALLMETRICS_\w+)` \| ([^|]*) \| ([^|]*) \|$", README, re.MULTILINE)
    table = {env: (default.strip(), doc.strip()) for env, default, doc in rows}
    for env, default, doc in documented():
        assert env in table, f"{env} is not in the README's table"
        assert table[env] == (f"`{default}`" if default else "unset", doc), env


def test_defaults_and_typed_values(tmp_path: Path) -> None:
    default = Settings.from_env({})
    assert default == Settings()
    assert default.raw_dir == PROJECT_ROOT / "data" / "raw"
    assert default.exports == PROJECT_ROOT / "data" / "warehouse" / "exports"
    assert (default.nightly_at, default.keep_versions, default.postgres_url) == (time(2), 3, None)
    read = Settings.from_env({
        "CALLMETRICS_RAW_DIR": str(tmp_path / "raw"),
        "CALLMETRICS_NIGHTLY_AT": "3:45",
        "CALLMETRICS_PARTITIONS_START": "2024-02-29",
        "CALLMETRICS_RAW_MAX_LAG_HOURS": "1.5",
        "CALLMETRICS_KEEP_VERSIONS": "5",
        "CALLMETRICS_POSTGRES_PORT": "6543",
        "CALLMETRICS_POSTGRES_URL": "  ",  # blank: unset
        "CALLMETRICS_DUCKDB_MEMORY_LIMIT": "512MB",
    })  # fmt: skip
    assert read.raw_dir == tmp_path / "raw"
    assert read.nightly_at == time(3, 45)
    assert read.partitions_start == date(2024, 2, 29)
    assert read.raw_max_lag == timedelta(minutes=90)
    assert (read.keep_versions, read.postgres_port, read.postgres_url) == (5, 6543, None)
    assert read.dbt_vars(tmp_path / "work.duckdb") == {
        "warehouse": str(tmp_path / "work.duckdb"),
        "raw_dir": str(tmp_path / "raw"),
        "duckdb_memory_limit": "512MB",
    }


@pytest.mark.parametrize(
    ("variable", "text", "says"),
    [
        ("CALLMETRICS_NIGHTLY_AT", "25:00", "is not a time of day: write HH:MM (UTC)"),
        ("CALLMETRICS_PARTITIONS_START", "2024-13-01", "is not a date: write YYYY-MM-DD"),
        ("CALLMETRICS_RAW_MAX_LAG_HOURS", "a day", "is not a number of hours"),
        ("CALLMETRICS_MART_MAX_LAG_HOURS", "-1", "is not a number of hours (0 or more)"),
        ("CALLMETRICS_KEEP_VERSIONS", "1", "must be 2 or more"),
        ("CALLMETRICS_KEEP_VERSIONS", "three", "is not a whole number"),
        ("CALLMETRICS_POSTGRES_PORT", "70000", "must be 1 or more and at most 65535"),
        ("CALLMETRICS_POSTGRES_SWITCH_WAIT", "soon", "is not a number of seconds"),
        ("CALLMETRICS_API_POOL_SIZE", "0", "must be 1 or more"),
        ("CALLMETRICS_DUCKDB_MEMORY_LIMIT", "lots", "is not an amount of memory"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(variable: str, text: str, says: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({variable: text})
    assert str(refused.value).startswith(f"{variable}={text!r} {says}")
    assert "\n" not in str(refused.value)


def test_the_command_line_refuses_a_bad_setting_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALLMETRICS_KEEP_VERSIONS", "1")
    assert main(["rollback", "--list"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "callmetrics rollback: error: CALLMETRICS_KEEP_VERSIONS='1' must be 2 or more\n"
    )
