{#- Section marts from their one declaration (docs/design.md, "Section marts").

    A section mart is declared once, in its YAML (models/marts/sections/_sections__models.yml):
    the model's `meta.section` names the payload section, `meta.calls` (optional) is the
    condition on a fct_calls row for the calls it holds, and each column's `meta` says what the
    column is:

      part: <SQL over a fct_calls row>   an additive part: the sum of that value over the calls
                                         (a double part is summed in a fixed order);
      key: <SQL over a fct_calls row>    a key the section groups by (agent, reason);
      bucket_key: utc_date | utc_hour    a key derived from the bucket (its UTC date or hour).

    A model's `meta.samples` (optional) makes the section count list elements instead of calls
    (see section_samples()).

    organization_id, bucket_start and _loaded_at are the grain and bookkeeping of every mart.
    `section_mart()` renders the mart; `section_columns()` feeds both the mart and
    marts.section_columns, the table that records the declaration in the warehouse for the
    exporter. -#}

{#- The declared columns of a section mart `node` (a model's node or `model`), in YAML order:
    a list of {name, role, expression, data_type}; role is 'key' or 'part'. The expression is
    SQL over a row of fct_calls, rendered for this adapter. -#}
{% macro section_columns(node) -%}
    {%- set found = [] -%}
    {%- for column in node.columns.values() -%}
        {%- set meta = column.get('config', {}).get('meta') or column.get('meta') or {} -%}
        {%- if 'part' in meta -%}
            {%- do found.append({'name': column.name, 'role': 'part',
                'expression': meta['part'] | string, 'data_type': column.data_type,
                'bucket_key': none}) -%}
        {%- elif 'key' in meta -%}
            {%- do found.append({'name': column.name, 'role': 'key',
                'expression': meta['key'], 'data_type': column.data_type,
                'bucket_key': none}) -%}
        {%- elif 'bucket_key' in meta -%}
            {%- do found.append({'name': column.name, 'role': 'key',
                'expression': bucket_key_sql(meta['bucket_key'], 'bucket_start'),
                'data_type': column.data_type, 'bucket_key': meta['bucket_key']}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}

{#- The section's call filter: a condition on a fct_calls row ('true': every counted call). -#}
{% macro section_calls(node) -%}
    {{ return((node.config.get('meta', {}).get('calls') or 'true') | trim) }}
{%- endmacro %}

{#- The section's samples (optional): a list expression over a fct_calls row; the section then
    holds one row per element of the list (named `sample` in its keys and parts) instead of one
    per call, e.g. each latency sample's sketch bin. -#}
{% macro section_samples(node) -%}
    {{ return((node.config.get('meta', {}).get('samples') or '') | trim) }}
{%- endmacro %}

{#- A key derived from a bucket column: its UTC date or its UTC hour of day. In DuckDB's SQL
    when `for_exporter` (the exporter reads marts.section_columns in DuckDB, whichever engine
    built the marts); else in this adapter's. -#}
{% macro bucket_key_sql(kind, column, for_exporter=false) -%}
    {%- if kind == 'utc_date' -%}
        {{ return(default__utc_date(column) if for_exporter else utc_date(column)) }}
    {%- elif kind == 'utc_hour' -%}
        {{ return(default__utc_hour(column) if for_exporter else utc_hour(column)) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("bucket_key must be utc_date or utc_hour, not " ~ kind) }}
    {%- endif -%}
{%- endmacro %}

{#- The summed value of a part over a group of calls, with the column's type. -#}
{% macro section_part_sum(column) -%}
    {%- if column.data_type == 'double' -%}
        cast({{ ordered_sum(column.expression) }} as double)
    {%- else -%}
        cast(sum({{ column.expression }}) as {{ column.data_type }})
    {%- endif -%}
{%- endmacro %}

{#- The whole SQL of a section mart: the declared parts of the calls it holds, per organization,
    bucket and key; in an incremental run only the touched buckets (replace_buckets strategy).
    At parse time the columns are not known yet: only the references are rendered. -#}
{% macro section_mart() -%}
    {{- config(**incremental_config('buckets')) -}}
    {%- set columns = section_columns(model) if execute else [] -%}
    {%- set keys = columns | selectattr('role', 'equalto', 'key') | list -%}
    {%- set parts = columns | selectattr('role', 'equalto', 'part') | list -%}
    -- depends_on: {{ ref('int_touched_buckets') }}
    {%- set samples = section_samples(model) if execute else '' %}
    with counted_calls as (
        {{ rows_to_rebuild(ref('fct_calls'), section_calls(model) if execute else 'true') }}
    ){% if samples %},

    counted_samples as (
        select
            *,
            {{ unnest_list(samples) }} as sample
        from counted_calls
    ){% endif %}

    select
        organization_id,
        bucket_start,
        {%- for key in keys %}
        {{ key.expression }} as {{ key.name }},
        {%- endfor %}
        {%- for part in parts %}
        {{ section_part_sum(part) }} as {{ part.name }},
        {%- endfor %}
        {{ load_time() }} as _loaded_at
        {{- spark_partition_column() }}
    from {{ 'counted_samples' if samples else 'counted_calls' }}
    group by organization_id, bucket_start{% for key in keys %}, {{ key.expression }}{% endfor %}
    -- stored in organization and time order: a range of one organization reads few row groups
    order by organization_id, bucket_start
{%- endmacro %}

{#- A string as a SQL text literal. -#}
{% macro text_literal(text) -%}
    '{{ text | replace("'", "''") }}'
{%- endmacro %}

{#- Every declared column of every section mart, sorted by mart then YAML order: a list of
    {section, mart, calls, position, column} (column as in section_columns(), a bucket key's SQL
    in DuckDB's, for the exporter). Empty at parse
    time. -#}
{% macro section_declarations() -%}
    {%- set rows = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() | sort(attribute='name') -%}
            {%- if node.resource_type == 'model' and node.config.get('meta', {}).get('section') -%}
                {%- for column in section_columns(node) -%}
                    {%- if column.bucket_key -%}
                        {%- do column.update({'expression': bucket_key_sql(
                            column.bucket_key, 'bucket_start', for_exporter=true)}) -%}
                    {%- endif -%}
                    {%- do rows.append({
                        'section': node.config.meta.section,
                        'mart': node.alias,
                        'calls': section_calls(node),
                        'samples': section_samples(node),
                        'position': loop.index,
                        'column': column}) -%}
                {%- endfor -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(rows) }}
{%- endmacro %}
