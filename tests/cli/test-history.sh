#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 'headcount history': the last runs of a region with how each ended, from the region
# alone (no daemon): exit 0, exit 1, a command that SIGKILLs itself (a leave with signal
# KILL), a SIGTERMed 'headcount run' (a leave with signal TERM, the command's pid), and a
# SIGKILLed wrapper and command (died); the table options of 'list' and {"runs": [...]};
# run --restart, whose every run of the command is a run, and a wrapper SIGKILLed between
# two of them.
. "${srcdir:-.}/tests/cli/lib.sh"

holder() {              # holder NAME: prints the pid that holds NAME's seat; fails if none
        local p
        p=$("$HEADCOUNT" list -n -r -o pid "$1")
        [ -n "$p" ] && echo "$p"
}

expect 0 hc history job
same "history of a region never made" "$(cat "$T/out")" ""

expect 0 hc run job -- true
expect 1 hc run job -- false
expect 137 hc run job -- sh -c 'kill -KILL $$'

"$HEADCOUNT" run --tag term job -- sleep 600 &
w=$!
track $w
wait_for 30 "the command of the SIGTERMed run holds its seat" holder job >/dev/null
term=$(holder job)
kill -TERM $w
wait $w
same "the exit status of a SIGTERMed run" $? 143

"$HEADCOUNT" run --tag killed job -- sleep 600 &
w=$!
track $w
wait_for 30 "the command of the SIGKILLed run holds its seat" holder job >/dev/null
killed=$(holder job)
kill -KILL $w $killed
wait $w 2>/dev/null

expect 0 hc history -n -r -o pid,tag,how,exit,signal job
cat >"$T/want" <<WANT
HOW_0 left 0 -
HOW_1 left 1 -
HOW_2 left - KILL
$term term left - TERM
$killed killed died - -
WANT
sed -E 's/^[0-9]+ +(left +0 )/HOW_0 \1/; s/^[0-9]+ +(left +1 )/HOW_1 \1/; s/^[0-9]+ +(left - KILL)/HOW_2 \1/' "$T/out" >"$T/got"
same "history" "$(cat "$T/got")" "$(cat "$T/want")"

# The default columns, and JSON.
expect 0 hc history job
same "the header" "$(head -1 "$T/out" | tr -s ' ' | sed 's/^ //')" "PID USER TAG STARTED ENDED DURATION HOW EXIT SIGNAL"
expect 0 hc history -J job
python3 - "$T/out" "$term" "$killed" >"$T/json-check" 2>&1 <<'PY' || { checks=$((checks + 1)); fail "JSON: $(cat "$T/json-check")"; }
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
assert [r["how"] for r in runs] == ["left"] * 4 + ["died"], runs
assert [r["exit"] for r in runs] == [0, 1, None, None, None], runs
assert [r["signal"] for r in runs] == [None, None, "KILL", "TERM", None], runs
assert runs[3]["pid"] == int(sys.argv[2]) and runs[4]["pid"] == int(sys.argv[3]), runs
assert set(runs[0]) == {"pid", "user", "tag", "started", "ended", "duration", "how", "exit",
                        "signal", "flags"}, runs[0]
assert runs[4]["ended"] is None and runs[4]["duration"] is None, runs[4]
assert all(r["flags"] == [] for r in runs), runs
PY
checks=$((checks + 1))

# A run that is still running.
"$HEADCOUNT" run --max 2 job -- sleep 600 &
w=$!
track $w
wait_for 30 "a running run" holder job >/dev/null
expect 0 hc history -n -r -o how job
same "the last run is running" "$(tail -1 "$T/out")" "running"
kill -TERM $w
wait $w

# run --restart: each run of the command is a run of its own, with its own pid and status,
# and the wrapper between two runs is none. Here the command fails twice, then succeeds.
cat >"$T/flaky" <<'SH'
n=$(cat "$1" 2>/dev/null || echo 0)
echo $((n + 1)) >"$1"
echo "$$" >>"$1.pids"
[ "$n" -ge 2 ]
SH
expect 0 hc run --restart=on-failure --restart-sec 0 flaky -- sh "$T/flaky" "$T/tries"
expect 0 hc history -n -r -o pid,how,exit flaky
same "three runs of the command, each with its status" "$(awk '{ print $2, $3 }' "$T/out" | tr '\n' ';')" \
        "left 1;left 1;left 0;"
same "each run names its own command" "$(awk '{ print $1 }' "$T/out" | tr '\n' ' ')" \
        "$(tr '\n' ' ' <"$T/tries.pids")"

# A wrapper SIGKILLed between two runs (it held the seat, no run ran): the runs before it
# are left as they ended, and no death is made up for it.
rm -f "$T/tries" "$T/tries.pids"
"$HEADCOUNT" run --restart=always --restart-sec 600 pause -- sh -c 'echo "$$" >>"$1"; exit 4' sh "$T/paused" &
w=$!
track $w
wait_for 30 "the wrapper between two runs holds the seat" sh -c "[ \"\$(\"$HEADCOUNT\" list -n -r -o pid pause)\" = $w ]"
kill -KILL $w
wait $w 2>/dev/null
expect 0 hc history -n -r -o pid,how,exit pause
same "the run before the SIGKILLed wrapper" "$(cat "$T/out" | tr -s ' ' | sed 's/^ //')" "$(cat "$T/paused") left 4"
expect 0 hc count pause
same "the seat of the SIGKILLed wrapper is free" "$(cat "$T/out")" 0

usage_fails "unknown column 'NOPE' for 'history'" hc history -o NOPE job
finish
