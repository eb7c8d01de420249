{#- A sum of doubles that does not depend on the order the rows arrive in: the values are
    sorted, then added one by one. A plain sum() of doubles rounds differently when the rows
    come in another order (a late event, a bucket rebuilt by an incremental run), so an
    incremental build and a full refresh would store sums that differ in the last bits, and a
    one-decimal rounding tie in the payload could go either way. Null when no row is summed.
    Dispatched: the DuckDB form (sorted list, then list_sum) is the default. -#}
{% macro ordered_sum(column, where=none) -%}
    {{ return(adapter.dispatch('ordered_sum', 'callmetrics')(column, where)) }}
{%- endmacro %}

{% macro default__ordered_sum(column, where=none) -%}
    {%- set filtered = ' filter (where ' ~ where ~ ')' if where else '' -%}
    list_sum(list_sort(list({{ column }}){{ filtered }}))
{%- endmacro %}

{#- Spark: the filtered values collected, sorted, then folded left from the first one (as
    DuckDB's list_sum adds them); null when there is none. -#}
{% macro spark__ordered_sum(column, where=none) -%}
    {%- set filtered = ' filter (where ' ~ where ~ ')' if where else '' -%}
    aggregate(
        array_sort(collect_list(cast({{ column }} as double)){{ filtered }}),
        cast(null as double),
        (total, value) -> coalesce(total + value, value)
    )
{%- endmacro %}

{#- The values of `column` over a group, in the order of `order_by`, as a list (array); an
    empty list when no row satisfies `where`. -#}
{% macro ordered_list(column, order_by, where) -%}
    {{ return(adapter.dispatch('ordered_list', 'callmetrics')(column, order_by, where)) }}
{%- endmacro %}

{% macro default__ordered_list(column, order_by, where) -%}
    coalesce(list({{ column }} order by {{ order_by }}) filter (where {{ where }}), [])
{%- endmacro %}

{#- Spark: collect_list has no order; the values are sorted by (order_by, value) pairs. -#}
{% macro spark__ordered_list(column, order_by, where) -%}
    transform(
        array_sort(collect_list(struct({{ order_by }} as sort_key, {{ column }} as item)) filter (where {{ where }})),
        pair -> pair.item
    )
{%- endmacro %}

{#- An empty list of `element_type` (a type name both engines know: integer, double, ...). -#}
{% macro empty_list(element_type) -%}
    {{ return(adapter.dispatch('empty_list', 'callmetrics')(element_type)) }}
{%- endmacro %}

{% macro default__empty_list(element_type) -%}
    cast([] as {{ element_type }}[])
{%- endmacro %}

{% macro spark__empty_list(element_type) -%}
    cast(array() as array<{{ element_type }}>)
{%- endmacro %}

{#- One row per element of a list column `list_expression` (in a select list), named by the
    caller's alias. -#}
{% macro unnest_list(list_expression) -%}
    {{ return(adapter.dispatch('unnest_list', 'callmetrics')(list_expression)) }}
{%- endmacro %}

{% macro default__unnest_list(list_expression) -%}
    unnest({{ list_expression }})
{%- endmacro %}

{% macro spark__unnest_list(list_expression) -%}
    explode({{ list_expression }})
{%- endmacro %}

{#- Several (name, value) pairs of each row as rows of two columns `name_column` and
    `value_column` (in a select list): `pairs` is a list of [name literal, value SQL]. -#}
{% macro unnest_pairs(pairs, name_column, value_column) -%}
    {{ return(adapter.dispatch('unnest_pairs', 'callmetrics')(pairs, name_column, value_column)) }}
{%- endmacro %}

{% macro default__unnest_pairs(pairs, name_column, value_column) -%}
    unnest([
        {%- for name, value in pairs %}
            {{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    ]) as {{ name_column }},
    unnest([
        {%- for name, value in pairs %}
            {{ value }}{{ "," if not loop.last }}
        {%- endfor %}
    ]) as {{ value_column }}
{%- endmacro %}

{% macro spark__unnest_pairs(pairs, name_column, value_column) -%}
    stack(
        {{ pairs | length }},
        {%- for name, value in pairs %}
        {{ name }}, {{ value }}{{ "," if not loop.last }}
        {%- endfor %}
    ) as ({{ name_column }}, {{ value_column }})
{%- endmacro %}

{#- Spark forms of the sorted-values pieces (macros/incremental.sql) and of the key hash. -#}
{% macro spark__sorted_values(column, where=none) -%}
    {%- set filtered = ' filter (where ' ~ where ~ ')' if where else '' -%}
    array_sort(collect_list(cast({{ column }} as double)){{ filtered }})
{%- endmacro %}

{#- null lists left out, then the two concatenated and sorted -#}
{% macro spark__merge_sorted(left, right) -%}
    array_sort(flatten(filter(array({{ left }}, {{ right }}), part -> part is not null)))
{%- endmacro %}

{% macro spark__sorted_values_sum(values) -%}
    coalesce(aggregate({{ values }}, cast(null as double), (total, value) -> coalesce(total + value, value)), 0)
{%- endmacro %}

{#- Spark's hash() has 32 bits; xxhash64 has 64, as DuckDB's hash(). -#}
{% macro spark__key_hash(column) -%}
    xxhash64({{ column }})
{%- endmacro %}
