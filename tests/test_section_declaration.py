"""Each section is declared once (models/marts/sections/_sections__models.yml): the marts are
rendered from it and the exporter reads it from the warehouse (marts.section_columns).

These tests fail when a mart and the exporter disagree about a section: the columns the
exporter sums must be exactly the mart's columns, and summing the exporter's expressions call
by call over fct_calls (what it does for the partial buckets at a range's edges) must give
exactly the mart's sums, bucket by bucket.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import duckdb
import yaml

from callmetrics.exporter.parts import to_exact
from callmetrics.exporter.query import edge_aliases, edge_sql
from callmetrics.exporter.sections import PAYLOAD_SECTIONS, Declaration, load_declaration
from callmetrics.settings import PROJECT_ROOT
from tests.conftest import BuiltWarehouse

GRAIN = ("organization_id", "bucket_start")
BOOKKEEPING = ("_loaded_at",)
DECLARATION_YAML = PROJECT_ROOT / "models" / "marts" / "sections" / "_sections__models.yml"


def _declaration(warehouse: BuiltWarehouse) -> Declaration:
    with warehouse.connect() as con:
        return load_declaration(con)


def _yaml_sections(path: Path) -> dict[str, dict]:
    models = yaml.safe_load(path.read_text(encoding="utf-8"))["models"]
    return {m["config"]["meta"]["section"]: m for m in models
            if m.get("config", {}).get("meta", {}).get("section")}


def test_every_payload_section_is_declared_once_with_a_15_minute_bucket(
    generated_warehouse: BuiltWarehouse,
) -> None:
    declaration = _declaration(generated_warehouse)
    assert sorted(s.name for s in declaration.sections) == sorted(PAYLOAD_SECTIONS)
    assert len(set(declaration.marts)) == len(PAYLOAD_SECTIONS)
    assert declaration.bucket == timedelta(minutes=15)  # dbt_project.yml vars.bucket_minutes


def test_the_warehouse_records_the_yaml_declaration(generated_warehouse: BuiltWarehouse) -> None:
    declared = _yaml_sections(DECLARATION_YAML)
    for section in _declaration(generated_warehouse).sections:
        model = declared[section.name]
        assert model["name"] == section.mart
        meta_of = {c["name"]: c.get("config", {}).get("meta", {}) for c in model["columns"]}
        parts = [name for name, meta in meta_of.items() if "part" in meta]
        keys = [name for name, meta in meta_of.items() if "key" in meta or "bucket_key" in meta]
        assert list(section.sums) == parts, section.name
        assert list(section.keys) == keys, section.name
        for column in section.part_columns:
            assert column.expression == str(meta_of[column.name]["part"])
        assert section.calls_held == model["config"]["meta"].get("calls", "true")


def test_each_mart_holds_exactly_the_columns_the_exporter_reads(
    generated_warehouse: BuiltWarehouse,
) -> None:
    for section in _declaration(generated_warehouse).sections:
        rows = generated_warehouse.query(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'marts' and table_name = ? order by ordinal_position",
            [section.mart],
        )
        columns = [name for name, _type in rows]
        assert columns == [*GRAIN, *section.keys, *section.sums, *BOOKKEEPING], section.mart
        types = dict(rows)
        for column in section.part_columns:
            assert types[column.name].lower() == column.data_type, (section.mart, column.name)


def test_exporter_expressions_over_fct_calls_give_the_marts_sums(
    generated_warehouse: BuiltWarehouse,
) -> None:
    """The edge query over every call, summed per bucket, equals every mart row for row."""
    whole = _declaration(generated_warehouse)
    with generated_warehouse.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        everything = {"lo_0": "0001-01-01", "hi_0": "9999-12-31", "lo_1": "0001-01-01",
                      "hi_1": "0001-01-01"}  # fmt: skip
        # one edge query per kind of row: calls, or a list's elements (Section.samples)
        for kind in dict.fromkeys(s.samples for s in whole.sections):
            declaration = replace(whole, sections=tuple(
                s for s in whole.sections if s.samples == kind))
            _check_edge_rows_equal_marts(con, declaration, everything)


def _check_edge_rows_equal_marts(con: duckdb.DuckDBPyConnection, declaration: Declaration,
                                 everything: dict[str, str]) -> None:
    aliases = edge_aliases(declaration)
    calls = con.execute(
        edge_sql(declaration, None).replace("select ", "select bucket_start, ", 1), everything
    )
    names = [d[0] for d in calls.description]
    rows = [dict(zip(names, values, strict=True)) for values in calls.fetchall()]
    assert rows, "the generated warehouse has calls"
    for section in declaration.sections:
        expected: dict[tuple, dict[str, object]] = defaultdict(dict)
        for call in rows:
            if not call[f"in_{section.name}"]:
                continue
            key = (call["organization_id"], call["bucket_start"], *(
                call[aliases[(c.expression, c.is_double)]] for c in section.key_columns))
            sums = expected[key]
            for c in section.part_columns:
                value = to_exact(call[aliases[(c.expression, c.is_double)]])
                sums[c.name] = sums.get(c.name, 0) + value
        mart = con.execute(
            f"select {', '.join([*GRAIN, *section.keys, *section.sums])} "
            f"from marts.{section.mart}"
        ).fetchall()
        width = len(GRAIN) + len(section.keys)
        found = {
            tuple(row[:width]): dict(zip(section.sums, map(to_exact, row[width:]),
                                         strict=True))
            for row in mart
        }
        assert found.keys() == expected.keys(), section.mart
        for key, sums in expected.items():
            for name, value in sums.items():
                # doubles: the mart sums in a fixed order, the exporter exactly
                assert abs(found[key][name] - value) <= 1e-6, (section.mart, key, name)
