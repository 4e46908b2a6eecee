CREATE OR REPLACE TABLE features.advance_labels AS
/* The label of the repayment model: was each cash advance repaid within 14 days? */
/* The app decides a minute before the advance is booked: that is the time features are taken at. */
SELECT
  advance.user_id,
  advance.ts - INTERVAL '1' MINUTE AS ts,
  advance.amount AS advance_amount,
  EXISTS(
    SELECT
      1
    FROM raw.balance_events AS repayment
    WHERE
      repayment.user_id = advance.user_id
      AND repayment.event_type = 'repayment'
      AND repayment.ts > advance.ts
      AND repayment.ts <= advance.ts + INTERVAL '14' DAY
  ) AS repaid_14d
FROM raw.balance_events AS advance
WHERE
  advance.event_type = 'advance';
