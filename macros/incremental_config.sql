{#- Per-engine incremental configuration: the one place that says how each engine replaces the
    rows an incremental run recomputes (docs/design.md, "Incremental (arrival-based)").

    `replaces` is what a run replaces:
      'keys'     the rows whose `unique_key` the run's new rows carry (a call, an event);
      'buckets'  the rows of every (organization, bucket) touched since the model's last load
                 (macros/touched_buckets.sql): fct_calls and the section marts.

    DuckDB deletes, then inserts: strategy delete+insert, replace_hashed_keys when the model
    keeps a hash of its key (`key_hash`: the column, macros/incremental.sql), or replace_buckets
    for buckets.
    Spark (plain Parquet tables refuse delete, merge and custom strategies) overwrites whole
    partitions: insert_overwrite, partitioned by the load (`_loaded_at`: one partition per run)
    for keys and by the bucket's UTC date (`_bucket_date`, spark_partition_column()) for
    buckets; get_insert_overwrite_sql() below writes each touched partition again with its
    kept rows and the run's rows, and drops a partition left empty. -#}
{% macro incremental_config(replaces, unique_key=none, key_hash=none) -%}
    {%- set found = {
        'materialized': 'incremental',
        'on_schema_change': 'fail',
        'replaces': replaces,
    } -%}
    {%- if unique_key is not none -%}
        {%- do found.update({'unique_key': unique_key}) -%}
    {%- endif -%}
    {%- if target.type == 'spark' -%}
        {%- do found.update({
            'incremental_strategy': 'insert_overwrite',
            'file_format': 'parquet',
            'partition_by': ['_bucket_date'] if replaces == 'buckets' else ['_loaded_at'],
            'post_hook': ['drop table if exists {{ new_rows_relation(this) }}'],
        }) -%}
    {%- elif replaces == 'buckets' -%}
        {%- do found.update({'incremental_strategy': 'replace_buckets'}) -%}
    {%- elif key_hash is not none -%}
        {%- do found.update({'incremental_strategy': 'replace_hashed_keys', 'key_hash': key_hash}) -%}
    {%- else -%}
        {%- do found.update({'incremental_strategy': 'delete+insert'}) -%}
    {%- endif -%}
    {{ return(found) }}
{%- endmacro %}

{#- The partition column a bucket-replaced model adds on Spark (its bucket's UTC date), as a
    trailing select item; nothing on DuckDB. Spark keeps it in the folder names only, so the
    Parquet files of a mart hold the same columns as the DuckDB table. -#}
{% macro spark_partition_column(bucket_column='bucket_start') -%}
    {%- if target.type == 'spark' -%}
        , {{ utc_date(bucket_column) }} as _bucket_date
    {%- endif -%}
{%- endmacro %}

{#- Spark's insert_overwrite (overrides dbt-spark's macro of the same name): a model configured
    by incremental_config() replaces rows, not whole partitions. The run's rows are first
    written to a table of their own (`<model>__dbt_new`, dropped by the model's post-hook), since
    the model's SQL reads the model itself; then each partition that holds a replaced row or
    receives a new one is written again whole: its rows that stay, then the run's rows. A
    partition left with no row is dropped (an overwrite leaves a partition it writes nothing to
    as it was). Other models get dbt-spark's statement. -#}
{% macro get_insert_overwrite_sql(source_relation, target_relation, existing_relation) -%}
    {%- set dest_columns = adapter.get_columns_in_relation(target_relation) -%}
    {%- set dest_cols_csv = dest_columns | map(attribute='quoted') | join(', ') -%}
    {%- if config.get('replaces') is not none and not existing_relation.is_iceberg -%}
        {{ return(replace_partitions_sql(source_relation, target_relation, dest_cols_csv)) }}
    {%- endif -%}
    {%- if existing_relation.is_iceberg %}
    insert overwrite {{ target_relation }}
    {%- else %}
    insert overwrite table {{ target_relation }}
    {{ partition_cols(label="partition") }}
    {%- endif %}
    select {{ dest_cols_csv }} from {{ source_relation }}
{%- endmacro %}

{% macro replace_partitions_sql(source_relation, target_relation, dest_cols_csv) -%}
    {%- set replaces = config.get('replaces') -%}
    {%- set partition_columns = config.get('partition_by') -%}
    {%- if partition_columns is string -%}{%- set partition_columns = [partition_columns] -%}{%- endif -%}
    {%- set partition = partition_columns[0] -%}
    {%- set new_rows = new_rows_relation(target_relation) -%}
    {%- do run_query('drop table if exists ' ~ new_rows) -%}
    {%- do run_query('create table ' ~ new_rows ~ ' using parquet as select * from ' ~ source_relation) -%}
    {%- if replaces == 'buckets' -%}
        {%- set keys = ['organization_id', 'bucket_start'] -%}
        {%- set replaced_keys = touched_buckets(target_relation) -%}
    {%- else -%}
        {%- set keys = config.get('unique_key') -%}
        {%- if keys is string -%}{%- set keys = [keys] -%}{%- endif -%}
        {%- set replaced_keys = 'select distinct ' ~ keys | join(', ') ~ ' from ' ~ new_rows -%}
    {%- endif -%}
    {%- set key_match -%}
        {% for key in keys -%}
            target_rows.{{ key }} = replaced_keys.{{ key }}{{ " and " if not loop.last }}
        {%- endfor %}
    {%- endset -%}
    {%- set touched_partitions -%}
        select target_rows.{{ partition }} as partition_value
        from {{ target_relation }} as target_rows
        left semi join ({{ replaced_keys }}) as replaced_keys
            on {{ key_match }}
        union
        select {{ partition }} as partition_value from {{ new_rows }}
    {%- endset -%}
    {%- set kept_rows -%}
        select {{ dest_cols_csv }}
        from {{ target_relation }} as target_rows
        where target_rows.{{ partition }} in (select touched.partition_value from ({{ touched_partitions }}) as touched)
            and not exists (
                select 1 from ({{ replaced_keys }}) as replaced_keys where {{ key_match }}
            )
    {%- endset -%}
    {%- set emptied_partitions -%}
        select cast(partition_value as string)
        from ({{ touched_partitions }}) as touched
        where partition_value is not null
            and partition_value not in (
                select kept.{{ partition }} from ({{ kept_rows }}) as kept where kept.{{ partition }} is not null
                union
                select {{ partition }} from {{ new_rows }} where {{ partition }} is not null
            )
    {%- endset -%}
    {%- for value in run_query(emptied_partitions).columns[0].values() -%}
        {%- do run_query('alter table ' ~ target_relation ~ ' drop if exists partition ('
            ~ partition ~ ' = ' ~ text_literal(value) ~ ')') -%}
    {%- endfor -%}
    insert overwrite table {{ target_relation }}
    partition ({{ partition }})
    select {{ dest_cols_csv }} from ({{ kept_rows }}) as kept_rows
    union all
    select {{ dest_cols_csv }} from {{ new_rows }}
{%- endmacro %}

{#- Where a Spark incremental run of `relation` holds its new rows (get_insert_overwrite_sql()). -#}
{% macro new_rows_relation(relation) -%}
    {{ return(relation.incorporate(path={'identifier': relation.identifier ~ '__dbt_new'})) }}
{%- endmacro %}
