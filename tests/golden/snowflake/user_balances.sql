CREATE OR REPLACE TABLE features.user_balances AS
SELECT
  *
FROM (
  /* The account balance after every balance event (a snapshot as of each event). */
  SELECT
    user_id,
    ts,
    balance,
    event_type AS last_event_type,
    ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY ts, event_type) AS event_seq
  FROM raw.balance_events
) AS __rows
WHERE
  NOT user_id IS NULL;
