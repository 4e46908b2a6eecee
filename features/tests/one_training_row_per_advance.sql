{{ config(tags=['training']) }}
-- The training set keeps every labelled advance, once (a point-in-time join never drops or repeats a spine row).
select labels.user_id, labels.ts, labels.n as label_rows, coalesce(training.n, 0) as training_rows
from (
    select user_id, ts, count(*) as n from {{ ref('advance_labels') }} group by user_id, ts
) as labels
left join (
    select user_id, ts, count(*) as n from {{ ref('advance_training') }} group by user_id, ts
) as training
    on training.user_id = labels.user_id and training.ts = labels.ts
where coalesce(training.n, 0) <> labels.n
