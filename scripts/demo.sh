#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Sets everything up, then shows single-instance refusal and exact counting with the CLI.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
sh "$top/scripts/setup.sh"

hc="$top/build/cli/headcount"
dir=$(mktemp -d)
# Everything started here is stopped however the demo ends (Ctrl-C too): each
# 'headcount run' passes the SIGTERM on to its command and gives its seat back.
pids=
cleanup() {
        for p in $pids; do kill "$p" 2>/dev/null || true; done
        for p in $pids; do wait "$p" 2>/dev/null || true; done
        rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export HEADCOUNT_DIR="$dir"
say() { printf '\n$ %s\n' "$*"; }
# waits (at most 10 s) until NAME has at least N instances
await() { i=0; while [ "$("$hc" count "$1")" -lt "$2" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done; }

say "headcount run --max 1 demo -- sleep 30 &      # the first instance takes the only seat"
"$hc" run --max 1 --tag first demo -- sleep 30 &
pids="$pids $!"
await demo 1

say "headcount run --max 1 demo -- echo second    # a second launch is refused"
set +e
"$hc" run --max 1 demo -- echo second
echo "exit status $? (75: no free seat)"
set -e

say "headcount run --max 3 pool -- sleep 30 &      (three times: at most 3 at once)"
for i in 1 2 3; do "$hc" run --max 3 --tag "worker $i" pool -- sleep 30 & pids="$pids $!"; done
await pool 3

say "headcount count pool"
"$hc" count pool
say "headcount list pool"
"$hc" list pool

say "kill -KILL <one worker>; headcount count pool   # a crash never leaves a stale seat"
victim=$("$hc" list -rn -o PID pool | head -n 1)
kill -KILL "$victim"
"$hc" wait pool --below 3 --timeout 5 >/dev/null
"$hc" count pool
say "headcount names"
"$hc" names

# Where the programs are: nothing was installed.
printf '\nThe programs are in %s/build: cli/headcount and daemon/headcountd (run them from\n' "$top"
printf 'there, or install them: "sudo make -C %s/build install", or the Debian packages\n' "$top"
printf 'that packaging/debian-smoke.sh builds; see "Building" and "Installing the packages" in README.md).\n'
