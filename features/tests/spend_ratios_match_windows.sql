-- Feature chaining: each ratio row must come from the user_transactions row of the same user and time.
select ratios.user_id, ratios.ts, ratios.transactions_per_day_7d, windows.count_7d
from {{ ref('user_spend_ratios') }} as ratios
left join {{ ref('user_transactions') }} as windows
    on windows.user_id = ratios.user_id and windows.ts = ratios.ts
where windows.user_id is null
   or abs(ratios.transactions_per_day_7d * 7 - windows.count_7d) > 1e-9
