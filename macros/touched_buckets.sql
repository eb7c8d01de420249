{#- Bucket-replaced models: fct_calls and the section marts are incremental with the strategy
    `replace_buckets`. A run recomputes exactly the (organization, bucket) pairs that rows
    loaded since the model's last load touched; those pairs are computed once per run, by
    intermediate.int_touched_buckets (docs/design.md, "Incremental (arrival-based)"). -#}

{#- The buckets this model recomputes: every bucket touched after its own watermark (the
    greatest `_loaded_at` already in it). `relation` defaults to the model being built. -#}
{% macro touched_buckets(relation=none) -%}
    select organization_id, bucket_start
    from {{ ref('int_touched_buckets') }}
    where touched_at > {{ loaded_watermark(relation or this) }}
{%- endmacro %}

{#- The rows of `relation` (with organization_id and bucket_start) that satisfy `condition` and,
    in an incremental run, lie in a bucket this model recomputes: every row in a full build. -#}
{% macro rows_to_rebuild(relation, condition='true') -%}
    select *
    from {{ relation }} as source_rows
    where {{ condition }}
    {%- if is_incremental() %}
        and exists (
            select 1
            from ({{ touched_buckets() }}) as touched
            where touched.organization_id = source_rows.organization_id
                and touched.bucket_start = source_rows.bucket_start
        )
    {%- endif %}
{%- endmacro %}

{#- The relations of every bucket-replaced model (incremental_config('buckets')) that exist already. -#}
{% macro bucket_replaced_relations() -%}
    {%- set found = [] -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model' and node.config.materialized == 'incremental'
            and node.config.get('replaces') == 'buckets' -%}
            {%- set relation = adapter.get_relation(
                database=node.database, schema=node.schema, identifier=node.alias) -%}
            {%- if relation is not none -%}{%- do found.append(relation) -%}{%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}

{#- The oldest watermark of the bucket-replaced models, as a timestamptz literal: rows loaded
    after it may touch a bucket one of them must recompute. None when no such model exists yet
    or the run is a full refresh (every model is then rebuilt whole). -#}
{% macro bucket_replaced_watermark() -%}
    {%- if not execute or flags.FULL_REFRESH -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set relations = bucket_replaced_relations() -%}
    {%- if relations | length == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set query -%}
        select {{ utc_timestamp_text('min(watermark)') }}, count(watermark) = count(*)
        from (
            {%- for relation in relations %}
            select max(_loaded_at) as watermark from {{ relation }}
            {{- "\n            union all" if not loop.last }}
            {%- endfor %}
        ) as watermarks
    {%- endset -%}
    {%- set row = run_query(query).rows[0] -%}
    {%- if row[0] is none or not row[1] -%}
        {{ return(minus_infinity_timestamp()) }}
    {%- endif -%}
    {{ return(utc_timestamp_literal(row[0])) }}
{%- endmacro %}

{#- Incremental strategy `replace_buckets`: delete every row of the target in a touched bucket
    (`unique_key`: the bucket's columns, organization_id and bucket_start), then insert the
    model's rows, which are exactly the calls' rows of those buckets. A bucket left without
    calls is thereby emptied. -#}
{% macro get_incremental_replace_buckets_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set keys = arg_dict['unique_key'] -%}
    {%- if keys is string -%}{%- set keys = [keys] -%}{%- endif -%}
    {%- set columns_csv = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }} as target_rows
    using ({{ touched_buckets(target) }}) as replaced_keys
    where {% for key in keys -%}
        target_rows.{{ key }} = replaced_keys.{{ key }}{{ " and " if not loop.last }}
    {%- endfor %};


    insert into {{ target }} ({{ columns_csv }})
    select {{ columns_csv }}
    from {{ source }}
    {#- appended rows keep the key order (organization, time) the rest of the table is stored in #}
    order by {{ keys | join(', ') }}
{%- endmacro %}
