CREATE OR REPLACE TABLE features.user_spend_ratios AS
SELECT
  *
FROM (
  /* Chained features: ratios of the user_transactions windows. */
  SELECT
    user_id,
    ts,
    CAST(amount_sum_1d AS FLOAT64) / NULLIF(amount_sum_30d, 0) AS spend_share_1d_of_30d,
    CAST(count_7d AS FLOAT64) / 7.0 AS transactions_per_day_7d,
    CAST(amount_max_7d AS FLOAT64) / NULLIF(amount_avg_30d, 0) AS max_to_avg_amount
  FROM features.user_transactions
) AS __rows
WHERE
  NOT user_id IS NULL;
