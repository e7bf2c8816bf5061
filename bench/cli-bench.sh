#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Whole-process wall time of 'headcount run --max 1 NAME -- true' against 'flock -n FILE
# true' and against a bare fork/exec of 'true', measured in the same rounds (each round
# starts the three in turn, so all see the same load). Prints the median and the 10th and
# 90th percentiles in microseconds, and the ratios of the medians. Target: headcount
# within 1.05x of flock -n.
#
#   HC_BUILDDIR=build sh bench/cli-bench.sh [ROUNDS]
set -u
builddir=${HC_BUILDDIR:-.}
rounds=${1:-${HC_CLI_BENCH_ROUNDS:-3000}}
srcdir=$(cd "$(dirname "$0")/.." && pwd)

# The real binary, not libtool's wrapper script, which would be timed as well.
hc=$builddir/cli/.libs/headcount
[ -x "$hc" ] || hc=$builddir/cli/headcount
if [ ! -x "$hc" ]; then
        echo "cli-bench: no headcount in $builddir/cli; build first" >&2
        exit 1
fi
LD_LIBRARY_PATH=$builddir/lib/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH

# On tmpfs, where regions live (/run, /dev/shm, $XDG_RUNTIME_DIR), as bench-core's do: on a
# disk, every file made or removed is a journal write, for flock's lock file and for the
# seat's own file that 'run' hands to its command alike.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
        tmp=$(mktemp -d /dev/shm/cli-bench.XXXXXX) || exit 1
else
        tmp=$(mktemp -d "${TMPDIR:-/tmp}/cli-bench.XXXXXX") || exit 1
fi
trap 'rm -rf "$tmp"' EXIT
chmod 0700 "$tmp"

driver=$builddir/bench/cli-bench-spawn
if [ ! -x "$driver" ]; then
        driver=$tmp/cli-bench-spawn
        ${CC:-cc} -O2 -o "$driver" "$srcdir/bench/cli-bench-spawn.c" || exit 1
fi
true_bin=
for d in $(echo "$PATH" | tr ':' ' '); do       # the program, not the shell's builtin
        [ -x "$d/true" ] && true_bin=$d/true && break
done
flock_bin=$(command -v flock)
if [ -z "$flock_bin" ]; then
        echo "cli-bench: flock(1) is not installed" >&2
        exit 1
fi

echo "rounds: $rounds; times in microseconds (median p10 p90)"
"$driver" "$rounds" \
        true "$true_bin" ';;' \
        flock "$flock_bin" -n "$tmp/lock" "$true_bin" ';;' \
        headcount "$hc" --dir "$tmp" run --max 1 bench -- "$true_bin" >"$tmp/result" || exit 1

awk '
        { median[$1] = $2; printf "%-10s %9.1f %9.1f %9.1f\n", $1, $2, $3, $4 }
        END {
                printf "headcount / flock -n: %.3f (target <= 1.05)\n", median["headcount"] / median["flock"]
                printf "headcount / fork+exec: %.3f\n", median["headcount"] / median["true"]
                printf "flock -n / fork+exec: %.3f\n", median["flock"] / median["true"]
        }' "$tmp/result"
