{#- The section declarations this warehouse was built with (one row per declared column of a
    section mart), and the bucket width: what the exporter reads to query the marts and the
    edge buckets (src/callmetrics/exporter/sections.py). Rendered from the dbt graph with the
    same macros that render the marts. -#}
{{ config(materialized='table') }}

{%- set rows = section_declarations() %}

with declared as (
    select
        cast(null as string) as section,
        cast(null as string) as mart,
        cast(null as string) as calls_held,
        cast(null as string) as samples,
        cast(null as integer) as column_position,
        cast(null as string) as column_name,
        cast(null as string) as column_role,
        cast(null as string) as sql_expression,
        cast(null as string) as data_type,
        cast(null as string) as bucket_key
    where false
    {%- for row in rows %}
    union all
    select
        {{ text_literal(row.section) }},
        {{ text_literal(row.mart) }},
        {{ text_literal(row.calls) }},
        {{ text_literal(row.samples) if row.samples else 'null' }},
        {{ row.position }},
        {{ text_literal(row.column.name) }},
        {{ text_literal(row.column.role) }},
        {{ text_literal(row.column.expression | trim) }},
        {{ text_literal(row.column.data_type) }},
        {{ text_literal(row.column.bucket_key) if row.column.bucket_key else 'null' }}
    {%- endfor %}
)

select
    section,
    mart,
    calls_held,
    samples,
    column_position,
    column_name,
    column_role,
    sql_expression,
    data_type,
    bucket_key,
    cast({{ var('bucket_minutes') }} as integer) as bucket_minutes
from declared
order by section, column_position
