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

{#- Spark: whole buckets of microseconds since the epoch (buckets divide a day, so they line up
    with DuckDB's, whose origin 2000-01-03 is a whole number of buckets after the epoch). -#}
{% macro spark__bucket_start(column) -%}
    {%- set bucket_us = var("bucket_minutes") * 60 * 1000000 -%}
    timestamp_micros(unix_micros({{ column }}) - pmod(unix_micros({{ column }}), {{ bucket_us }}))
{%- endmacro %}

{#- Microseconds between two instants, exact. -#}
{% macro microseconds_between(start_column, end_column) -%}
    {{ return(adapter.dispatch('microseconds_between', 'callmetrics')(start_column, end_column)) }}
{%- endmacro %}

{% macro default__microseconds_between(start_column, end_column) -%}
    (epoch_us({{ end_column }}) - epoch_us({{ start_column }}))
{%- endmacro %}

{% macro spark__microseconds_between(start_column, end_column) -%}
    (unix_micros({{ end_column }}) - unix_micros({{ start_column }}))
{%- endmacro %}

{#- The UTC calendar date of an instant. -#}
{% macro utc_date(column) -%}
    {{ return(adapter.dispatch('utc_date', 'callmetrics')(column)) }}
{%- endmacro %}

{% macro default__utc_date(column) -%}
    cast({{ column }} at time zone 'UTC' as date)
{%- endmacro %}

{#- Spark: from the microseconds since the epoch, so that the session time zone never matters. -#}
{% macro spark__utc_date(column) -%}
    date_from_unix_date(cast(floor(unix_micros({{ column }}) / 86400000000) as integer))
{%- endmacro %}

{#- The UTC hour of day (0-23) of an instant, as an integer. -#}
{% macro utc_hour(column) -%}
    {{ return(adapter.dispatch('utc_hour', 'callmetrics')(column)) }}
{%- endmacro %}

{% macro default__utc_hour(column) -%}
    cast(hour({{ column }} at time zone 'UTC') as integer)
{%- endmacro %}

{% macro spark__utc_hour(column) -%}
    cast(pmod(floor(unix_micros({{ column }}) / 3600000000), 24) as integer)
{%- endmacro %}

{#- The SQL type of a UTC instant: DuckDB's timestamptz; Spark's timestamp is an instant (shown in
    the session time zone, UTC). -#}
{% macro type_timestamptz() -%}
    {{ return(adapter.dispatch('type_timestamptz', 'callmetrics')()) }}
{%- endmacro %}

{% macro default__type_timestamptz() -%}
    timestamptz
{%- endmacro %}

{% macro spark__type_timestamptz() -%}
    timestamp
{%- endmacro %}

{#- A UTC instant written as text ('2025-01-10 09:00:00.000000', UTC), as a SQL literal. -#}
{% macro utc_timestamp_literal(text) -%}
    {{ return(adapter.dispatch('utc_timestamp_literal', 'callmetrics')(text)) }}
{%- endmacro %}

{% macro default__utc_timestamp_literal(text) -%}
    '{{ text }}+00'::timestamptz
{%- endmacro %}

{% macro spark__utc_timestamp_literal(text) -%}
    cast('{{ text }}+00:00' as timestamp)
{%- endmacro %}

{#- An instant before every other, as a SQL literal (a watermark below every load). -#}
{% macro minus_infinity_timestamp() -%}
    {{ return(adapter.dispatch('minus_infinity_timestamp', 'callmetrics')()) }}
{%- endmacro %}

{% macro default__minus_infinity_timestamp() -%}
    '-infinity'::timestamptz
{%- endmacro %}

{#- Spark has no infinite timestamps: its least one. -#}
{% macro spark__minus_infinity_timestamp() -%}
    cast('0001-01-01 00:00:00+00:00' as timestamp)
{%- endmacro %}

{#- A timestamp column's value as UTC text '%Y-%m-%d %H:%M:%S.%f' (for utc_timestamp_literal). -#}
{% macro utc_timestamp_text(column) -%}
    {{ return(adapter.dispatch('utc_timestamp_text', 'callmetrics')(column)) }}
{%- endmacro %}

{% macro default__utc_timestamp_text(column) -%}
    strftime({{ column }} at time zone 'UTC', '%Y-%m-%d %H:%M:%S.%f')
{%- endmacro %}

{% macro spark__utc_timestamp_text(column) -%}
    date_format(to_utc_timestamp({{ column }}, current_timezone()), 'yyyy-MM-dd HH:mm:ss.SSSSSS')
{%- endmacro %}

{#- The instant this dbt invocation started: every incremental model stamps it as `_loaded_at`. -#}
{% macro load_time() -%}
    cast('{{ run_started_at }}' as {{ type_timestamptz() }})
{%- endmacro %}
