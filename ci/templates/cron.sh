#!/usr/bin/env bash
# A featuresql job for cron: run -> test -> sync one target, never two at once,
# retrying only what a retry can fix. A crontab line calls it (see ./crontab):
#
#   17 * * * * FEATURESQL_TARGET=prod /srv/features/ci/templates/cron.sh >>/var/log/featuresql.log 2>&1
#
# Exit codes (featuresql's own, see featuresql/errors.py):
#   0  success
#   1  a model or a test failed: NOT retried. A broken model fails the same way
#      again; runs are incremental and resumable, so the next scheduled run picks
#      up where this one stopped once the model is fixed. Set FEATURESQL_RETRY_ON="1 3"
#      to retry failures too (e.g. a flaky network to the warehouse).
#   2  usage or configuration error: never retried.
#   3  the target is busy (another run holds it; nothing was done): retried with
#      exponential backoff, FEATURESQL_RETRIES times. Also returned, without running
#      anything, when another cron.sh of the same project and target is running.
# Anything else (killed by a signal: 128+N) is returned as is.
#
# Settings (environment):
#   FEATURESQL_PROJECT_DIR   the feature repository (default: the current folder)
#   FEATURESQL_TARGET        the target in profiles.yml (default: prod)
#   FEATURESQL_RETRIES       retries per step on a retryable exit code (default: 3)
#   FEATURESQL_BACKOFF       first wait in seconds, doubled each retry (default: 60)
#   FEATURESQL_RETRY_ON      exit codes worth a retry (default: "3")
#   FEATURESQL_LOCK_FILE     the flock file (default: /tmp/featuresql-<project>-<target>.lock)
#   FEATURESQL               the featuresql command (default: featuresql)
#   Secrets: whatever profiles.yml reads with env_var() (e.g. SNOWFLAKE_PASSWORD), and
#   AWS credentials through boto3's chain (instance role, AWS_PROFILE, ...). Keep them
#   in a file only the job's user can read and source it here, or in the crontab's
#   environment; never in profiles.yml.
set -euo pipefail

project_dir=${FEATURESQL_PROJECT_DIR:-$PWD}
target=${FEATURESQL_TARGET:-prod}
retries=${FEATURESQL_RETRIES:-3}
backoff=${FEATURESQL_BACKOFF:-60}
retry_on=${FEATURESQL_RETRY_ON:-3}
featuresql=${FEATURESQL:-featuresql}
EXIT_BUSY=3

cd "$project_dir"
project_key=$(printf '%s' "$(pwd -P)" | cksum | cut -d' ' -f1)
lock_file=${FEATURESQL_LOCK_FILE:-/tmp/featuresql-$project_key-$target.lock}

log() {
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) featuresql-cron[$target]: $*" >&2
}

retryable() {
    local code
    for code in $retry_on; do
        [ "$1" -eq "$code" ] && return 0
    done
    return 1
}

# step NAME ARGS...: run `featuresql ARGS...`, retrying retryable exit codes with backoff.
step() {
    local name=$1 attempt=1 wait=$backoff status
    shift
    while true; do
        log "$name: attempt $attempt: $featuresql $*"
        status=0
        # $featuresql is a command line (e.g. "python -m ..."): split on purpose
        # shellcheck disable=SC2086
        $featuresql "$@" || status=$?
        if [ "$status" -eq 0 ]; then
            log "$name: done"
            return 0
        fi
        if ! retryable "$status" || [ "$attempt" -gt "$retries" ]; then
            log "$name: failed with exit code $status (attempt $attempt, not retried)"
            return "$status"
        fi
        log "$name: exit code $status is retryable: retrying in ${wait}s"
        sleep "$wait"
        attempt=$((attempt + 1))
        wait=$((wait * 2))
    done
}

# One job per project and target: a run still going when cron fires again is left alone.
exec 9>"$lock_file"
if ! flock --nonblock 9; then
    log "another job holds $lock_file: nothing done"
    exit "$EXIT_BUSY"
fi

status=0
step run run --target "$target" || status=$?
# Sync only what passed its tests: a failed run or test keeps the online store as it was.
[ "$status" -eq 0 ] && { step test test --target "$target" || status=$?; }
[ "$status" -eq 0 ] && { step sync sync --target "$target" || status=$?; }
[ "$status" -eq 0 ] && log "run, test and sync succeeded"
exit "$status"
