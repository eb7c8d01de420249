{{ config(meta={'dagster': {'ref': {'name': 'stg_platform__call_versions'}}}) }}
-- meta.dagster.ref: the test reads the raw files and several models; Dagster shows it as a
-- check of staging/stg_platform__call_versions.
-- No call version is lost (severity error: a build that would publish lost rows fails and
-- publishes nothing). Returns one row per problem:
--   file_not_loaded / rows_not_loaded: a raw calls file missing from the change log, or
--     holding another number of rows than the log loaded from it (file row counts come from
--     the Parquet footers, so this reads no data);
--   version_not_loaded: a loaded version newer than the call held (dq_left_out_rows).
with raw_file_rows as (
    select
        {{ raw_relative_path('file_name', 'calls') }} as source_file,
        row_count
    from {{ raw_file_row_counts('calls') }}
),

loaded_file_rows as (
    select
        _source_file as source_file,
        count(*) filter (where not is_file_marker) as row_count
    from {{ ref('stg_platform__call_versions') }}
    group by _source_file
),

file_problems as (
    select
        case
            when loaded_file_rows.source_file is null then 'file_not_loaded'
            else 'rows_not_loaded'
        end as problem,
        raw_file_rows.source_file as detail,
        raw_file_rows.row_count - coalesce(loaded_file_rows.row_count, 0) as row_count
    from raw_file_rows
    left join loaded_file_rows
        on raw_file_rows.source_file = loaded_file_rows.source_file
    where raw_file_rows.row_count != coalesce(loaded_file_rows.row_count, -1)
),

version_problems as (
    select
        reason as problem,
        source_table as detail,
        row_count
    from {{ ref('dq_left_out_rows') }}
    where source_table = 'calls' and reason = 'version_not_loaded' and row_count > 0
)

select
    problem,
    detail,
    row_count
from file_problems
union all
select
    problem,
    detail,
    row_count
from version_problems
