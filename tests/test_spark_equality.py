"""The same raw files built on Spark and on DuckDB give the same warehouse and the same payloads.

`CALLMETRICS_TARGET=spark callmetrics build` runs the nightly job with `dbt build --target
spark` on a real local Thrift server (tests/spark_support.py), then copies Spark's marts into
the DuckDB work file that is published. Checked against `callmetrics build` on DuckDB:

- every table of the `marts` schema (fact, dimensions, section marts, section_columns) has the
  same columns with the same types, and the same rows: integers, text, times and lists exactly,
  floating sums within 1e-9 relative (only `_loaded_at`, the time of writing, is left out);
- `export-all` writes byte-identical payloads from both (every organization, every reseller,
  all organizations), over the whole data and over a range whose edges cut buckets, in UTC and
  in each organization's own zone;
- dbt passes at least as many tests (data and unit tests) on Spark, in every Spark build;
- two extracts: the first is `callmetrics demo` on Spark (demo data generated with the command's
  defaults, built, exported), whose payloads must be what a DuckDB build of its raw files
  exports, byte for byte; the second is the next night's extract, built nightly on Spark on top
  of the demo's build, which must equal a fresh DuckDB build of both extracts (marts and
  payloads). That one comparison covers Spark's incremental models and the engines' agreement;
  that DuckDB's increments equal its fresh builds is tests/test_incremental.py's.

Each data set is built once per module (the fixtures below) and every assertion reads those
builds: three Spark builds (the hand-made fixture; the demo; the increment on top of it) and two
DuckDB builds (the demo's raw files, and both extracts'; the hand-made one is the session's
`handmade_warehouse`). The demo doubles as the first extract because a Spark build costs about
a minute of the server's CPU even on a few hundred calls (every model and test is several
Spark jobs), so each build left out is the largest saving the Spark tests can make.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from callmetrics.cli import main
from callmetrics.spark import server as spark_server_process
from callmetrics.spark.server import Server
from tests.conftest import BuiltWarehouse, pointed_at
from tests.spark_support import cli, cli_build, reset_spark, spark_build

LOAD_COLUMNS = ("_loaded_at",)
REL_TOL = 1e-9
DONE = re.compile(r"(\d+) dbt nodes built, (\d+) dbt tests and (\d+) freshness checks passed")
SEED = 31
DEMO_CALLS = 600  # with the demo's other defaults: 60 days ending yesterday, 12 organizations
INCREMENT_CALLS = 60  # the second extract's new day (plus late versions of a tenth of the calls)


# ---------------------------------------------------------------------------- comparing


def _tables(con: duckdb.DuckDBPyConnection, db: str) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "select table_name from duckdb_tables() where database_name = ? "
            "and schema_name = 'marts' order by 1",
            [db],
        ).fetchall()
    ]


def _columns(con: duckdb.DuckDBPyConnection, db: str, table: str) -> list[tuple[str, str]]:
    return [
        (name, kind)
        for name, kind in con.execute(
            "select column_name, data_type from duckdb_columns() where database_name = ? "
            "and schema_name = 'marts' and table_name = ? order by column_index",
            [db, table],
        ).fetchall()
    ]


def _sort_key(row: tuple[Any, ...], exact: list[int]) -> tuple[Any, ...]:
    return tuple((0, "") if row[i] is None else (1, row[i]) for i in exact)


def _same_value(left: Any, right: Any, kind: str) -> bool:
    if kind == "DOUBLE" and left is not None and right is not None:
        return math.isclose(left, right, rel_tol=REL_TOL, abs_tol=1e-12)
    return left == right


def mart_differences(duck: Path, spark: Path) -> list[str]:
    """What differs between the marts schemas of two published warehouses (empty: none)."""
    problems: list[str] = []
    con = duckdb.connect()
    try:
        con.execute("set timezone = 'UTC'")
        con.execute(f"attach '{duck}' as duck (read_only)")
        con.execute(f"attach '{spark}' as spark (read_only)")
        tables = _tables(con, "duck")
        assert any(t.startswith("mart_") for t in tables) and "fct_calls" in tables, tables
        if _tables(con, "spark") != tables:
            return [f"tables differ: {tables} vs {_tables(con, 'spark')}"]
        for table in tables:
            columns = _columns(con, "duck", table)
            if _columns(con, "spark", table) != columns:
                problems.append(f"{table}: columns {columns} vs {_columns(con, 'spark', table)}")
                continue
            kept = [(n, k) for n, k in columns if n not in LOAD_COLUMNS]
            listed = ", ".join(f'"{n}"' for n, _ in kept)
            exact = [i for i, (_, k) in enumerate(kept) if k != "DOUBLE"]
            rows = {
                db: sorted(
                    con.execute(f"select {listed} from {db}.marts.{table}").fetchall(),
                    key=lambda row: _sort_key(row, exact),
                )
                for db in ("duck", "spark")
            }
            if len(rows["duck"]) != len(rows["spark"]):
                problems.append(f"{table}: {len(rows['duck'])} rows vs {len(rows['spark'])}")
                continue
            for left, right in zip(rows["duck"], rows["spark"], strict=True):
                if not all(
                    _same_value(a, b, k) for a, b, (_, k) in zip(left, right, kept, strict=True)
                ):
                    problems.append(f"{table}: {left} vs {right}")
                    break
    finally:
        con.close()
    return problems


def export_all(warehouse: Path, out: Path, start: str, end: str, *extra: str) -> None:
    with pointed_at(warehouse.parent / "unused-raw", warehouse):
        assert main(["export-all", "--start", start, "--end", end, "--out", str(out), *extra]) == 0


def _payload_files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*.json"))
        if p.name != "manifest.json"
    }


def payload_differences(
    duck: Path, spark: Path, out: Path, ranges: list[tuple[str, str, tuple[str, ...]]]
) -> list[str]:
    """Export-all from both warehouses over each range; the files that differ."""
    problems: list[str] = []
    for n, (start, end, extra) in enumerate(ranges):
        folders = {}
        for name, warehouse in (("duck", duck), ("spark", spark)):
            folders[name] = out / f"range{n}" / name
            export_all(warehouse, folders[name], start, end, *extra)
        left, right = _payload_files(folders["duck"]), _payload_files(folders["spark"])
        assert len(left) >= 3, f"too few payloads for {start}..{end}: {sorted(left)}"
        if sorted(left) != sorted(right):
            problems.append(f"{start}..{end}: files {sorted(left)} vs {sorted(right)}")
            continue
        manifests = [
            json.loads((folders[k] / "manifest.json").read_text(encoding="utf-8"))
            for k in ("duck", "spark")
        ]
        for manifest in manifests:  # where and when it was written, not what
            manifest.pop("warehouse", None)
            manifest.pop("generatedAt", None)
        if manifests[0] != manifests[1]:
            problems.append(f"{start}..{end} {extra}: the manifests differ")
        differing = [name for name in left if left[name] != right[name]]
        if differing:
            problems.append(f"{start}..{end} {extra}: {differing} differ")
        # the payloads hold calls, not only empty sections
        assert json.loads(left["all-organizations.json"])["data"]["metrics"]["totalCalls"] > 0
    return problems


def counts(progress: str) -> tuple[int, int]:
    """(dbt nodes built, dbt tests passed) from the last line of `callmetrics build`."""
    found = DONE.search(progress)
    assert found, progress[-2000:]
    return int(found.group(1)), int(found.group(2))


# ----------------------------------------------------------------------- the builds


@dataclass(frozen=True)
class SparkBuilt:
    warehouse: Path
    counts: tuple[int, int]  # (dbt nodes built, dbt tests passed)


@pytest.fixture(scope="module")
def spark_clean(spark_server: Server) -> Iterator[Server]:
    spark_server_process.start(spark_server)  # when an earlier test stopped it
    reset_spark(spark_server)
    yield spark_server
    reset_spark(spark_server)


@pytest.fixture(scope="module")
def handmade_on_spark(
    spark_clean: Server,
    handmade_warehouse: BuiltWarehouse,
    tmp_path_factory: pytest.TempPathFactory,
) -> SparkBuilt:
    """The raw files of the session's DuckDB `handmade_warehouse`, built on Spark."""
    spark = tmp_path_factory.mktemp("handmade-spark") / "callmetrics.duckdb"
    reset_spark(spark_clean)
    progress = spark_build(spark_clean, handmade_warehouse.raw_dir, spark)
    return SparkBuilt(spark, counts(progress))


