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
