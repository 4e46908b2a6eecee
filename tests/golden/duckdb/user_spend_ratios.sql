CREATE OR REPLACE TABLE features.user_spend_ratios AS
SELECT
  *
FROM (
  /* Chained features: ratios of the user_transactions windows. */
  SELECT
    user_id,
    ts,
    amount_sum_1d / NULLIF(amount_sum_30d, 0) AS spend_share_1d_of_30d,
    count_7d / 7.0 AS transactions_per_day_7d,
    amount_max_7d / NULLIF(amount_avg_30d, 0) AS max_to_avg_amount
  FROM features.user_transactions
) AS __rows
WHERE
  NOT user_id IS NULL;
