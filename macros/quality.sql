{#- True when every row of `relation` was written by this dbt invocation (`_loaded_at` is this
    run's load_time(): a full build, or a first one), read when the test or model runs; true
    at parse time. A check can then group the whole table once instead of joining this load's
    rows against the history. -#}
{% macro every_row_loaded_now(relation) -%}
    {%- set found = true -%}
    {%- if execute -%}
        {%- set older = run_query(
            "select count(*) from " ~ relation ~ " where _loaded_at != " ~ load_time()
        ).columns[0].values()[0] -%}
        {%- set found = older == 0 -%}
    {%- endif -%}
    {{- return(found) -}}
{%- endmacro %}
