CREATE OR REPLACE TABLE features.advance_training AS
/* The repayment model's training set, materialised in the warehouse: every advance with the */
/* features the app could read at decision time (a point-in-time join, as `featuresql extract`). */
SELECT
  *
FROM (
  WITH __spine AS (
    SELECT
      user_id,
      ts,
      advance_amount,
      repaid_14d,
      ROW_NUMBER() OVER (ORDER BY user_id NULLS LAST, ts NULLS LAST) AS __featuresql_row,
      ts AS __featuresql_t,
      TIMESTAMP_SUB(ts, INTERVAL 2678400 SECOND) AS __featuresql_m0_recent,
      TIMESTAMP_SUB(ts, INTERVAL 2592000 SECOND) AS __featuresql_m1_oldest,
      __featuresql_c0.__featuresql_hi AS __featuresql_m0_computed
    FROM features.advance_labels
    LEFT JOIN (
      SELECT
        CASE
          WHEN lo <= -4611686018427387904
          THEN NULL
          ELSE TIMESTAMP_SECONDS(CASE WHEN lo <= -4611686018427387904 THEN hi ELSE lo + 2592000 END)
        END AS __featuresql_lo,
        TIMESTAMP_SECONDS(hi) AS __featuresql_hi
      FROM (
        SELECT
          MIN(lo) AS lo,
          MAX(hi) AS hi
        FROM (
          SELECT
            lo,
            hi,
            SUM(fresh) OVER (ORDER BY lo, hi ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS island
          FROM (
            SELECT
              lo,
              hi,
              CASE
                WHEN MAX(hi) OVER (ORDER BY lo, hi ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) >= lo
                THEN 0
                ELSE 1
              END AS fresh
            FROM (
              SELECT
                lo,
                hi
              FROM featuresql.intervals
              WHERE
                project = 'cash_advance' AND model = 'user_transactions'
            ) AS __rows
          ) AS __flagged
        ) AS __numbered
        GROUP BY
          island
      ) AS __islands
      WHERE
        lo <= -4611686018427387904 OR (
          lo + 2592000
        ) < hi
    ) AS __featuresql_c0
      ON (
        __featuresql_c0.__featuresql_lo IS NULL OR ts >= __featuresql_c0.__featuresql_lo
      )
      AND ts < __featuresql_c0.__featuresql_hi
  ), __m0 AS (
    SELECT
      __spine.__featuresql_row,
      __f.count_1d AS user_transactions__count_1d,
      __f.count_7d AS user_transactions__count_7d,
      __f.count_30d AS user_transactions__count_30d,
      __f.amount_sum_1d AS user_transactions__amount_sum_1d,
      __f.amount_sum_7d AS user_transactions__amount_sum_7d,
      __f.amount_sum_30d AS user_transactions__amount_sum_30d,
      __f.amount_avg_7d AS user_transactions__amount_avg_7d,
      __f.amount_avg_30d AS user_transactions__amount_avg_30d,
      __f.amount_max_7d AS user_transactions__amount_max_7d,
      __f.amount_stddev_30d AS user_transactions__amount_stddev_30d,
      __f.merchant_category_count_distinct_30d AS user_transactions__merchant_category_count_distinct_30d,
      __f.amount_last_7d AS user_transactions__amount_last_7d
    FROM __spine
    JOIN features.user_transactions AS __f
      ON __f.user_id = __spine.user_id
      AND __f.ts <= __spine.__featuresql_t
      AND __f.ts > __spine.__featuresql_m0_recent
    QUALIFY
      ROW_NUMBER() OVER (PARTITION BY __spine.__featuresql_row ORDER BY __f.ts DESC) = 1
  ), __m1 AS (
    SELECT
      __spine.__featuresql_row,
      __f.balance AS user_balances__balance
    FROM __spine
    JOIN features.user_balances AS __f
      ON __f.user_id = __spine.user_id
      AND __f.ts <= __spine.__featuresql_t
      AND __f.ts >= __spine.__featuresql_m1_oldest
    QUALIFY
      ROW_NUMBER() OVER (
        PARTITION BY __spine.__featuresql_row
        ORDER BY __f.ts DESC, __f.event_seq DESC, __f.balance DESC, __f.last_event_type DESC
      ) = 1
  ), __m2 AS (
    SELECT
      __spine.__featuresql_row,
      __f.plan AS user_profile__plan,
      __f.state AS user_profile__state,
      __f.credit_limit AS user_profile__credit_limit
    FROM __spine
    JOIN features.user_profile AS __f
      ON __f.user_id = __spine.user_id AND __f.ts <= __spine.__featuresql_t
    QUALIFY
      ROW_NUMBER() OVER (
        PARTITION BY __spine.__featuresql_row
        ORDER BY __f.ts DESC, __f.plan DESC, __f.state DESC, __f.credit_limit DESC
      ) = 1
  )
  SELECT
    __spine.user_id,
    __spine.ts,
    __spine.advance_amount,
    __spine.repaid_14d,
    CASE
      WHEN NOT __spine.__featuresql_m0_computed IS NULL
      THEN CASE
        WHEN NOT __spine.__featuresql_t IS NULL
        THEN COALESCE(__m0.user_transactions__count_1d, 0)
      END
    END AS user_transactions__count_1d,
    CASE
      WHEN NOT __spine.__featuresql_m0_computed IS NULL
      THEN CASE
        WHEN NOT __spine.__featuresql_t IS NULL
        THEN COALESCE(__m0.user_transactions__count_7d, 0)
      END
    END AS user_transactions__count_7d,
    CASE
      WHEN NOT __spine.__featuresql_m0_computed IS NULL
      THEN CASE
        WHEN NOT __spine.__featuresql_t IS NULL
        THEN COALESCE(__m0.user_transactions__count_30d, 0)
      END
    END AS user_transactions__count_30d,
    CASE
      WHEN NOT __spine.__featuresql_m0_computed IS NULL
      THEN __m0.user_transactions__amount_sum_1d
    END AS user_transactions__amount_sum_1d,
    CASE
      WHEN NOT __spine.__featuresql_m0_computed IS NULL
      THEN __m0.user_transactions__amount_sum_7d
    END AS user_transactions__amount_sum_7d,
    CASE
      WHEN NOT __spine.__featuresql_m0_computed IS NULL
      THEN __m0.user_transactions__amount_sum_30d
    END AS user_transactions__amount_sum_30d,
    CASE
      WHEN NOT __spine.__featuresql_m0_computed IS NULL
      THEN __m0.user_transactions__amount_avg_7d
    END AS user_transactions__amount_avg_7d,
    CASE
      WHEN NOT __spine.__featuresql_m0_computed IS NULL
      THEN __m0.user_transactions__amount_avg_30d
    END AS user_transactions__amount_avg_30d,
    CASE
      WHEN NOT __spine.__featuresql_m0_computed IS NULL
      THEN __m0.user_transactions__amount_max_7d
    END AS user_transactions__amount_max_7d,
    CASE
      WHEN NOT __spine.__featuresql_m0_computed IS NULL
      THEN __m0.user_transactions__amount_stddev_30d
    END AS user_transactions__amount_stddev_30d,
    CASE
      WHEN NOT __spine.__featuresql_m0_computed IS NULL
      THEN CASE
        WHEN NOT __spine.__featuresql_t IS NULL
        THEN COALESCE(__m0.user_transactions__merchant_category_count_distinct_30d, 0)
      END
    END AS user_transactions__merchant_category_count_distinct_30d,
    CASE
      WHEN NOT __spine.__featuresql_m0_computed IS NULL
      THEN __m0.user_transactions__amount_last_7d
    END AS user_transactions__amount_last_7d,
    __m1.user_balances__balance AS user_balances__balance,
    __m2.user_profile__plan AS user_profile__plan,
    __m2.user_profile__state AS user_profile__state,
    __m2.user_profile__credit_limit AS user_profile__credit_limit
  FROM __spine
  LEFT JOIN __m0
    ON __m0.__featuresql_row = __spine.__featuresql_row
  LEFT JOIN __m1
    ON __m1.__featuresql_row = __spine.__featuresql_row
  LEFT JOIN __m2
    ON __m2.__featuresql_row = __spine.__featuresql_row
) AS as_of;
