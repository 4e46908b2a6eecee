{{ config(
    kind='on_demand',
    request={'advance_amount': 'decimal(12,2)'},
    description="The advance being requested, against the user's recent card spend: computed per request.",
    tags=['lending'],
) }}
-- On-demand features: the amount is known only when the customer asks for an advance.
-- The same SQL runs in the warehouse for training (the spine carries advance_amount, as
-- advance_labels does) and in the reader (the request carries it next to user_id).
select
    request.advance_amount / nullif(user_transactions.amount_avg_30d, 0) as amount_vs_avg_spend_30d,
    request.advance_amount > coalesce(user_transactions.amount_max_7d, 0) as above_max_spend_7d
from {{ ref('user_transactions') }}
