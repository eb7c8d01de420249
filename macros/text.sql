{#- Text clean-up shared by the staging models (raw-sources.md, "Dirt the warehouse must survive").
    Engine-specific pieces go through adapter.dispatch; the DuckDB form is the default. -#}

{#- Trimmed text: leading and trailing spaces, tabs and line breaks removed; blank becomes null. -#}
{% macro clean_text(column) -%}
    {{ return(adapter.dispatch('clean_text', 'callmetrics')(column)) }}
{%- endmacro %}

{% macro default__clean_text(column) -%}
    nullif(trim({{ column }}, ' ' || chr(9) || chr(10) || chr(13)), '')
{%- endmacro %}

{#- A code compared case-blind: trimmed and lower-cased, blank becomes null. -#}
{% macro clean_code(column) -%}
    lower({{ clean_text(column) }})
{%- endmacro %}

{#- An escalation reason: lower-cased, runs of white space folded to one space, trimmed;
    blank becomes null. -#}
{% macro normalise_reason(column) -%}
    nullif(trim(regexp_replace(lower({{ column }}), '[\s\v]+', ' ', 'g')), '')
{%- endmacro %}

{#- The path of a raw file relative to `$CALLMETRICS_RAW_DIR/<table>/`, so that loaded-file
    bookkeeping survives moving the raw directory. -#}
{% macro raw_relative_path(column, table) -%}
    regexp_replace({{ column }}, '^.*/{{ table }}/', '')
{%- endmacro %}

{#- A JSON value as a double when it is a finite JSON number; null for a string ("412"), a
    boolean, null, an object, an array, a missing field, or an infinite number. -#}
{% macro json_number(json_value) -%}
    {{ return(adapter.dispatch('json_number', 'callmetrics')(json_value)) }}
{%- endmacro %}

{% macro default__json_number(json_value) -%}
    case
        when json_type({{ json_value }}) in ('BIGINT', 'UBIGINT', 'DOUBLE')
            and isfinite(try_cast({{ json_value }} as double))
            then try_cast({{ json_value }} as double)
    end
{%- endmacro %}

{#- The raw files of a table, one row per file (column `file`). A macro so that unit tests can
    replace the listing with fixed file names. -#}
{% macro raw_files(table) -%}
    glob('{{ var("raw_dir", env_var("CALLMETRICS_RAW_DIR", "data/raw")) }}/{{ table }}/**/*.parquet')
{%- endmacro %}
