{#- Pieces of SQL syntax that only some engines have. -#}

{#- A CTE's materialization hint ('materialized' or 'not materialized'), where the engine takes
    one: `with x as {{ cte_hint('materialized') }} (...)`. Spark plans CTEs itself. -#}
{% macro cte_hint(hint) -%}
    {{ return(adapter.dispatch('cte_hint', 'callmetrics')(hint)) }}
{%- endmacro %}

{% macro default__cte_hint(hint) -%}
    {{ hint }}
{%- endmacro %}

{% macro spark__cte_hint(hint) -%}
{%- endmacro %}

{#- The listed columns of a row as one comparable value (a struct). -#}
{% macro row_value(columns) -%}
    {{ return(adapter.dispatch('row_value', 'callmetrics')(columns)) }}
{%- endmacro %}

{% macro default__row_value(columns) -%}
    struct_pack({{ columns | join(', ') }})
{%- endmacro %}

{% macro spark__row_value(columns) -%}
    struct({{ columns | join(', ') }})
{%- endmacro %}

{#- `numerator` / `denominator` as doubles, where a zero denominator is no error: DuckDB gives
    infinity (or NaN), Spark in ANSI mode would fail the query, so it gives null instead. Callers
    use the quotient only where the denominator is not zero. -#}
{% macro divide(numerator, denominator) -%}
    {{ return(adapter.dispatch('divide', 'callmetrics')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__divide(numerator, denominator) -%}
    {{ numerator }} / {{ denominator }}
{%- endmacro %}

{% macro spark__divide(numerator, denominator) -%}
    try_divide({{ numerator }}, {{ denominator }})
{%- endmacro %}
