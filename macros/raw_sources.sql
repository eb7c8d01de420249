{#- The raw Parquet files as sources (models/staging/*/_*__sources.yml).

    DuckDB reads them in place: each source's `external_location` is a read_parquet() of
    `$CALLMETRICS_RAW_DIR/<table>/**/*.parquet`, with the file name as a column (`filename`).
    Spark has no such table function: create_raw_sources(), run at the start of every dbt
    invocation (on-run-start), makes for each source table <name>, in its schema
    (`<CALLMETRICS_SPARK_SCHEMA>_raw`, models/staging/*/_*__sources.yml):
      <name>__parquet  a table `using parquet` over the folder (every file below it, folder names
                       never read as columns, the schemas of all files merged by name);
      <name>__files    a table `using binaryFile` over the same files: one row per file, so a
                       file without rows is listed too (raw_files());
      <name>           a view of <name>__parquet with the file of each row (`filename`): what
                       source() names.
    They are dropped and made again on every run (only the catalog changes: the tables point at
    the raw files and never own them), so new files and new columns are always seen. -#}
{% macro create_raw_sources() -%}
    {{ return(adapter.dispatch('create_raw_sources', 'callmetrics')()) }}
{%- endmacro %}

{% macro default__create_raw_sources() -%}
    {{ return('') }}
{%- endmacro %}

{% macro spark__create_raw_sources() -%}
    {%- if execute -%}
        {%- set raw_dir = var("raw_dir", env_var("CALLMETRICS_RAW_DIR", "data/raw")) -%}
        {%- set schemas = [] -%}
        {%- for node in graph.sources.values() | sort(attribute='name') -%}
            {%- if node.schema not in schemas -%}
                {%- do run_query('create schema if not exists ' ~ node.schema) -%}
                {%- do schemas.append(node.schema) -%}
            {%- endif -%}
            {%- set folder = raw_dir ~ '/' ~ node.name -%}
            {%- set parquet = raw_parquet_relation(node.name, node.schema) -%}
            {%- set listing = raw_listing_relation(node.name, node.schema) -%}
            {%- do run_query('drop view if exists ' ~ node.schema ~ '.' ~ node.name) -%}
            {%- do run_query('drop table if exists ' ~ parquet) -%}
            {%- do run_query('drop table if exists ' ~ listing) -%}
            {%- do run_query(
                'create table ' ~ parquet ~ ' using parquet options (path ' ~ text_literal(folder)
                ~ ", recursiveFileLookup 'true', pathGlobFilter '*.parquet', mergeSchema 'true')") -%}
            {%- do run_query(
                'create table ' ~ listing ~ ' using binaryFile options (path ' ~ text_literal(folder)
                ~ ", recursiveFileLookup 'true', pathGlobFilter '*.parquet')") -%}
            {%- do run_query(
                'create view ' ~ node.schema ~ '.' ~ node.name
                ~ ' as select *, _metadata.file_path as filename from ' ~ parquet) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}

{#- The Spark table of raw table `table`'s rows (create_raw_sources()). -#}
{% macro raw_parquet_relation(table, schema=none) -%}
    {{ return((schema or raw_source_schema(table)) ~ '.' ~ table ~ '__parquet') }}
{%- endmacro %}

{#- The Spark table listing raw table `table`'s files, one row per file (create_raw_sources()). -#}
{% macro raw_listing_relation(table, schema=none) -%}
    {{ return((schema or raw_source_schema(table)) ~ '.' ~ table ~ '__files') }}
{%- endmacro %}

{#- The schema of the source table named `table` (its sources YAML); 'raw' at parse time. -#}
{% macro raw_source_schema(table) -%}
    {%- for node in graph.get('sources', {}).values() if node.name == table -%}
        {{ return(node.schema) }}
    {%- endfor -%}
    {{ return('raw') }}
{%- endmacro %}

{#- The rows of each raw file of `table` (columns file_name, row_count), as a subquery. DuckDB
    reads the counts from the Parquet footers, Spark counts the rows (a file without rows is
    left out: it holds none to lose). -#}
{% macro raw_file_row_counts(table) -%}
    {{ return(adapter.dispatch('raw_file_row_counts', 'callmetrics')(table)) }}
{%- endmacro %}

{% macro default__raw_file_row_counts(table) -%}
    (
        select
            file_name,
            sum(row_group_num_rows) as row_count
        from (
            select distinct
                file_name,
                row_group_id,
                row_group_num_rows
            from parquet_metadata({{ raw_files_pattern(table) }})
        ) as row_groups
        group by file_name
    )
{%- endmacro %}

{% macro spark__raw_file_row_counts(table) -%}
    (
        select
            _metadata.file_path as file_name,
            count(*) as row_count
        from {{ raw_parquet_relation(table) }}
        group by _metadata.file_path
    )
{%- endmacro %}
