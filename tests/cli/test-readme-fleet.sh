#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# README.md's two-host walkthrough under "Across hosts" (its first sh block), run as it
# stands, as a reader pastes it: it must finish, print what the README says it prints, and
# leave nothing running. It runs in a network namespace of its own (unshare -n, loopback
# up), where its fixed etcd ports are nobody else's. Needs root (for the namespace), etcd
# and a headcountd with the fleet agent; skips (77) otherwise.
. "${srcdir:-.}/tests/cli/lib.sh"

skip() {
        echo "SKIP: $*" >&2
        exit 77
}
# check WHAT CMD...: counts a check; fails it naming WHAT when CMD fails.
check() {
        local what=$1
        shift
        checks=$((checks + 1))
        "$@" || fail "$what"
}
[ "$(id -u)" -eq 0 ] || skip "the walkthrough runs in a network namespace of its own: run as root"
for p in unshare ip etcd pgrep; do
        command -v "$p" >/dev/null || skip "$p is missing (etcd: Debian's etcd-server; ip: iproute2)"
done
HEADCOUNTD=${HEADCOUNTD:-$top_builddir/daemon/headcountd}
[ -x "$HEADCOUNTD" ] && "$HEADCOUNTD" --help 2>/dev/null | grep -q -- '--etcd' ||
        skip "no headcountd with the fleet agent at $HEADCOUNTD"

# The block, extracted: the first ```sh fence after the "## Across hosts" heading.
awk '/^## Across hosts/ { on = 1 } on && /^```sh$/ { code = 1; next } code && /^```$/ { exit }
     code { print }' "$top_srcdir/README.md" >"$T/walkthrough.sh"
check "the walkthrough is found in README.md" [ -s "$T/walkthrough.sh" ]
# The programs on PATH as an installed tree would have them (libtool's wrappers here).
mkdir "$T/bin"
ln -s "$(cd "$(dirname "$HEADCOUNT")" && pwd)/$(basename "$HEADCOUNT")" "$T/bin/headcount"
ln -s "$(cd "$(dirname "$HEADCOUNTD")" && pwd)/$(basename "$HEADCOUNTD")" "$T/bin/headcountd"
unset HEADCOUNT_DIR

# bash -e would stop at the refused run (exit 75): the block is run as pasted, by an
# interactive-like shell that goes on; its own output is what is checked.
start=$(date +%s)
timeout -k 5 180 unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh \
        env PATH="$T/bin:$PATH" TMPDIR="$T" bash "$T/walkthrough.sh" >"$T/out" 2>"$T/err"
rc=$?
echo "the walkthrough took $(( $(date +%s) - start )) s, exit $rc"
same "the walkthrough's exit status (124: it hung)" "$rc" 0
# what the README says it prints, line by line (pids and times differ)
awk '/^## Across hosts/ { on = 1 } on && /^prints$/ { p = 1; next }
     p && /^```/ { if (code) exit; code = 1; next } code { print }' "$top_srcdir/README.md" >"$T/want"
check "the README shows the walkthrough's output" [ -s "$T/want" ]
# (the refusal's line is on stderr)
same "lines printed" "$(( $(wc -l <"$T/out") + 1 ))" "$(wc -l <"$T/want")"
same "the agent's status" "$(sed -n 1p "$T/out")" "lease held"
contains "$T/out" "exit 75"
contains "$T/err" "headcount: no free seat in fleet region 'report': held by pid"
contains "$T/out" "b's turn"
same "the count after host a's report died" "$(tail -n 1 "$T/out")" 0
check "a fence was printed" grep -qE '^fence [0-9]+$' "$T/out"
# nothing it started is left: its etcd, its agents, its report (all under $T)
left=$(pgrep -f "$T/" | tr '\n' ' ')
same "processes left running" "$left" ""
check "its directory is removed" [ -z "$(ls "$T" | grep '^tmp\.')" ]

finish
