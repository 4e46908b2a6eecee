#!/usr/bin/env bash
# Run a command in a network namespace of its own that has nothing but
# loopback (up): no route off the machine, and servers that listen on every
# interface (DynamoDB Local has no bind-address option) are reachable from
# inside that namespace only. The command and every process it starts share
# the namespace, so tests reach their servers on 127.0.0.1 as usual.
#
#   bash ci/in_private_network.sh python -m pytest -q ...
#
# Install everything first, outside: nothing inside can reach a registry.
# As root this is `unshare --net`, and the command runs as root as before.
# Otherwise it takes a user namespace as well (unshare --user
# --map-current-user): the command keeps its user id and gets no extra
# capabilities (they serve only to bring loopback up).
set -euo pipefail

usage() {
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
}

loopback_up() {
    if command -v ip >/dev/null; then
        ip link set lo up
    else
        # no iproute2: SIOCSIFFLAGS with IFF_UP | IFF_RUNNING | IFF_LOOPBACK
        "${PYTHON:-python3}" -c '
import fcntl, socket, struct
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    fcntl.ioctl(s, 0x8914, struct.pack("16sh22x", b"lo", 0x1 | 0x8 | 0x40))
'
    fi
}

if [ "${1:-}" = "--inner" ]; then
    # Inside the new namespace (started below).
    shift
    [ $# -ge 1 ] || usage
    loopback_up
    if [ "$(id -u)" -ne 0 ]; then
        # drop the capabilities that --keep-caps lent for `ip link`
        exec setpriv --inh-caps=-all --ambient-caps=-all -- "$@"
    fi
    exec "$@"
fi

[ $# -ge 1 ] || usage
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
if [ "$(id -u)" -eq 0 ]; then
    exec unshare --net -- bash "$SELF" --inner "$@"
fi
exec unshare --user --map-current-user --keep-caps --net -- bash "$SELF" --inner "$@"
