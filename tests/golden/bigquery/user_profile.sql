CREATE OR REPLACE TABLE features.user_profile AS
/* Static profile attributes, valid from signup. */
SELECT
  user_id,
  signup_at AS ts,
  plan,
  state,
  credit_limit
FROM raw.users;
