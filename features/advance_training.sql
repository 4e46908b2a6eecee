{{ config(tags=['training']) }}
-- The repayment model's training set, materialised in the warehouse: every advance with the
-- features the app could read at decision time (a point-in-time join, as `featuresql extract`).
select *
from {{ as_of_join(ref('advance_labels'), ['user_transactions', 'user_balances.balance', 'user_profile']) }}
