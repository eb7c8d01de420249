"""The docs a clone has say what the code does (issue 16, item 7)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb

from callmetrics.publishing import WarehouseStore
from callmetrics.publishing.duck import PARQUET_PREFIXES
from callmetrics.settings import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
METRICS = (PROJECT_ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
PUBLISHING = (PROJECT_ROOT / "docs" / "publishing.md").read_text(encoding="utf-8")
SCHEMA = PROJECT_ROOT / "tests" / "fixtures" / "metrics-payload.schema.json"


def _property_names(node: object, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        for name, child in node.get("properties", {}).items():
            found.add(name)
            _property_names(child, found)
        for value in node.values():
            if isinstance(value, dict | list):
                _property_names(value, found)
    elif isinstance(node, list):
        for child in node:
            _property_names(child, found)
    return found


def test_the_docs_never_point_outside_the_clone() -> None:
    for name, text in (("README.md", README), ("docs/metrics.md", METRICS),
                       ("docs/publishing.md", PUBLISHING)):  # fmt: skip
        assert "../shared" not in text, name
    for link in re.findall(r"`((?:docs|models|seeds|scripts|tests)/[\w./-]+)`", README):
        assert (PROJECT_ROOT / link.rstrip("/")).exists(), link


def test_docs_metrics_defines_every_field_of_the_payload() -> None:
    names = _property_names(json.loads(SCHEMA.read_text(encoding="utf-8")), set())
    names.discard("data")
    assert len(names) > 40
    missing = sorted(n for n in names if f"`{n}`" not in METRICS)
    assert missing == []
    assert "docs/metrics.md" in README


def test_readme_where_things_are_matches_the_code(tmp_path: Path) -> None:
    from callmetrics.settings import EXPORT_DIR_ENV, Settings

    settings = Settings(raw_dir=tmp_path / "raw", warehouse=tmp_path / "wh" / "callmetrics.duckdb")
    assert settings.exports == tmp_path / "wh" / "exports"
    assert "`data/warehouse/exports/<day>/day/`" in README and EXPORT_DIR_ENV in README
    assert "callmetrics.versions/vNNNNNN/callmetrics.duckdb" in README
    # fct_calls has no Parquet copy, and the README says so instead of claiming every mart
    assert not "fct_calls".startswith(PARQUET_PREFIXES)
    assert "`marts.fct_calls` (one row\n  per call, the largest table) is not" in README
    assert "every mart and dimension is also published" not in README
    assert "duckdb-cli" in README and "organization_id, organization_name" in README


def test_publishing_md_names_the_assets_and_columns_of_the_code(tmp_path: Path) -> None:
    from callmetrics.orchestration.definitions import defs

    keys = {"/".join(k.path) for k in defs().resolve_all_asset_keys()}
    named = set(re.findall(r"`((?:warehouse|exports)/\w+)`", PUBLISHING))
    assert named and named <= keys, named - keys
    store = WarehouseStore(tmp_path / "callmetrics.duckdb")
    with duckdb.connect(str(store.prepare_work().path)) as con:
        con.execute("create schema marts; create table marts.mart_x as select 1 as n")
    store.publish_work()
    with duckdb.connect(str(store.link), read_only=True) as con:
        rows = con.execute("describe callmetrics.meta.warehouse_version").fetchall()
    columns = [row[0] for row in rows]
    assert f"({', '.join(columns)})" in PUBLISHING
