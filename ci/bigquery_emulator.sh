#!/usr/bin/env bash
# Local BigQuery emulator (the `local-bigquery` package, backed by DuckDB) for the tests.
#
#   bash ci/bigquery_emulator.sh install                        # idempotent; builds the venv
#   bash ci/bigquery_emulator.sh serve PORT GRPC_PORT DATA_DIR  # runs the server in the foreground
#
# Extra arguments after DATA_DIR go to `local-bigquery serve` (e.g. --project ID).
# The emulator lives in its own Python 3.13 venv: it needs Python >= 3.13 and duckdb 1.5.x,
# while featuresql itself runs on 3.11 with duckdb 2.x.
set -euo pipefail

VENV=${FEATURESQL_BIGQUERY_VENV:-$HOME/.cache/featuresql/bigquery-emulator}
# DuckDB installs and loads extensions from $HOME/.duckdb; the emulator gets a HOME of its own
# inside the venv so nothing lands in the user's home. `serve` must use the same HOME.
EMULATOR_HOME=$VENV/home
MARKER=$VENV/.installed-v1  # bump the suffix when the pins below change
# 0.3.2 on duckdb 1.5.5: local-bigquery 0.4.0 downloads DuckDB extensions at start-up,
# which fails offline. The extensions come from PyPI wheels instead.
PACKAGES=(
    local-bigquery==0.3.2
    duckdb==1.5.5
    duckdb-extensions==1.5.5
    duckdb-extension-icu==1.5.5
    duckdb-extension-ducklake==1.5.5
    duckdb-extension-spatial==1.5.5
)

find_python() {
    local candidate
    for candidate in "${PYTHON313:-/root/.pyenv/versions/3.13.0/bin/python}" python3.13; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

install() {
    if [ -f "$MARKER" ]; then
        echo "BigQuery emulator already installed in $VENV"
        return 0
    fi
    local python
    if ! python=$(find_python); then
        echo "error: the BigQuery emulator needs Python 3.13 (with the venv module)." >&2
        echo "Install Python 3.13 (e.g. 'pyenv install 3.13'; Debian 12 has no python3.13 package)" >&2
        echo "and put python3.13 on PATH or set PYTHON313=/path/to/python3.13, then rerun: bash $0 install" >&2
        exit 1
    fi
    echo "Installing the BigQuery emulator into $VENV (with $python)"
    rm -rf "$VENV"  # a half-finished earlier install is rebuilt from scratch
    "$python" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet "${PACKAGES[@]}"
    mkdir -p "$EMULATOR_HOME"
    # Copy the extensions shipped in the wheels into $EMULATOR_HOME/.duckdb/extensions.
    HOME=$EMULATOR_HOME "$VENV/bin/python" - <<'EOF'
import duckdb
import duckdb_extensions

for name in ("ducklake", "icu", "spatial"):
    duckdb_extensions.import_extension(name)
    duckdb.sql(f"LOAD {name}")  # fails here, not at serve time, if the install went wrong
EOF
    touch "$MARKER"
    echo "BigQuery emulator installed"
}

serve() {
    if [ "$#" -lt 3 ]; then
        echo "usage: $0 serve PORT GRPC_PORT DATA_DIR [local-bigquery options]" >&2
        exit 2
    fi
    if [ ! -f "$MARKER" ]; then
        echo "error: BigQuery emulator not installed; run: bash $0 install" >&2
        exit 1
    fi
    local port=$1 grpc_port=$2 data_dir=$3
    shift 3
    mkdir -p "$data_dir"
    # exec: the caller's PID is the server's, so killing it (or its process group) stops the server.
    HOME=$EMULATOR_HOME exec "$VENV/bin/local-bigquery" serve \
        --host 127.0.0.1 --port "$port" --grpc-port "$grpc_port" --data-dir "$data_dir" "$@"
}

case "${1:-}" in
    install) install ;;
    serve) shift; serve "$@" ;;
    *)
        echo "usage: $0 install | serve PORT GRPC_PORT DATA_DIR [local-bigquery options]" >&2
        exit 2
        ;;
esac
