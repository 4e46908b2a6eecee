"""featuresql on Airflow: run -> test -> sync the production target, daily.

Copy this file to your DAGs folder and set ``FEATURE_REPO`` to a checkout of
the feature repository (project.yml, profiles.yml, features/) on the workers,
with featuresql installed there (``pip install 'featuresql[snowflake,dynamodb]'``).

Secrets: profiles.yml reads them with ``env_var()``; here they come from the
Airflow connection ``snowflake_features`` (login, password, and ``account`` in
its extra) and are passed to the command's environment only (``env=``, rendered
at run time: they never appear in the DAG file or the command line), merged with
the worker's own environment (``append_env=True``: PATH, and AWS credentials
from the worker's role for the DynamoDB sync). The target comes from the
Airflow variable ``featuresql_target`` (default ``prod``).

Exit codes: 0 success; 1 a model or test failed; 2 usage or configuration;
3 the target is busy. Airflow fails a task on any non-zero code and retries it
(``retries``, exponential backoff): a retry of ``run`` resumes where the failed
attempt stopped (runs are incremental and idempotent), so it costs only the
failed work; a broken model fails every attempt and the task fails. Exit code 3,
after waiting ``--lock-timeout`` for the other run, marks the task *skipped*
(``skip_on_exit_code``): another run is building the same intervals, and the
next scheduled run continues from its state; its downstream tasks are skipped
too, so nothing is synced from a run that did not happen. ``sync`` runs only
when ``test`` passed, keeping suspect values out of the online store.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow import DAG

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2.6+ (skip_on_exit_code is new in 2.6)
    from airflow.operators.bash import BashOperator

FEATURE_REPO = "/opt/airflow/feature-repo"
TARGET = "{{ var.value.get('featuresql_target', 'prod') }}"
EXIT_BUSY = 3  # featuresql.errors.EXIT_BUSY: another run holds the target, nothing was done
LOCK_TIMEOUT = 600  # seconds a command waits for another run before giving up with exit code 3

SECRETS = {
    "SNOWFLAKE_ACCOUNT": "{{ conn.snowflake_features.extra_dejson.account }}",
    "SNOWFLAKE_USER": "{{ conn.snowflake_features.login }}",
    "SNOWFLAKE_PASSWORD": "{{ conn.snowflake_features.password }}",
    "NO_COLOR": "1",
}

default_args = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=3),
}

with DAG(
    dag_id="featuresql_features",
    description="featuresql: build the feature models, test them, sync the online store",
    schedule="17 2 * * *",  # daily at 02:17 UTC, after the warehouse's nightly loads
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,  # a run fills every missing interval itself: no need to replay each day
    max_active_runs=1,  # never two runs of the DAG at once
    default_args=default_args,
    tags=["featuresql"],
) as dag:
    run = BashOperator(
        task_id="featuresql_run",
        bash_command=f"featuresql run --target {TARGET} --lock-timeout {LOCK_TIMEOUT}",
        cwd=FEATURE_REPO,
        env=SECRETS,
        append_env=True,
        skip_on_exit_code=EXIT_BUSY,
    )
    test = BashOperator(
        task_id="featuresql_test",
        bash_command=f"featuresql test --target {TARGET}",
        cwd=FEATURE_REPO,
        env=SECRETS,
        append_env=True,
        retries=1,  # tests read only: one retry covers a dropped connection
        skip_on_exit_code=None,  # any failure fails (Airflow would skip on 99 by default)
    )
    sync = BashOperator(
        task_id="featuresql_sync",
        bash_command=f"featuresql sync --target {TARGET} --lock-timeout {LOCK_TIMEOUT}",
        cwd=FEATURE_REPO,
        env=SECRETS,
        append_env=True,
        skip_on_exit_code=EXIT_BUSY,
    )
    run >> test >> sync
