#!/usr/bin/env bash
# A local fakesnow server (a Snowflake imitation on DuckDB) for the Snowflake
# adapter's tests. fakesnow pins sqlglot and duckdb versions of its own, so it
# lives in its own virtual environment, apart from featuresql's.
#
#   bash ci/fakesnow_server.sh install              # idempotent
#   bash ci/fakesnow_server.sh serve PORT [DB_PATH] # foreground, for a test fixture
#
# FEATURESQL_FAKESNOW_VENV overrides the venv's place, PYTHON the interpreter
# (Python >= 3.11) that creates it.
set -euo pipefail

FAKESNOW_VERSION=0.12.1
VENV=${FEATURESQL_FAKESNOW_VENV:-${HOME}/.cache/featuresql/fakesnow}
PYTHON=${PYTHON:-python}
# What the venv holds; a change here makes `install` redo it.
REQUIREMENTS=(
    "fakesnow[server]==${FAKESNOW_VERSION}"
    # fakesnow imports the connector: keep it on the major that featuresql's
    # [snowflake] extra allows (4.x; 5.x is not supported here).
    "snowflake-connector-python>=4.8,<5"
)
MARKER="$VENV/.featuresql-installed"

usage() {
    echo "usage: $0 install | serve PORT [DB_PATH]" >&2
    exit 2
}

install() {
    local want
    want=$(printf '%s\n' "${REQUIREMENTS[@]}")
    if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$want" ] && [ -x "$VENV/bin/fakesnow" ]; then
        echo "fakesnow ${FAKESNOW_VERSION} already installed in $VENV"
        return 0
    fi
    rm -f "$MARKER"
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "fakesnow ${FAKESNOW_VERSION} needs Python >= 3.11: set PYTHON to one" >&2
        exit 1
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        mkdir -p "$(dirname "$VENV")"
        "$PYTHON" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet "${REQUIREMENTS[@]}"
    "$VENV/bin/fakesnow" --help >/dev/null
    printf '%s\n' "$want" >"$MARKER"
    echo "fakesnow ${FAKESNOW_VERSION} installed in $VENV"
}

# The server runs from ci/fakesnow_launcher.py, which starts it as `fakesnow -s`
# does, but honours DB_PATH (`fakesnow -s` ignores -d/--db_path) and patches two
# result-encoding bugs of fakesnow 0.12.1: see that file.
LAUNCHER="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/fakesnow_launcher.py"

serve() {
    if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
    local port=$1
    if [ ! -f "$MARKER" ]; then
        echo "fakesnow is not installed in $VENV: run 'bash ci/fakesnow_server.sh install'" >&2
        exit 1
    fi
    if [ $# -eq 2 ]; then
        mkdir -p "$2"
        exec "$VENV/bin/python" "$LAUNCHER" "$port" "$(cd "$2" && pwd)"
    fi
    exec "$VENV/bin/python" "$LAUNCHER" "$port"
}

[ $# -ge 1 ] || usage
command=$1
shift
case "$command" in
    install) [ $# -eq 0 ] || usage; install ;;
    serve) serve "$@" ;;
    *) usage ;;
esac
