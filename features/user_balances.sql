{{ config(entity='user', timestamp='ts', tie_break='event_seq', ttl='30d', tags=['balance']) }}
-- The account balance after every balance event (a snapshot as of each event).
select
    user_id,
    ts,
    balance,
    event_type as last_event_type,
    row_number() over (partition by user_id order by ts, event_type) as event_seq
from {{ source('bank', 'balance_events') }}
