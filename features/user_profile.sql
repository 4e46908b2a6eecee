{{ config(entity='user', timestamp='ts', tags=['profile']) }}
-- Static profile attributes, valid from signup.
select
    user_id,
    signup_at as ts,
    plan,
    state,
    credit_limit
from {{ source('bank', 'users') }}
