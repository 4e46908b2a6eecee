#!/usr/bin/env bash
# ZetaSQL, the SQL analyzer at the front of BigQuery, for tests/test_sql_analyzers.py:
# every statement featuresql sends to BigQuery is resolved against a catalog, so
# SQL the emulator accepts but BigQuery would refuse fails the tests.
#
# The npm package @fivetrandevelopers/zetasql ships ZetaSQL's LocalService (a gRPC
# server) prebuilt for Linux x86-64, with the .proto files of its API: installing
# it is an ordinary npm install, nothing is downloaded at install or run time.
# The Python stubs are generated here from those .proto files with grpcio-tools
# (a dev extra), by the Python on PATH (ci/test.sh activates the venv; PYTHON
# overrides it), into $DIR/python, which the tests put on sys.path.
#
#   bash ci/zetasql.sh install       # idempotent; prints the server's path
#   bash ci/zetasql.sh serve PORT    # foreground, for a test fixture; 127.0.0.1 only
#
# The install lives in ~/.cache/featuresql/zetasql, beside the other test servers (about 350 MB:
# the package carries the macOS and ARM builds too); FEATURESQL_ZETASQL_DIR
# overrides the folder.
set -euo pipefail

PACKAGE_VERSION=1.13.0
PACKAGE="@fivetrandevelopers/zetasql@${PACKAGE_VERSION}"
DIR=${FEATURESQL_ZETASQL_DIR:-${HOME}/.cache/featuresql/zetasql}
MARKER="$DIR/.featuresql-installed"
LIB="$DIR/node_modules/@fivetrandevelopers/zetasql/lib/zetasql"
SERVER="$LIB/remote_server.so"  # the Linux x86-64 build (remote_server is macOS's)
PROTOS="$LIB/protos"
STUBS="$DIR/python"
PYTHON=${PYTHON:-python}
HOST=127.0.0.1

usage() {
    echo "usage: $0 install | serve PORT" >&2
    exit 2
}

# What the marker records: the package, and the grpcio-tools and protobuf the stubs
# were generated for (generated code checks the runtime's version when imported).
expected_marker() {
    local versions
    versions=$("$PYTHON" -c 'import importlib.metadata as m
print(*(f"{name}=={m.version(name)}" for name in ("grpcio-tools", "protobuf")))' 2>/dev/null) || return 1
    echo "$PACKAGE $versions"
}

install() {
    local expected
    if ! expected=$(expected_marker); then
        echo "grpcio-tools is missing from $("$PYTHON" -c 'import sys; print(sys.prefix)' 2>/dev/null || echo "$PYTHON"):" >&2
        echo "pip install -e '.[dev]' (in the venv), then rerun: bash $0 install" >&2
        exit 1
    fi
    if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$expected" ] && [ -x "$SERVER" ] \
        && [ -f "$STUBS/local_service_pb2_grpc.py" ]; then
        echo "ZetaSQL ($PACKAGE) already installed: $SERVER"
        return 0
    fi
    rm -f "$MARKER"
    if [ "$(uname -s)" != Linux ] || [ "$(uname -m)" != x86_64 ]; then
        echo "ZetaSQL's LocalService is used here in its Linux x86-64 build; this is $(uname -s) $(uname -m)" >&2
        exit 1
    fi
    command -v npm >/dev/null || { echo "npm is needed to install $PACKAGE" >&2; exit 1; }
    mkdir -p "$DIR"
    # a package.json of our own keeps npm from walking up to another project
    [ -f "$DIR/package.json" ] || echo '{"name": "featuresql-zetasql", "private": true}' >"$DIR/package.json"
    # --ignore-scripts: the package needs no install scripts (the server is in it)
    npm install --prefix "$DIR" --no-save --ignore-scripts --no-audit --no-fund --loglevel=error "$PACKAGE"
    if [ ! -x "$SERVER" ] || [ ! -f "$PROTOS/local_service.proto" ]; then
        echo "npm installed $PACKAGE but $SERVER or $PROTOS/local_service.proto is missing" >&2
        exit 1
    fi
    rm -rf "$STUBS"
    mkdir -p "$STUBS"
    local protos output
    protos=$(cd "$PROTOS" && find . -name '*.proto' | sed 's|^\./||' | sort)
    # shellcheck disable=SC2086  # one argument per .proto file (their paths have no spaces)
    if ! output=$(cd "$PROTOS" && "$PYTHON" -m grpc_tools.protoc -I . --python_out="$STUBS" \
        --grpc_python_out="$STUBS" $protos 2>&1); then
        echo "$output" >&2
        echo "grpc_tools.protoc could not generate the Python stubs from $PROTOS" >&2
        exit 1
    fi
    "$PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1]); import local_service_pb2_grpc' "$STUBS" || {
        echo "the stubs generated in $STUBS do not import" >&2
        exit 1
    }
    echo "$expected" >"$MARKER"
    echo "ZetaSQL ($PACKAGE) installed: $SERVER (Python stubs in $STUBS)"
}

serve() {
    [ $# -eq 1 ] || usage
    if [ ! -f "$MARKER" ] || [ ! -x "$SERVER" ]; then
        echo "ZetaSQL is not installed in $DIR: run 'bash ci/zetasql.sh install'" >&2
        exit 1
    fi
    # The server takes the address to listen on: loopback only, no TLS (as its npm wrapper runs it).
    exec "$SERVER" "$HOST" "$1"
}

[ $# -ge 1 ] || usage
command=$1
shift
case "$command" in
    install) [ $# -eq 0 ] || usage; install ;;
    serve) serve "$@" ;;
    *) usage ;;
esac
