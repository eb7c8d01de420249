{#- Incremental helpers (docs/design.md, "Incremental (arrival-based)"). -#}

{#- The greatest value of a timestamptz `column` in `relation`, as a SQL timestamptz literal
    read when the model runs ('-infinity' when the relation is empty). A literal, unlike a
    subquery, lets DuckDB skip row groups (and the Parquet reader skip files' row groups) by
    their min/max statistics. -#}
{% macro max_timestamp_literal(relation, column) -%}
    {%- set query -%}
        select {{ utc_timestamp_text('max(' ~ column ~ ')') }}
        from {{ relation }}
    {%- endset -%}
    {%- set found = none -%}
    {%- if execute -%}
        {%- set found = run_query(query).columns[0].values()[0] -%}
    {%- endif -%}
    {%- if found is none -%}
        {{ minus_infinity_timestamp() }}
    {%- else -%}
        {{ utc_timestamp_literal(found) }}
    {%- endif -%}
{%- endmacro %}

{#- The greatest `_loaded_at` already in this model. The model cannot change between this read
    and its run, and rows are appended in load order, so `_loaded_at > watermark` reads only the
    row groups of the nights since. -#}
{% macro loaded_watermark(relation=none) -%}
    {{ max_timestamp_literal(relation or this, '_loaded_at') }}
{%- endmacro %}

{#- How many rows of `relation` have `_loaded_at` above `watermark` (a literal from
    loaded_watermark()), read when the model runs; 0 at parse time. A model that finds none can
    skip its scans of the history with a constant false filter, so a quiet night costs little. -#}
{% macro rows_loaded_since(relation, watermark) -%}
    {%- set found = 0 -%}
    {%- if execute -%}
        {%- set found = run_query(
            "select count(*) from " ~ relation ~ " where _loaded_at > " ~ watermark
        ).columns[0].values()[0] -%}
    {%- endif -%}
    {{- return(found) -}}
{%- endmacro %}

{#- The glob pattern (a SQL string literal) of raw table `table`'s Parquet files, for the table
    functions that take a pattern (parquet_metadata). -#}
{% macro raw_files_pattern(table) -%}
    '{{ var("raw_dir", env_var("CALLMETRICS_RAW_DIR", "data/raw")) }}/{{ table }}/**/*.parquet'
{%- endmacro %}

{#- The files of raw table `table` (paths relative to its folder) not loaded yet, as a SQL list
    of string literals ('' matches no file). `loaded_files` is a query listing the relative
    paths already loaded (one column). A change log is loaded by file, never by a timestamp
    window: a file is new until it is loaded, whatever the times in its rows. -#}
{% macro raw_files_to_load(table, loaded_files) -%}
    {%- set query -%}
        select {{ raw_relative_path('file', table) }} as relative_path
        from {{ raw_files(table) }}
        except
        {{ loaded_files }}
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

{#- The telemetry files not loaded yet. A loaded file is remembered by its marker row in
    stg_telemetry__events. -#}
{% macro telemetry_files_to_load() -%}
    {{ raw_files_to_load(
        'telemetry_events',
        'select _source_file from ' ~ this ~ ' where event_id is null'
    ) }}
{%- endmacro %}

{#- The calls files not loaded yet. Every loaded file has at least one row in
    stg_platform__call_versions (a marker row when it held none). -#}
{% macro call_files_to_load() -%}
    {{ raw_files_to_load('calls', 'select distinct _source_file from ' ~ this) }}
{%- endmacro %}

{#- A compact stored key: the 64-bit hash of a text key (an event id). A model keeps it beside
    the key so that re-delivery is found by scanning 8 bytes a row instead of the keys' text;
    equal hashes are always confirmed on the key itself (a hash may collide). -#}
{% macro key_hash(column) -%}
    {{ return(adapter.dispatch('key_hash', 'callmetrics')(column)) }}
{%- endmacro %}

{% macro default__key_hash(column) -%}
    hash({{ column }})
{%- endmacro %}

{#- Incremental strategy `replace_hashed_keys`: like delete+insert on `unique_key`, but the rows
    to replace are found through the model's stored key hash (config `key_hash`, a column
    holding key_hash(unique_key)): a scan of that 8-byte column, then the few candidates
    confirmed on the key itself, then deleted by row id. A night whose keys are all new deletes
    nothing and reads only the hash column. -#}
{% macro get_incremental_replace_hashed_keys_sql(arg_dict) -%}
    {{ return(adapter.dispatch('replace_hashed_keys_sql', 'callmetrics')(arg_dict)) }}
{%- endmacro %}

{% macro default__replace_hashed_keys_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set key = arg_dict['unique_key'] -%}
    {%- set key_hash = config.require('key_hash') -%}
    {%- set columns_csv = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }}
    where rowid in (
        select candidates.stored_row
        from (
            select
                rowid as stored_row,
                {{ key }} as stored_key
            from {{ target }}
            where {{ key_hash }} in (select new_rows.{{ key_hash }} from {{ source }} as new_rows)
        ) as candidates
        semi join {{ source }} as new_rows
            on candidates.stored_key = new_rows.{{ key }}
    );


    insert into {{ target }} ({{ columns_csv }})
    select {{ columns_csv }}
    from {{ source }}
{%- endmacro %}

{#- Sorted lists of doubles: what a model keeps per key so that an incremental run can add new
    values to old ones and still sum them exactly as a full build does (ordered_sum sorts the
    values, then adds them one by one: the same multiset gives the same double).
    sorted_values: the aggregate, an empty list when no row qualifies;
    merge_sorted: two such lists as one (either may be null);
    sorted_values_sum: the ordered sum of such a list (0 for an empty list). -#}
{% macro sorted_values(column, where=none) -%}
    {{ return(adapter.dispatch('sorted_values', 'callmetrics')(column, where)) }}
{%- endmacro %}

{% macro default__sorted_values(column, where=none) -%}
    {%- set filtered = ' filter (where ' ~ where ~ ')' if where else '' -%}
    coalesce(list_sort(list({{ column }}){{ filtered }}), cast([] as double[]))
{%- endmacro %}

{% macro merge_sorted(left, right) -%}
    {{ return(adapter.dispatch('merge_sorted', 'callmetrics')(left, right)) }}
{%- endmacro %}

{% macro default__merge_sorted(left, right) -%}
    list_sort(list_concat(coalesce({{ left }}, []), coalesce({{ right }}, [])))
{%- endmacro %}

{% macro sorted_values_sum(values) -%}
    {{ return(adapter.dispatch('sorted_values_sum', 'callmetrics')(values)) }}
{%- endmacro %}

{% macro default__sorted_values_sum(values) -%}
    coalesce(list_sum({{ values }}), 0)
{%- endmacro %}
