{{ config(tags=['training']) }}
-- The label of the repayment model: was each cash advance repaid within 14 days?
-- The app decides a minute before the advance is booked: that is the time features are taken at.
select
    advance.user_id,
    advance.ts - interval 1 minute as ts,
    advance.amount as advance_amount,
    exists (
        select 1
        from {{ source('bank', 'balance_events') }} as repayment
        where repayment.user_id = advance.user_id
          and repayment.event_type = 'repayment'
          and repayment.ts > advance.ts
          and repayment.ts <= advance.ts + interval 14 day
    ) as repaid_14d
from {{ source('bank', 'balance_events') }} as advance
where advance.event_type = 'advance'
