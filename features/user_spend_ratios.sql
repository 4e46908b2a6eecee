{{ config(entity='user', timestamp='ts', online=true, tags=['spend']) }}
-- Chained features: ratios of the user_transactions windows.
select
    user_id,
    ts,
    amount_sum_1d / nullif(amount_sum_30d, 0) as spend_share_1d_of_30d,
    count_7d / 7.0 as transactions_per_day_7d,
    amount_max_7d / nullif(amount_avg_30d, 0) as max_to_avg_amount
from {{ ref('user_transactions') }}
