#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# 'make bench-peers': starts a private D-Bus session bus, then runs the in-process peer
# comparison (bench/peers/peers), the whole-process one (headcount run against flock -n
# and lckdo, with cli-bench-spawn), and the guarantees table (bench/peers/guarantees).
#   sh bench/peers/run.sh BUILDDIR [ROUNDS]
set -eu
builddir=$(cd "${1:-.}" && pwd)
rounds=${2:-2000}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hc-peers.XXXXXX")
chmod 0700 "$tmp"
bus_pid=
cleanup() { [ -n "$bus_pid" ] && kill "$bus_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# A private session bus, so that the benchmark needs no login session and disturbs none.
dbus-daemon --session --nofork --print-address=3 --print-pid=4 3>"$tmp/address" 4>"$tmp/pid" &
while [ ! -s "$tmp/pid" ]; do sleep 0.05; done
bus_pid=$(cat "$tmp/pid")
DBUS_SESSION_BUS_ADDRESS=$(head -n 1 "$tmp/address")
export DBUS_SESSION_BUS_ADDRESS

echo "== in-process cycles: bench/peers/peers"
"$builddir/bench/peers/peers"

echo
echo "== whole process: $rounds rounds, microseconds (median p10 p90)"
hc=$builddir/cli/.libs/headcount
[ -x "$hc" ] || hc=$builddir/cli/headcount
LD_LIBRARY_PATH=$builddir/lib/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
true_bin=/bin/true
"$builddir/bench/cli-bench-spawn" "$rounds" \
        true "$true_bin" ';;' \
        flock "$(command -v flock)" -n "$tmp/flock" "$true_bin" ';;' \
        lckdo "$(command -v lckdo)" "$tmp/lckdo" "$true_bin" ';;' \
        headcount "$hc" --dir "$tmp" run --max 1 bench -- "$true_bin" >"$tmp/result"
awk '
        { median[$1] = $2; printf "%-10s %9.1f %9.1f %9.1f\n", $1, $2, $3, $4 }
        END {
                printf "headcount / flock -n: %.3f\n", median["headcount"] / median["flock"]
                printf "headcount / lckdo:    %.3f\n", median["headcount"] / median["lckdo"]
        }' "$tmp/result"

echo
echo "== guarantees: bench/peers/guarantees"
"$builddir/bench/peers/guarantees"
