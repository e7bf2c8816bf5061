#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 'headcount run' forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH
# to CMD: a CMD that traps the signal reports it, and its status is the wrapper's.
. "${srcdir:-.}/tests/cli/lib.sh"
events_open

for sig in INT TERM HUP QUIT USR1 USR2 WINCH; do
        "$HEADCOUNT" run "sig-$sig" -- bash -c '
                trap "echo got-$0 >&3; exit 7" "$0"
                echo ready >&3
                while :; do read -t 1 _ <"$T/gate" && exit 9; done' "$sig" &
        wrapper=$!
        track $wrapper
        next_event
        same "$sig: CMD ready" "$event" ready
        kill -s "$sig" $wrapper
        next_event
        same "$sig: CMD got it" "$event" "got-$sig"
        wait $wrapper
        same "$sig: wrapper status" $? 7
        same "$sig: seat given back" "$(hc count "sig-$sig")" 0
done

# A CMD that does not trap SIGTERM dies of it: the wrapper exits 128 + 15.
"$HEADCOUNT" run term -- bash -c 'echo ready >&3; while :; do read -t 1 _ <"$T/gate" && exit 9; done' &
wrapper=$!
track $wrapper
next_event
kill -TERM $wrapper
wait $wrapper
same "untrapped TERM" $? 143

finish
