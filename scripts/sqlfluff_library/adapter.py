"""`adapter` for sqlfluff's jinja templater (`.sqlfluff`, library_path), which has no dbt adapter.

A dispatched macro (`adapter.dispatch(name, 'callmetrics')(...)`) renders as a typed-neutral
placeholder when linting: the SQL around it is linted, the engine-specific piece is not.
"""

from collections.abc import Callable

# Dispatched pieces that are syntax rather than an expression (a placeholder call would not parse
# where they stand): linted in their DuckDB form.
DUCKDB_FORMS: dict[str, Callable[..., str]] = {
    "cte_hint": lambda hint: hint,
}


def dispatch(name: str, macro_namespace: str | None = None) -> Callable[..., str]:
    def placeholder(*_args: object, **_kwargs: object) -> str:
        return f"lint_placeholder_{name}()"

    return DUCKDB_FORMS.get(name, placeholder)
