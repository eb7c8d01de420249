{#- The UTC 15-minute bucket of an instant: the grain of every section mart (docs/design.md).
    Computed on the UTC wall clock so that the session time zone never matters. -#}
{% macro bucket_start(column) -%}
    (time_bucket(interval '{{ var("bucket_minutes") }} minutes', {{ column }} at time zone 'UTC') at time zone 'UTC')
{%- endmacro %}

{#- Microseconds between two instants, exact. -#}
{% macro microseconds_between(start_column, end_column) -%}
    (epoch_us({{ end_column }}) - epoch_us({{ start_column }}))
{%- endmacro %}

{#- The instant this dbt invocation started: every incremental model stamps it as `_loaded_at`. -#}
{% macro load_time() -%}
    cast('{{ run_started_at }}' as timestamptz)
{%- endmacro %}