@dataclass(frozen=True)
class Demo:
    spark: SparkBuilt  # the published version of the demo's build (kept after the increment)
    duck: Path  # a DuckDB build of the raw files the demo generated
    payloads: Path  # the folder `callmetrics demo` wrote its payloads into
    progress: str
    first: date  # the demo data's first and last days
    last: date


@dataclass(frozen=True)
class Extracts:
    demo: Demo  # the first extract
    duck: Path  # a fresh DuckDB build of both extracts
    duck_counts: tuple[int, int]
    nightly: list[SparkBuilt]  # the first extract (the demo), then the increment on top of it
    day: date  # the second extract's
    changes: dict[str, Any]


@pytest.fixture(scope="module")
def extracts(spark_clean: Server, tmp_path_factory: pytest.TempPathFactory) -> Extracts:
    """Two extracts. The first is the demo: `CALLMETRICS_TARGET=spark callmetrics demo` from
    nothing (it generates its data, builds and exports), with a DuckDB build of the raw files
    it generated. The second is the next night's extract, built nightly on Spark on top of the
    demo's build, and both extracts built fresh on DuckDB."""
    from callmetrics.generate import generate_increment

    base = tmp_path_factory.mktemp("extracts")
    raw, nightly = base / "raw", base / "spark" / "callmetrics.duckdb"
    reset_spark(spark_clean)
    progress = cli(["demo", "--calls", str(DEMO_CALLS), "--out", str(base / "exports")], raw,
                   nightly, spark_clean)  # fmt: skip
    (payloads,) = (base / "exports").iterdir()
    first, last = (date.fromisoformat(d) for d in payloads.name.split("_"))
    # the version the demo published stays in the store after the next build publishes its own
    demo_spark = SparkBuilt(nightly.resolve(), counts(progress))
    first_raw = base / "demo-raw"
    shutil.copytree(raw, first_raw)
    demo_duck = base / "demo-duck" / "callmetrics.duckdb"
    cli_build(first_raw, demo_duck)
    demo = Demo(demo_spark, demo_duck, payloads, progress, first, last)

    # the second extract: new calls, late versions and telemetry, renamed agents (no agent is
    # deleted: a full build never saw a deleted agent's name, so it would differ by design)
    day = last + timedelta(days=1)
    summary = generate_increment(raw, day=day, seed=SEED, calls=INCREMENT_CALLS,
                                 late_share=0.1, rename_agents=2, delete_agents=0,
                                 dirt_rate=0.05)  # fmt: skip
    increment = SparkBuilt(nightly, counts(spark_build(spark_clean, raw, nightly)))

    duck = base / "duck" / "callmetrics.duckdb"
    duck_counts = counts(cli_build(raw, duck))
    return Extracts(demo, duck, duck_counts, [demo_spark, increment], day, dict(summary.changes))


