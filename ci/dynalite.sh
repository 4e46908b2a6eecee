#!/usr/bin/env bash
# dynalite, a DynamoDB imitation on Node.js (LevelDB underneath), for the load
# benchmark and its smoke test. It speaks DynamoDB's wire protocol, so boto3
# code runs against it unchanged, but it has no TransactWriteItems and no
# UpdateTimeToLive (dynalite 3.2.2), which `featuresql sync` uses: the reader's
# BatchGetItem is what it serves here (bench/dynalite_store.py writes its items).
#
# dynalite's own command line ignores --host and listens on every interface;
# `serve` starts the server through dynalite's API on 127.0.0.1 only, so it
# needs no private network namespace (DynamoDB Local does).
#
#   bash ci/dynalite.sh install              # idempotent; prints where it is
#   bash ci/dynalite.sh serve PORT [PATH]    # foreground, for a test fixture
#
# `serve` keeps the data in memory, or in the LevelDB folder PATH when given.
# FEATURESQL_DYNALITE_DIR overrides the install folder.
set -euo pipefail

PACKAGE_VERSION=3.2.2
PACKAGE="dynalite@${PACKAGE_VERSION}"
DIR=${FEATURESQL_DYNALITE_DIR:-${HOME}/.cache/featuresql/dynalite}
MARKER="$DIR/.featuresql-installed"
MODULE="$DIR/node_modules/dynalite/index.js"
HOST=127.0.0.1

usage() {
    echo "usage: $0 install | serve PORT [PATH]" >&2
    exit 2
}

install() {
    if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$PACKAGE" ] && [ -f "$MODULE" ]; then
        echo "dynalite ($PACKAGE) already installed: $MODULE"
        return 0
    fi
    rm -f "$MARKER"
    command -v npm >/dev/null || { echo "npm is needed to install $PACKAGE" >&2; exit 1; }
    command -v node >/dev/null || { echo "node is needed to run dynalite" >&2; exit 1; }
    mkdir -p "$DIR"
    # a package.json of our own keeps npm from walking up to another project
    [ -f "$DIR/package.json" ] || echo '{"name": "featuresql-dynalite", "private": true}' >"$DIR/package.json"
    # Install scripts stay on: leveldown's picks its prebuilt binary (shipped in
    # the npm package, nothing is downloaded) and only compiles without one.
    npm install --prefix "$DIR" --no-save --no-audit --no-fund --loglevel=error "$PACKAGE"
    if [ ! -f "$MODULE" ]; then
        echo "npm installed $PACKAGE but $MODULE is missing" >&2
        exit 1
    fi
    # leveldown loads its native binding at require time: fail here, not in a test
    (cd "$DIR" && node -e 'require("dynalite")') || {
        echo "dynalite ($PACKAGE) is installed in $DIR but does not load (leveldown's native binding?)" >&2
        exit 1
    }
    echo "$PACKAGE" >"$MARKER"
    echo "dynalite ($PACKAGE) installed: $MODULE"
}

serve() {
    if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
    local port=$1
    if [ ! -f "$MARKER" ] || [ ! -f "$MODULE" ]; then
        echo "dynalite is not installed in $DIR: run 'bash ci/dynalite.sh install'" >&2
        exit 1
    fi
    local path=""
    if [ $# -eq 2 ]; then
        mkdir -p "$2"
        path=$(cd "$2" && pwd)  # absolute: node runs from the install folder
    fi
    # Table operations take effect at once (dynalite's default is a 500 ms
    # CREATING/DELETING phase per table, as AWS has).
    cd "$DIR"
    # shellcheck disable=SC2016  # the ${...} are JavaScript's, in single quotes on purpose
    exec node -e '
const [port, host, path] = process.argv.slice(1);
const options = {createTableMs: 0, deleteTableMs: 0, updateTableMs: 0};
if (path) options.path = path;
const server = require("dynalite")(options);
server.listen(Number(port), host, () => console.log(`dynalite listening on http://${host}:${port}`));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
' "$port" "$HOST" "$path"
}

[ $# -ge 1 ] || usage
command=$1
shift
case "$command" in
    install) [ $# -eq 0 ] || usage; install ;;
    serve) serve "$@" ;;
    *) usage ;;
esac
