{#- Column lists that several models select alike: each list stated once here.
    `relation` (optional) qualifies every column (`versions.agent_id, ...`). -#}

{#- `columns` as a select list: one column a line, comma-separated. -#}
{% macro column_list(columns, relation=none) -%}
    {%- for column in columns %}
    {{ relation ~ '.' if relation }}{{ column }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#- A call version as staged (stg_platform__call_versions, stg_platform__calls): what the
    raw calls row says of the call, in the contract's order; the file it came from follows. -#}
{% macro call_version_columns(relation=none) -%}
    {{ column_list([
        'call_id', 'organization_id', 'agent_id', 'started_at', 'ended_at', 'outcome_code',
        'transferred_at', 'sentiment', 'user_corrections', 'escalation_reason', 'updated_at',
    ], relation) }}
{%- endmacro %}

{#- An agent version as the agents' history keeps it (Spark's agent_versions_seen and
    snp_platform__agents, DuckDB's snapshot of stg_platform__agents). -#}
{% macro agent_version_columns(relation=none) -%}
    {{ column_list([
        'agent_id', 'organization_id', 'agent_name', 'status', 'is_known_status', 'raw_status',
        'created_at', 'updated_at', '_source_file',
    ], relation) }}
{%- endmacro %}
