"""dbt's `target` for sqlfluff's jinja templater (`.sqlfluff`, library_path): models are linted as
rendered for the embedded default, DuckDB (`target.type`)."""

type = "duckdb"  # noqa: A001 - dbt's attribute name
name = "duckdb"
