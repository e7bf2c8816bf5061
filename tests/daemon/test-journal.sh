#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# headcountd's log is an audit trail, not a sample: every join and every leave or death
# is logged once, in order, with the command's pid, even for runs of 'true' that are over
# before the daemon looks (200 one after another, 100 at once), and the metrics file counts
# them. A SIGTERMed 'headcount run' is a leave with signal TERM; a SIGKILLed wrapper and
# command are a death; a stopped daemon says how many runs it did not see, and never
# calls them deaths.
. "${srcdir:-.}/tests/cli/lib.sh"

HEADCOUNTD=${HEADCOUNTD:-$top_builddir/daemon/headcountd}
if [ ! -x "$HEADCOUNTD" ] || ! command -v python3 >/dev/null; then
        echo "SKIP: needs headcountd and python3" >&2
        exit 77
fi
M=$T/hc.prom
L=$T/daemon.log

lines() {               # lines TEXT: how many lines of the log contain TEXT
        grep -cF -- "$1" "$L"
}
has_lines() {           # has_lines N TEXT
        [ "$(lines "$2")" -ge "$1" ]
}
metric() {              # metric NAME: its value in the metrics file
        sed -n "s/^$1 //p" "$M" 2>/dev/null
}
metric_is() {           # metric_is NAME VALUE
        [ "$(metric "$1")" = "$2" ]
}
region_lines() {        # region_lines NAME TEXT: lines about NAME's holders with TEXT
        grep -F "$1: pid" "$L" | grep -cF -- "$2"
}
region_lines_are() {    # region_lines_are N NAME TEXT
        [ "$(region_lines "$2" "$3")" = "$1" ]
}
holder() {              # holder NAME: prints the pid that holds NAME's seat; fails if none
        local p
        p=$("$HEADCOUNT" list -n -r -o pid "$1")
        [ -n "$p" ] && echo "$p"
}

"$HEADCOUNTD" --dir "$D" --bus=none --log-target=stderr --metrics-file "$M" 2>"$L" &
daemon=$!
track $daemon
wait_for 30 "the daemon is up" test -f "$M"

# 200 runs of 'true', one after another.
for i in $(seq 200); do
        "$HEADCOUNT" run job -- true || fail "run $i of job failed"
done
wait_for 60 "200 leaves of job" has_lines 200 "left, slot 0"
same "joins of job" "$(lines " joined, slot 0")" 200
same "leaves of job" "$(lines " left, slot 0")" 200
same "deaths of job" "$(lines "died holding")" 0
same "leaves with exit status 0" "$(region_lines job "left, slot 0 (0 of 64 seats held); exit status 0")" 200
wait_for 30 "joins_total counts the 200" metric_is headcount_joins_total 200
same "leaves_total" "$(metric headcount_leaves_total)" 200
same "deaths_total" "$(metric headcount_deaths_total)" 0

# Each run is named by the same pid in its join and its leave, joins and leaves alternate
# (they are in order), and the pid is the command's: 'true' is a child of the wrapper, so
# no two runs name the same pid in a row.
python3 - "$L" >"$T/order" 2>&1 <<'PY' || { fail "the log is out of order:"; cat "$T/order" >&2; }
import re, sys
events = []
for line in open(sys.argv[1]):
    m = re.search(r"job: pid (\d+) (joined|left), slot 0", line)
    if m:
        events.append((m.group(2), int(m.group(1))))
assert len(events) == 400, len(events)
for i in range(0, 400, 2):
    assert events[i][0] == "joined" and events[i + 1][0] == "left", events[i:i + 2]
    assert events[i][1] == events[i + 1][1], events[i:i + 2]
PY
checks=$((checks + 1))

# 100 runs of 'true' at once.
pids=
for i in $(seq 100); do
        "$HEADCOUNT" run --max 100 burst -- true &
        pids="$pids $!"
done
for p in $pids; do
        wait "$p" || fail "a run of burst failed"
done
wait_for 60 "100 leaves of burst" region_lines_are 100 burst " left, slot"
same "joins of burst" "$(grep -F "burst: pid" "$L" | grep -cF " joined, slot")" 100
same "leaves of burst" "$(grep -F "burst: pid" "$L" | grep -cF " left, slot")" 100
same "deaths of burst" "$(lines "died holding")" 0
wait_for 30 "joins_total counts 300" metric_is headcount_joins_total 300

# run_held NAME: 'headcount run NAME -- sleep 600' in the background, once its command's
# join is logged; sets w (the wrapper) and cmd (the command).
run_held() {
        "$HEADCOUNT" run "$1" -- sleep 600 &
        w=$!
        track $w
        wait_for 30 "the command of $1 holds its seat" holder "$1" >/dev/null
        cmd=$("$HEADCOUNT" list -n -r -o pid "$1")
        wait_for 30 "the join of $1" has_lines 1 "$1: pid $cmd joined, slot 0"
}

# SIGTERM to 'headcount run': it passes the signal on, waits, and leaves with the status.
run_held term
kill -TERM $w
wait $w
same "the exit status of a SIGTERMed run" $? 143
wait_for 30 "the leave of term" has_lines 1 "term: pid $cmd left, slot 0"
contains "$L" "term: pid $cmd left, slot 0 (0 of 64 seats held); signal TERM"
same "deaths after SIGTERM" "$(lines "died holding")" 0

# SIGKILL to the wrapper and its command at once: a death, named by the command's pid.
run_held kill
kill -KILL $w $cmd
wait $w 2>/dev/null
wait_for 30 "the death of kill" has_lines 1 "kill: pid $cmd died holding slot 0"
same "deaths" "$(lines "died holding")" 1
same "leaves of kill" "$(lines "kill: pid $cmd left")" 0
wait_for 30 "deaths_total" metric_is headcount_deaths_total 1

# While the daemon is stopped (SIGSTOP), 40 runs of one seat: 24 of them are overwritten
# before it can read them (16 are kept per seat). It logs the 16 it can read, says how
# many it did not see, and calls none of them a death.
kill -STOP $daemon
for i in $(seq 40); do
        "$HEADCOUNT" run gap -- true || fail "run $i of gap failed"
done
kill -CONT $daemon
wait_for 30 "the runs of gap not seen" has_lines 1 "gap: 24 runs ended before headcountd could read them"
wait_for 30 "16 leaves of gap" region_lines_are 16 gap " left, slot"
same "joins of gap" "$(region_lines gap " joined, slot")" 16
same "deaths after the gap" "$(lines "died holding")" 1

kill -TERM $daemon
wait $daemon
finish
