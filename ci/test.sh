#!/usr/bin/env bash
# Set up a virtual environment with everything the tests need, then run them.
# This is the README's test command; .ci/run calls it on a clean clone.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${FEATURESQL_VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e '.[dev,snowflake,bigquery,dynamodb]'

echo "== test servers (each in its own virtual environment; started by the tests)"
bash ci/fakesnow_server.sh install
bash ci/bigquery_emulator.sh install
bash ci/dynamodb_local.sh install
bash ci/dynalite.sh install
bash ci/zetasql.sh install

echo "== headless Chromium for the docs site tests (Debian packages; Selenium never downloads a browser)"
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    APT="env DEBIAN_FRONTEND=noninteractive apt-get"
    [ "$(id -u)" -eq 0 ] || APT="sudo $APT"
    $APT install -y chromium chromium-driver || { $APT update && $APT install -y chromium chromium-driver; }
fi

echo "== lint"
ruff check .
ruff format --check featuresql adapters tests bench ci
bash ci/mypy.sh

echo "== tests"
set +e
# In a network namespace with loopback only: DynamoDB Local listens on every
# interface, so it must see no other (ci/in_private_network.sh says more).
bash ci/in_private_network.sh python -m pytest -q --durations=25 "$@"  # the slowest, to keep CI short
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: failing" >&2
    exit 1
fi
[ "$status" -eq 0 ] || exit "$status"

echo "== benchmark smoke runs (timings at full size are run by hand: bench/README.md)"
python bench/windows.py --smoke
python bench/extract.py --smoke --no-feast
python bench/incremental.py --smoke
python bench/engines.py --smoke
# DynamoDB Local again: inside the private network namespace
bash ci/in_private_network.sh python bench/online.py --smoke --no-feast
bash ci/in_private_network.sh python bench/sync_memory.py --smoke
bash ci/in_private_network.sh python bench/push.py --smoke
# bench/load.py --smoke runs in the tests (tests/test_load_smoke.py), against dynalite
