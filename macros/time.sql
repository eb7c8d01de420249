{#- Time pieces that differ between engines, each behind adapter.dispatch with the DuckDB form
    as the default (another engine adds `<adapter>__<name>`). -#}

{#- The UTC bucket of an instant (var('bucket_minutes') wide): the grain of every section mart
    (docs/design.md). Computed on the UTC wall clock so that the session time zone never
    matters. -#}
{% macro bucket_start(column) -%}
    {{ return(adapter.dispatch('bucket_start', 'callmetrics')(column)) }}
{%- endmacro %}

{% macro default__bucket_start(column) -%}
    (time_bucket(interval '{{ var("bucket_minutes") }} minutes', {{ column }} at time zone 'UTC') at time zone 'UTC')
{%- endmacro %}

{#- Microseconds between two instants, exact. -#}
{% macro microseconds_between(start_column, end_column) -%}
    {{ return(adapter.dispatch('microseconds_between', 'callmetrics')(start_column, end_column)) }}
{%- endmacro %}

{% macro default__microseconds_between(start_column, end_column) -%}
    (epoch_us({{ end_column }}) - epoch_us({{ start_column }}))
{%- endmacro %}

{#- The UTC calendar date of an instant. -#}
{% macro utc_date(column) -%}
    {{ return(adapter.dispatch('utc_date', 'callmetrics')(column)) }}
{%- endmacro %}

{% macro default__utc_date(column) -%}
    cast({{ column }} at time zone 'UTC' as date)
{%- endmacro %}

{#- The UTC hour of day (0-23) of an instant, as an integer. -#}
{% macro utc_hour(column) -%}
    {{ return(adapter.dispatch('utc_hour', 'callmetrics')(column)) }}
{%- endmacro %}

{% macro default__utc_hour(column) -%}
    cast(hour({{ column }} at time zone 'UTC') as integer)
{%- endmacro %}

{#- The instant this dbt invocation started: every incremental model stamps it as `_loaded_at`. -#}
{% macro load_time() -%}
    cast('{{ run_started_at }}' as timestamptz)
{%- endmacro %}
