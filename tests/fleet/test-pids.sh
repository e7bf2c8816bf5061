#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The agent's log names the same process in every event of a holding: under
# 'headcount --fleet run', the command's pid in the join, the leave (SIGTERM to the
# wrapper) and the death (SIGKILL of the wrapper and its command), as headcountd does
# locally; never the wrapper's.
. "${srcdir:-.}/tests/fleet/lib.sh"
etcd_start 1
host_start a
LOG=$T/host-a.log

child_of() {            # child_of PID: prints the one child of PID; fails if none
        local c
        c=$(pgrep -P "$1" | head -1)
        [ -n "$c" ] && echo "$c"
}
logged() {              # logged PID EVENT: the agent logged EVENT of a seat of p for PID
        grep -E "Fleet seat of 'p' \(fence [0-9]+, pid $1, uid [0-9]+\) $2" "$LOG" >/dev/null
}

for how in TERM KILL; do
        hold a run --max 1 p -- sleep 600
        w=$!
        wait_for 30 "the command of the $how run started" child_of $w >/dev/null
        cmd=$(child_of $w)
        wait_for 30 "the join of the $how run, with the command's pid" logged "$cmd" joined
        checks=$((checks + 1))
        logged "$w" joined && fail "a join names the wrapper's pid $w"
        if [ $how = TERM ]; then
                kill -TERM $w
                wait $w
                same "exit status of the SIGTERMed run" $? 143
                wait_for 30 "its leave, with the command's pid" logged "$cmd" left
        else
                kill -KILL $w $cmd
                wait $w 2>/dev/null
                wait_for 30 "its death, with the command's pid" logged "$cmd" died
        fi
        wait_for 30 "the seat is free" count_is a p 0
done
same "joins logged" "$(grep -c "Fleet seat of 'p' .* joined" "$LOG")" 2
fleet_finish
