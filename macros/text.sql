{#- Text clean-up shared by the staging models (raw-sources.md, "Dirt the warehouse must survive").
    Engine-specific pieces go through adapter.dispatch; the DuckDB form is the default. -#}

{#- Trimmed text: leading and trailing spaces, tabs and line breaks removed; blank becomes null. -#}
{% macro clean_text(column) -%}
    {{ return(adapter.dispatch('clean_text', 'callmetrics')(column)) }}
{%- endmacro %}

{% macro default__clean_text(column) -%}
    nullif(trim({{ column }}, ' ' || chr(9) || chr(10) || chr(13)), '')
{%- endmacro %}

{#- Spark: trim(a, b) takes its arguments the other way round; btrim(text, characters) does not. -#}
{% macro spark__clean_text(column) -%}
    nullif(btrim(cast({{ column }} as string), ' ' || chr(9) || chr(10) || chr(13)), '')
{%- endmacro %}

{#- A code compared case-blind: trimmed and lower-cased, blank becomes null. -#}
{% macro clean_code(column) -%}
    lower({{ clean_text(column) }})
{%- endmacro %}

{#- An escalation reason: lower-cased, runs of white space folded to one space, trimmed;
    blank becomes null. -#}
{% macro normalise_reason(column) -%}
    {{ return(adapter.dispatch('normalise_reason', 'callmetrics')(column)) }}
{%- endmacro %}

{% macro default__normalise_reason(column) -%}
    nullif(trim(regexp_replace(lower({{ column }}), '[\s\v]+', ' ', 'g')), '')
{%- endmacro %}

{#- Spark (Java regex, replaces every match): the white space of DuckDB's [\s\v] (RE2), spelled
    out, since Java's \s and \v differ from RE2's; backslashes doubled for Spark's literals. -#}
{% macro spark__normalise_reason(column) -%}
    nullif(trim(regexp_replace(lower({{ column }}), '[ \\t\\n\\x0B\\f\\r]+', ' ')), '')
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

{#- Spark: `json_value` is a variant (json_field()); a JSON number is an integer, a decimal or a
    double there. -#}
{% macro spark__json_number(json_value) -%}
    case
        when (schema_of_variant({{ json_value }}) in ('BIGINT', 'DOUBLE')
            or schema_of_variant({{ json_value }}) like 'DECIMAL(%')
            and abs(try_variant_get({{ json_value }}, '$', 'double')) < double('infinity')
            then try_variant_get({{ json_value }}, '$', 'double')
    end
{%- endmacro %}

{#- A JSON value as text when it is a JSON string; null otherwise. -#}
{% macro json_string(json_value) -%}
    {{ return(adapter.dispatch('json_string', 'callmetrics')(json_value)) }}
{%- endmacro %}

{% macro default__json_string(json_value) -%}
    case when json_type({{ json_value }}) = 'VARCHAR' then {{ json_value }} ->> '$' end
{%- endmacro %}

{% macro spark__json_string(json_value) -%}
    case
        when schema_of_variant({{ json_value }}) = 'STRING'
            then try_variant_get({{ json_value }}, '$', 'string')
    end
{%- endmacro %}

{#- Whether a text is valid JSON (null for null). -#}
{% macro is_json(text) -%}
    {{ return(adapter.dispatch('is_json', 'callmetrics')(text)) }}
{%- endmacro %}

{% macro default__is_json(text) -%}
    json_valid({{ text }})
{%- endmacro %}

{% macro spark__is_json(text) -%}
    (case when {{ text }} is not null then try_parse_json({{ text }}) is not null end)
{%- endmacro %}

{#- The JSON text `text` parsed once for reading the top-level `fields` (a list of names) with
    json_field(): DuckDB extracts them all at once into a list, Spark parses into a variant. -#}
{% macro json_fields(text, fields) -%}
    {{ return(adapter.dispatch('json_fields', 'callmetrics')(text, fields)) }}
{%- endmacro %}

{% macro default__json_fields(text, fields) -%}
    json_extract({{ text }}, [{% for field in fields %}'$.{{ field }}'{{ ", " if not loop.last }}{% endfor %}])
{%- endmacro %}

{% macro spark__json_fields(text, fields) -%}
    try_parse_json({{ text }})
{%- endmacro %}

{#- Field `field` (one of `fields`) of `parsed`, a json_fields() value, as a JSON value. -#}
{% macro json_field(parsed, fields, field) -%}
    {{ return(adapter.dispatch('json_field', 'callmetrics')(parsed, fields, field)) }}
{%- endmacro %}

{% macro default__json_field(parsed, fields, field) -%}
    {{ parsed }}[{{ fields.index(field) + 1 }}]
{%- endmacro %}

{% macro spark__json_field(parsed, fields, field) -%}
    try_variant_get({{ parsed }}, '$.{{ field }}')
{%- endmacro %}

{#- The raw files of a table, one row per file (column `file`). A macro so that unit tests can
    replace the listing with fixed file names. -#}
{% macro raw_files(table) -%}
    {{ return(adapter.dispatch('raw_files', 'callmetrics')(table)) }}
{%- endmacro %}

{% macro default__raw_files(table) -%}
    glob('{{ var("raw_dir", env_var("CALLMETRICS_RAW_DIR", "data/raw")) }}/{{ table }}/**/*.parquet')
{%- endmacro %}

{#- Spark: the file listing table made by create_raw_sources() (a binaryFile table: it lists
    every file, a file without rows too, and reads no content unless asked). -#}
{% macro spark__raw_files(table) -%}
    (select path as file from {{ raw_listing_relation(table) }})
{%- endmacro %}
