{#- Deterministic demo data for the example project, generated in the warehouse.

    Pseudo-random numbers come from integer arithmetic modulo the prime
    2147483647 (no engine-specific random or hash functions), so every engine
    and every run produces the same rows. Sizes are project vars: see
    project.yml, and bench/ for the 10M-event configuration. Tables are
    created only if missing. -#}

{% macro demo_uniform(i, salt) -%}
    {#- Two rounds of x -> x*x + c (mod p) over a salted linear seed: cheap, portable, well mixed. -#}
    {%- set seed = "mod(" ~ i ~ " * 48271 + " ~ (salt * 1000003 + 12345) ~ ", 2147483647)" -%}
    {%- set round1 = "mod(" ~ seed ~ " * " ~ seed ~ " + " ~ (salt + 7) ~ ", 2147483647)" -%}
    (mod({{ round1 }} * {{ round1 }} + {{ salt + 11 }}, 2147483647) / 2147483647.0)
{%- endmacro %}

{% macro demo_numbers(count) -%}
    select range + 1 as i from range({{ count }})
{%- endmacro %}

{% macro create_demo_data() %}
{%- set users = var('demo_users') | int -%}
{%- set merchants = var('demo_merchants') | int -%}
{%- set days = var('demo_days') | int -%}
{%- set seconds = days * 86400 -%}
{%- set window_start = "cast('" ~ var('demo_end') ~ "' as timestamp) - interval " ~ days ~ " day" -%}
create schema if not exists raw;

create table if not exists raw.users as
select
    i as user_id,
    {{ window_start }} - to_seconds(cast(floor({{ demo_uniform('i', 1) }} * 63072000) as bigint)) as signup_at,
    case when {{ demo_uniform('i', 2) }} < 0.6 then 'free'
         when {{ demo_uniform('i', 2) }} < 0.9 then 'plus'
         else 'pro' end as plan,
    ['CA', 'TX', 'NY', 'FL', 'WA', 'IL', 'GA', 'OH'][1 + cast(floor({{ demo_uniform('i', 3) }} * 8) as int)] as state,
    cast(100 + 50 * floor({{ demo_uniform('i', 4) }} * 20) as decimal(12, 2)) as credit_limit
from ({{ demo_numbers(users) }}) as numbers;

create table if not exists raw.transactions as
select
    i as transaction_id,
    -- a skewed user distribution: some customers transact far more than others
    1 + cast(floor(power({{ demo_uniform('i', 5) }}, 2) * {{ users }}) as bigint) as user_id,
    1 + cast(floor(power({{ demo_uniform('i', 6) }}, 1.5) * {{ merchants }}) as bigint) as merchant_id,
    case when {{ demo_uniform('i', 7) }} < 0.02 then null
         else ['grocery', 'fuel', 'dining', 'travel', 'retail', 'utilities', 'gaming', 'cash',
               'health', 'transport', 'streaming', 'other'][1 + cast(floor({{ demo_uniform('i', 8) }} * 12) as int)]
    end as merchant_category,
    cast(round(1 + power({{ demo_uniform('i', 9) }}, 3) * 400, 2) as decimal(12, 2)) as amount,
    case when {{ demo_uniform('i', 10) }} < 0.06 then 'declined' else 'settled' end as status,
    {{ window_start }} + to_seconds(cast(floor({{ demo_uniform('i', 11) }} * {{ seconds }}) as bigint)) as ts
from ({{ demo_numbers(var('demo_transactions') | int) }}) as numbers
-- stored in time order, as an append-only ledger is
order by ts, transaction_id;

create table if not exists raw.balance_events as
select
    1 + cast(floor({{ demo_uniform('i', 12) }} * {{ users }}) as bigint) as user_id,
    case when {{ demo_uniform('i', 13) }} < 0.5 then 'deposit'
         when {{ demo_uniform('i', 13) }} < 0.8 then 'advance'
         else 'repayment' end as event_type,
    cast(round(5 + {{ demo_uniform('i', 14) }} * 250, 2) as decimal(12, 2)) as amount,
    cast(round({{ demo_uniform('i', 15) }} * 2000 - 200, 2) as decimal(12, 2)) as balance,
    {{ window_start }} + to_seconds(cast(floor({{ demo_uniform('i', 16) }} * {{ seconds }}) as bigint)) as ts
from ({{ demo_numbers(var('demo_balance_events') | int) }}) as numbers
order by ts, user_id;
{% endmacro %}
