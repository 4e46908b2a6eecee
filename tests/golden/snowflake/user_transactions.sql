CREATE OR REPLACE TABLE features.user_transactions AS
WITH events AS (
  SELECT
    user_id,
    ts,
    CAST(TRUNC(
      (
        DATE_PART(EPOCH_MICROSECOND, ts) - (
          DATE_PART(EPOCH_MICROSECOND, ts) % 86400000000 + 86400000000
        ) % 86400000000
      ) / 86400000000
    ) AS BIGINT) AS __tile,
    in_amount,
    in_merchant_category,
    in_transaction_id,
    ROW_NUMBER() OVER (
      PARTITION BY user_id, CAST(TRUNC(
        (
          DATE_PART(EPOCH_MICROSECOND, ts) - (
            DATE_PART(EPOCH_MICROSECOND, ts) % 86400000000 + 86400000000
          ) % 86400000000
        ) / 86400000000
      ) AS BIGINT)
      ORDER BY in_amount IS NULL, ts DESC, in_transaction_id DESC, in_amount DESC
    ) AS __rank_last_in_amount_in_transaction_id
  FROM (
    /* Card spend per user over sliding windows (settled transactions only). */
    SELECT
      user_id,
      ts,
      amount AS in_amount,
      merchant_category AS in_merchant_category,
      transaction_id AS in_transaction_id
    FROM raw.transactions
    WHERE
      status = 'settled' AND amount > 0
  ) AS __rows
  WHERE
    NOT user_id IS NULL AND ts < CAST('2026-07-01 00:00:00.000000' AS TIMESTAMP)
), tiles AS (
  SELECT
    user_id,
    __tile,
    COUNT(*) AS __rows,
    COUNT(in_amount) AS __n_in_amount,
    SUM(in_amount) AS __sum_in_amount,
    MAX(in_amount) AS __max_in_amount,
    SUM(in_amount * CAST(1 AS DECIMAL(38, 0))) AS __wide_sum_in_amount,
    SUM(
      (
        in_amount * CAST(1 AS DECIMAL(38, 0))
      ) * (
        in_amount * CAST(1 AS DECIMAL(38, 0))
      )
    ) AS __wide_squares_in_amount,
    COUNT(in_merchant_category) AS __n_in_merchant_category,
    MAX(CASE WHEN __rank_last_in_amount_in_transaction_id = 1 THEN in_amount END) AS __last_in_amount_in_transaction_id
  FROM events
  GROUP BY
    user_id,
    __tile
), distinct_in_merchant_category AS (
  SELECT
    user_id,
    __tile,
    __tile - LAG(__tile) OVER (PARTITION BY user_id, __value ORDER BY __tile) AS __since,
    LEAD(__tile) OVER (PARTITION BY user_id, __value ORDER BY __tile) - __tile AS __until
  FROM (
    SELECT DISTINCT
      user_id,
      in_merchant_category AS __value,
      __tile
    FROM events
    WHERE
      NOT in_merchant_category IS NULL
  ) AS __occurrences
), distinct_deltas AS (
  SELECT
    user_id,
    __b,
    SUM(__delta_in_merchant_category_30) AS __delta_in_merchant_category_30
  FROM (
    SELECT
      user_id,
      __tile + 1 AS __b,
      CASE WHEN __since IS NULL OR __since > 30 THEN 1 ELSE 0 END AS __delta_in_merchant_category_30
    FROM distinct_in_merchant_category
    WHERE
      __since IS NULL OR __since > 30
    UNION ALL
    SELECT
      user_id,
      __tile + 31 AS __b,
      CASE WHEN __until IS NULL OR __until > 30 THEN -1 ELSE 0 END AS __delta_in_merchant_category_30
    FROM distinct_in_merchant_category
    WHERE
      __until IS NULL OR __until > 30
  ) AS __deltas
  GROUP BY
    user_id,
    __b
), points AS (
  SELECT
    *
  FROM (
    SELECT
      user_id,
      __tile + 1 AS __b
    FROM tiles
    UNION
    SELECT
      user_id,
      __tile + 2 AS __b
    FROM tiles
    UNION
    SELECT
      user_id,
      __tile + 8 AS __b
    FROM tiles
    UNION
    SELECT
      user_id,
      __tile + 31 AS __b
    FROM tiles
  ) AS __points
  WHERE
    __b < 20636
), series AS (
  SELECT
    p.user_id,
    p.__b,
    t.__rows,
    t.__n_in_amount,
    t.__sum_in_amount,
    t.__max_in_amount,
    t.__wide_sum_in_amount,
    t.__wide_squares_in_amount,
    t.__last_in_amount_in_transaction_id
  FROM points AS p
  LEFT JOIN tiles AS t
    ON p.user_id = t.user_id AND t.__tile = (
      p.__b - 1
    )
), windowed AS (
  SELECT
    s.user_id,
    s.__b,
    CAST(COALESCE(s.__rows, 0) AS BIGINT) AS count_1d,
    CAST(COALESCE(
      SUM(s.__rows) OVER (PARTITION BY s.user_id ORDER BY s.__b RANGE BETWEEN 6 PRECEDING AND CURRENT ROW),
      0
    ) AS BIGINT) AS count_7d,
    CAST(COALESCE(
      SUM(s.__rows) OVER (PARTITION BY s.user_id ORDER BY s.__b RANGE BETWEEN 29 PRECEDING AND CURRENT ROW),
      0
    ) AS BIGINT) AS count_30d,
    s.__sum_in_amount AS amount_sum_1d,
    SUM(s.__sum_in_amount) OVER (PARTITION BY s.user_id ORDER BY s.__b RANGE BETWEEN 6 PRECEDING AND CURRENT ROW) AS amount_sum_7d,
    SUM(s.__sum_in_amount) OVER (PARTITION BY s.user_id ORDER BY s.__b RANGE BETWEEN 29 PRECEDING AND CURRENT ROW) AS amount_sum_30d,
    CAST(SUM(s.__sum_in_amount) OVER (PARTITION BY s.user_id ORDER BY s.__b RANGE BETWEEN 6 PRECEDING AND CURRENT ROW) AS DOUBLE) / NULLIF(
      SUM(s.__n_in_amount) OVER (PARTITION BY s.user_id ORDER BY s.__b RANGE BETWEEN 6 PRECEDING AND CURRENT ROW),
      0
    ) AS amount_avg_7d,
    CAST(SUM(s.__sum_in_amount) OVER (PARTITION BY s.user_id ORDER BY s.__b RANGE BETWEEN 29 PRECEDING AND CURRENT ROW) AS DOUBLE) / NULLIF(
      SUM(s.__n_in_amount) OVER (PARTITION BY s.user_id ORDER BY s.__b RANGE BETWEEN 29 PRECEDING AND CURRENT ROW),
      0
    ) AS amount_avg_30d,
    MAX(s.__max_in_amount) OVER (PARTITION BY s.user_id ORDER BY s.__b RANGE BETWEEN 6 PRECEDING AND CURRENT ROW) AS amount_max_7d,
    CASE
      WHEN SUM(s.__n_in_amount) OVER (PARTITION BY s.user_id ORDER BY s.__b RANGE BETWEEN 29 PRECEDING AND CURRENT ROW) >= 2
      THEN SQRT(
        CAST(SUM(s.__n_in_amount) OVER (PARTITION BY s.user_id ORDER BY s.__b RANGE BETWEEN 29 PRECEDING AND CURRENT ROW) * SUM(s.__wide_squares_in_amount) OVER (PARTITION BY s.user_id ORDER BY s.__b RANGE BETWEEN 29 PRECEDING AND CURRENT ROW) - SUM(s.__wide_sum_in_amount) OVER (PARTITION BY s.user_id ORDER BY s.__b RANGE BETWEEN 29 PRECEDING AND CURRENT ROW) * SUM(s.__wide_sum_in_amount) OVER (PARTITION BY s.user_id ORDER BY s.__b RANGE BETWEEN 29 PRECEDING AND CURRENT ROW) AS DOUBLE) / CAST(SUM(s.__n_in_amount) OVER (PARTITION BY s.user_id ORDER BY s.__b RANGE BETWEEN 29 PRECEDING AND CURRENT ROW) * (
          SUM(s.__n_in_amount) OVER (PARTITION BY s.user_id ORDER BY s.__b RANGE BETWEEN 29 PRECEDING AND CURRENT ROW) - 1
        ) AS DOUBLE)
      )
    END AS amount_stddev_30d,
    CAST(COALESCE(
      SUM(COALESCE(distinct_deltas.__delta_in_merchant_category_30, 0)) OVER (
        PARTITION BY s.user_id
        ORDER BY s.__b
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ),
      0
    ) AS BIGINT) AS merchant_category_count_distinct_30d,
    LAST_VALUE(s.__last_in_amount_in_transaction_id) IGNORE NULLS OVER (PARTITION BY s.user_id ORDER BY s.__b RANGE BETWEEN 6 PRECEDING AND CURRENT ROW) AS amount_last_7d
  FROM series AS s
  LEFT JOIN distinct_deltas
    ON s.user_id = distinct_deltas.user_id AND s.__b = distinct_deltas.__b
)
SELECT
  user_id,
  TO_TIMESTAMP_NTZ(__b * 86400, 0) AS ts,
  count_1d,
  count_7d,
  count_30d,
  amount_sum_1d,
  amount_sum_7d,
  amount_sum_30d,
  amount_avg_7d,
  amount_avg_30d,
  amount_max_7d,
  amount_stddev_30d,
  merchant_category_count_distinct_30d,
  amount_last_7d
FROM windowed;
