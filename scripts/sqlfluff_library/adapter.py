"""`adapter` for sqlfluff's jinja templater (`.sqlfluff`, library_path), which has no dbt adapter.

A dispatched macro (`adapter.dispatch(name, 'callmetrics')(...)`) renders as a typed-neutral
placeholder when linting: the SQL around it is linted, the engine-specific piece is not.
"""

from collections.abc import Callable


def dispatch(name: str, macro_namespace: str | None = None) -> Callable[..., str]:
    def placeholder(*_args: object, **_kwargs: object) -> str:
        return f"lint_placeholder_{name}()"

    return placeholder