# ------------------------------------------------------------------------------ the tests


def test_handmade_marts_on_spark_equal_duckdb(
    handmade_on_spark: SparkBuilt, handmade_warehouse: BuiltWarehouse
) -> None:
    problems = mart_differences(
        handmade_warehouse.warehouse.resolve(), handmade_on_spark.warehouse.resolve()
    )
    assert not problems, "\n".join(problems)


def test_handmade_payloads_from_spark_are_byte_identical(
    handmade_on_spark: SparkBuilt, handmade_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    payloads = payload_differences(
        handmade_warehouse.warehouse,
        handmade_on_spark.warehouse,
        tmp_path,
        [
            ("2025-01-01", "2025-01-31", ()),
            ("2025-01-10T10:07:00Z", "2025-01-10T16:52:59Z", ("--tz", "org")),
        ],
    )
    assert not payloads, "\n".join(payloads)


def test_the_demo_on_spark_exports_what_duckdb_exports(extracts: Extracts, tmp_path: Path) -> None:
    demo = extracts.demo
    assert "[demo] done in" in demo.progress, demo.progress[-2000:]
    problems = mart_differences(demo.duck.resolve(), demo.spark.warehouse)
    assert not problems, "the demo, DuckDB vs Spark:\n" + "\n".join(problems)
    written = _payload_files(demo.payloads)
    assert len(written) > 12, sorted(written)  # 12 organizations, resellers, all organizations
    # the demo's own export-all, against the DuckDB build's over the same span
    export_all(demo.duck, tmp_path / "duck", demo.first.isoformat(), demo.last.isoformat())
    assert _payload_files(tmp_path / "duck") == written


def test_every_dbt_test_and_unit_test_passes_in_every_spark_build(
    handmade_on_spark: SparkBuilt, extracts: Extracts
) -> None:
    # Spark's graph has the agents' name history models, and their tests, where DuckDB has the
    # snapshot: at least as many nodes and tests, on every build (fresh, then an increment)
    duck_nodes, duck_tests = extracts.duck_counts
    assert duck_tests > 50, extracts.duck_counts
    for built in (handmade_on_spark, *extracts.nightly):
        nodes, tests = built.counts
        assert tests >= duck_tests and nodes >= duck_nodes, (built, extracts.duck_counts)


def test_the_second_extract_holds_what_a_night_brings(extracts: Extracts) -> None:
    for change in ("new_calls", "late_version_outcome", "late_events_of_older_calls",
                   "renamed_agents"):  # fmt: skip
        assert extracts.changes.get(change), (change, extracts.changes)


def test_the_increment_on_spark_equals_a_fresh_duckdb_build(extracts: Extracts) -> None:
    problems = mart_differences(
        extracts.duck.resolve(), extracts.nightly[-1].warehouse.resolve()
    )
    assert not problems, "both extracts, DuckDB fresh vs Spark nightly:\n" + "\n".join(problems)


def test_two_extracts_payloads_from_spark_are_byte_identical(
    extracts: Extracts, tmp_path: Path
) -> None:
    start, last = extracts.demo.first.isoformat(), extracts.demo.last
    day = extracts.day
    payloads = payload_differences(
        extracts.duck,
        extracts.nightly[-1].warehouse,
        tmp_path,
        [
            (start, day.isoformat(), ()),
            (f"{last - timedelta(days=3)}T05:38:00Z", f"{day}T13:21:59Z", ("--tz", "org")),
        ],
    )
    assert not payloads, "\n".join(payloads)
