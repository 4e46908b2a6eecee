CREATE OR REPLACE TABLE features.user_profile AS
SELECT
  *
FROM (
  /* Static profile attributes, valid from signup. */
  SELECT
    user_id,
    signup_at AS ts,
    plan,
    state,
    credit_limit
  FROM raw.users
) AS __rows
WHERE
  NOT user_id IS NULL;
