{{ config(severity='warn') }}
-- A raw call version newer than the one loaded means it arrived with an updated_at older than
-- the incremental lookback (var lookback_days): widen it or run --full-refresh.
select
    source_table,
    reason,
    row_count
from {{ ref('dq_left_out_rows') }}
where source_table = 'calls' and reason = 'version_not_loaded' and row_count > 0
