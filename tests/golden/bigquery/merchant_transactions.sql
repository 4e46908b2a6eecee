CREATE OR REPLACE TABLE features.merchant_transactions AS
WITH events AS (
  SELECT
    merchant_id,
    ts,
    DIV(
      (
        UNIX_MICROS(ts) - MOD(MOD(UNIX_MICROS(ts), 86400000000) + 86400000000, 86400000000)
      ),
      86400000000
    ) AS __tile,
    in_amount,
    in_user_id,
    in_2
  FROM (
    /* Activity per merchant: volume, distinct customers and the decline rate's inputs. */
    SELECT
      merchant_id,
      ts,
      amount AS in_amount,
      user_id AS in_user_id,
      CASE WHEN status = 'declined' THEN 1 ELSE 0 END AS in_2
    FROM raw.transactions
  ) AS __rows
  WHERE
    NOT merchant_id IS NULL AND ts < CAST('2026-07-01 00:00:00.000000' AS TIMESTAMP)
), tiles AS (
  SELECT
    merchant_id,
    __tile,
    COUNT(*) AS __rows,
    COUNT(in_amount) AS __n_in_amount,
    SUM(in_amount) AS __sum_in_amount,
    COUNT(in_user_id) AS __n_in_user_id,
    COUNT(in_2) AS __n_in_2,
    SUM(in_2) AS __sum_in_2
  FROM events
  GROUP BY
    merchant_id,
    __tile
), distinct_in_user_id AS (
  SELECT
    merchant_id,
    __tile,
    __tile - LAG(__tile) OVER (PARTITION BY merchant_id, __value ORDER BY __tile) AS __since,
    LEAD(__tile) OVER (PARTITION BY merchant_id, __value ORDER BY __tile) - __tile AS __until
  FROM (
    SELECT DISTINCT
      merchant_id,
      in_user_id AS __value,
      __tile
    FROM events
    WHERE
      NOT in_user_id IS NULL
  ) AS __occurrences
), distinct_deltas AS (
  SELECT
    merchant_id,
    __b,
    SUM(__delta_in_user_id_7) AS __delta_in_user_id_7
  FROM (
    SELECT
      merchant_id,
      __tile + 1 AS __b,
      CASE WHEN __since IS NULL OR __since > 7 THEN 1 ELSE 0 END AS __delta_in_user_id_7
    FROM distinct_in_user_id
    WHERE
      __since IS NULL OR __since > 7
    UNION ALL
    SELECT
      merchant_id,
      __tile + 8 AS __b,
      CASE WHEN __until IS NULL OR __until > 7 THEN -1 ELSE 0 END AS __delta_in_user_id_7
    FROM distinct_in_user_id
    WHERE
      __until IS NULL OR __until > 7
  ) AS __deltas
  GROUP BY
    merchant_id,
    __b
), points AS (
  SELECT
    *
  FROM (
    SELECT
      merchant_id,
      __tile + 1 AS __b
    FROM tiles
    UNION DISTINCT
    SELECT
      merchant_id,
      __tile + 2 AS __b
    FROM tiles
    UNION DISTINCT
    SELECT
      merchant_id,
      __tile + 8 AS __b
    FROM tiles
  ) AS __points
  WHERE
    __b < 20636
), series AS (
  SELECT
    p.merchant_id,
    p.__b,
    t.__rows,
    t.__n_in_amount,
    t.__sum_in_amount,
    t.__n_in_2,
    t.__sum_in_2
  FROM points AS p
  LEFT JOIN tiles AS t
    ON p.merchant_id = t.merchant_id AND t.__tile = (
      p.__b - 1
    )
), windowed AS (
  SELECT
    s.merchant_id,
    s.__b,
    CAST(COALESCE(s.__rows, 0) AS INT64) AS count_1d,
    CAST(COALESCE(
      SUM(s.__rows) OVER (
        PARTITION BY s.merchant_id
        ORDER BY s.__b
        RANGE BETWEEN 6 PRECEDING AND CURRENT ROW
      ),
      0
    ) AS INT64) AS count_7d,
    SUM(s.__sum_in_amount) OVER (
      PARTITION BY s.merchant_id
      ORDER BY s.__b
      RANGE BETWEEN 6 PRECEDING AND CURRENT ROW
    ) AS amount_sum_7d,
    CAST(COALESCE(
      SUM(COALESCE(distinct_deltas.__delta_in_user_id_7, 0)) OVER (
        PARTITION BY s.merchant_id
        ORDER BY s.__b
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ),
      0
    ) AS INT64) AS user_id_count_distinct_7d,
    SUM(s.__sum_in_2) OVER (
      PARTITION BY s.merchant_id
      ORDER BY s.__b
      RANGE BETWEEN 6 PRECEDING AND CURRENT ROW
    ) AS declined_count_7d
  FROM series AS s
  LEFT JOIN distinct_deltas
    ON s.merchant_id = distinct_deltas.merchant_id AND s.__b = distinct_deltas.__b
)
SELECT
  merchant_id,
  TIMESTAMP_SECONDS(__b * 86400) AS ts,
  count_1d,
  count_7d,
  amount_sum_7d,
  user_id_count_distinct_7d,
  declined_count_7d
FROM windowed;
