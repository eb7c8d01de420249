{#- Incremental helpers (docs/design.md, "Incremental (arrival-based)"). -#}

{#- The greatest value of a timestamptz `column` in `relation`, as a SQL timestamptz literal
    read when the model runs ('-infinity' when the relation is empty). A literal, unlike a
    subquery, lets DuckDB skip row groups (and the Parquet reader skip files' row groups) by
    their min/max statistics. -#}
{% macro max_timestamp_literal(relation, column) -%}
    {%- set query -%}
        select strftime(max({{ column }}) at time zone 'UTC', '%Y-%m-%d %H:%M:%S.%f')
        from {{ relation }}
    {%- endset -%}
    {%- set found = none -%}
    {%- if execute -%}
        {%- set found = run_query(query).columns[0].values()[0] -%}
    {%- endif -%}
    {%- if found is none -%}
        '-infinity'::timestamptz
    {%- else -%}
        '{{ found }}+00'::timestamptz
    {%- endif -%}
{%- endmacro %}

{#- The greatest `_loaded_at` already in this model. The model cannot change between this read
    and its run, and rows are appended in load order, so `_loaded_at > watermark` reads only the
    row groups of the nights since. -#}
{% macro loaded_watermark(relation=none) -%}
    {{ max_timestamp_literal(relation or this, '_loaded_at') }}
{%- endmacro %}

{#- The lower bound of `updated_at` that an incremental run of the calls staging model re-reads:
    the greatest version already loaded minus `var('lookback_days')`. -#}
{% macro calls_reload_since() -%}
    ({{ max_timestamp_literal(this, 'updated_at') }} - interval '{{ var("lookback_days") }} days')
{%- endmacro %}

{#- The telemetry files (relative to the telemetry folder) not loaded yet, as a SQL list of
    string literals ('' matches no file). A loaded file is remembered by its marker row in
    stg_telemetry__events. -#}
{% macro telemetry_files_to_load() -%}
    {%- set query -%}
        select {{ raw_relative_path('file', 'telemetry_events') }} as relative_path
        from {{ raw_files('telemetry_events') }}
        except
        select _source_file from {{ this }} where event_id is null
        order by 1
    {%- endset -%}
    {%- set files = [] -%}
    {%- if execute -%}
        {%- set files = run_query(query).columns[0].values() -%}
    {%- endif -%}
    {%- if files | length == 0 -%}
        ''
    {%- else -%}
        {%- for f in files -%}
            '{{ f | replace("'", "''") }}'{{ ", " if not loop.last }}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
