{{ config(entity='user', timestamp='ts', grain='1 day', online=true, tags=['spend']) }}
-- Card spend per user over sliding windows (settled transactions only).
select
    user_id,
    ts,
    {{ window_count(windows=['1d', '7d', '30d']) }},
    {{ window_sum('amount', windows=['1d', '7d', '30d']) }},
    {{ window_avg('amount', windows=['7d', '30d']) }},
    {{ window_max('amount', windows=['7d']) }},
    {{ window_stddev('amount', windows=['30d']) }},
    {{ window_count_distinct('merchant_category', windows=['30d']) }},
    {{ window_last('amount', windows=['7d'], tie_break='transaction_id') }}
from {{ source('bank', 'transactions') }}
where status = 'settled'
  and amount > 0
