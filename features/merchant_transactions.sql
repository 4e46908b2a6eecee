{{ config(entity='merchant', timestamp='ts', grain='1 day', tags=['merchant']) }}
-- Activity per merchant: volume, distinct customers and the decline rate's inputs.
select
    merchant_id,
    ts,
    {{ window_count(windows=['1d', '7d']) }},
    {{ window_sum('amount', windows=['7d']) }},
    {{ window_count_distinct('user_id', windows=['7d']) }},
    {{ window_sum("case when status = 'declined' then 1 else 0 end", windows=['7d'], name='declined_count_{window}') }}
from {{ source('bank', 'transactions') }}
