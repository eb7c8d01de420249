-- The four outcome categories of every bucket add up to its calls (fails on any row returned).
select
    organization_id,
    bucket_start,
    total_calls,
    resolved_calls + transferred_calls + abandoned_calls + other_calls as categorised_calls
from {{ ref('mart_resolution_breakdown') }}
where resolved_calls + transferred_calls + abandoned_calls + other_calls != total_calls
