{#- Analysts query `marts.fct_calls`, not `main_marts.fct_calls`: a custom schema is used as named.
    On Spark, where one server (a cluster's metastore) holds many projects and builds, every
    schema is the target's schema (CALLMETRICS_SPARK_SCHEMA, profiles.yml) followed by the custom
    one: `callmetrics_marts.fct_calls`; the raw tables follow the same rule (raw_schema()). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ return(adapter.dispatch('schema_of', 'callmetrics')(custom_schema_name)) }}
{%- endmacro %}

{% macro default__schema_of(custom_schema_name) -%}
    {%- if custom_schema_name is none -%}
        {{ return(target.schema) }}
    {%- else -%}
        {{ return(custom_schema_name | trim) }}
    {%- endif -%}
{%- endmacro %}

{% macro spark__schema_of(custom_schema_name) -%}
    {%- if custom_schema_name is none -%}
        {{ return(target.schema) }}
    {%- else -%}
        {{ return(target.schema ~ '_' ~ custom_schema_name | trim) }}
    {%- endif -%}
{%- endmacro %}
