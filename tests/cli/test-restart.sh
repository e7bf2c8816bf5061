#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 'headcount run --restart': CMD runs again as asked (always, on-failure, on-success) on
# one seat held throughout, the record names each new CMD, SIGTERM and SIGINT end the
# loop with CMD's last status, and a wrapper killed with SIGKILL leaves no seat behind
# between runs and a recorded CMD during one.
. "${srcdir:-.}/tests/cli/lib.sh"
events_open

# listed NAME: the pid 'list' shows for seat 0 (empty when none).
listed() {
        hc list -rn -o SEAT,PID "$1" 2>/dev/null | awk '$1 == 0 { print $2 }'
}

# until_listed NAME PID: waits until 'list' names PID on seat 0 (fails after 20 s).
until_listed() {
        local i
        for i in $(seq 400); do
                [ "$(listed "$1")" = "$2" ] && return 0
                sleep 0.05
        done
        return 1
}

# until_gone PID: waits until PID has exited (fails after 20 s).
until_gone() {
        local i
        for i in $(seq 400); do
                kill -0 "$1" 2>/dev/null || return 0
                sleep 0.05
        done
        return 1
}

# on-failure (run-one-until-success): failures are run again, the first success ends it.
cat >"$T/flaky" <<'SH'
#!/bin/sh
n=$(cat "$T/runs" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" >"$T/runs"
[ "$n" -ge 3 ] && exit 0
exit 1
SH
chmod +x "$T/flaky"
expect 0 hc run --restart=on-failure --restart-sec 0 flaky -- "$T/flaky"
same "on-failure: runs" "$(cat "$T/runs")" 3
rm -f "$T/runs"

# A CMD killed by a signal is a failure too.
expect 0 hc run --restart on-failure --restart-sec 0 killed -- sh -c '
        n=$(cat "$T/runs" 2>/dev/null || echo 0); echo $((n + 1)) >"$T/runs"
        [ "$n" -ge 1 ] || kill -KILL $$'
same "on-failure after a signal: runs" "$(cat "$T/runs")" 2
rm -f "$T/runs"

# on-success (run-one-until-failure): successes are run again, the first failure ends it
# with its status.
expect 5 hc run --restart=on-success --restart-sec 0 until-failure -- sh -c '
        n=$(cat "$T/runs" 2>/dev/null || echo 0); echo $((n + 1)) >"$T/runs"
        [ "$n" -ge 2 ] && exit 5; exit 0'
same "on-success: runs" "$(cat "$T/runs")" 3
rm -f "$T/runs"

# always (run-one-constantly): every run holds the one seat and is named by the record;
# SIGTERM to the wrapper reaches CMD and ends the loop with CMD's status.
"$HEADCOUNT" run --restart=always --restart-sec 0 always -- sh -c '
        echo "$$" >&3; read _ <"$T/gate"' &
wrapper=$!
track $wrapper
prev=
for run in 1 2 3; do
        next_event
        track "$event"
        same "always, run $run: a new CMD" "$([ "$event" != "$prev" ] && echo new)" new
        same "always, run $run: the record names it" "$(listed always)" "$event"
        same "always, run $run: count" "$(hc count always)" 1
        expect 75 hc run always -- true
        prev=$event
        [ $run = 3 ] || release 1
done
kill -TERM $wrapper
wait $wrapper
same "always: status after SIGTERM" $? 143
same "always: count after" "$(hc count always)" 0

# SIGINT ends it too; a CMD that traps it exits with its own status.
"$HEADCOUNT" run --restart=always int -- sh -c 'trap "exit 7" INT; echo "$$" >&3; while :; do sleep 0.1; done' &
wrapper=$!
track $wrapper
next_event
track "$event"
kill -INT $wrapper
wait $wrapper
same "always: status after SIGINT" $? 7

# Between runs the seat stays held (by the wrapper, which the record names), so no
# other launch gets in; SIGTERM then ends the wait at once with CMD's last status.
"$HEADCOUNT" run --restart=on-failure --restart-sec 600 between -- sh -c 'echo "$$" >&3; exit 3' &
wrapper=$!
track $wrapper
next_event
same "back-off: the record names the wrapper" "$(until_listed between $wrapper && echo yes)" yes
same "back-off: count" "$(hc count between)" 1
expect 75 hc run between -- true
kill -TERM $wrapper
wait $wrapper
same "back-off: status after SIGTERM" $? 3
same "back-off: count after" "$(hc count between)" 0

# SIGKILL of the wrapper during the back-off: nothing holds the seat any more.
"$HEADCOUNT" run --restart=always --restart-sec 600 kill-between -- sh -c 'echo "$$" >&3' &
wrapper=$!
track $wrapper
next_event
cmd=$event
same "kill in back-off: the record names the wrapper" "$(until_listed kill-between $wrapper && echo yes)" yes
kill -KILL $wrapper
wait $wrapper
expect 0 hc wait kill-between --zero --timeout 20
same "kill in back-off: count" "$(hc count kill-between)" 0
same "kill in back-off: the last CMD is gone" "$(until_gone "$cmd" && echo yes)" yes
same "kill in back-off: the seat is free" "$(hc run kill-between -- echo free)" free

# SIGKILL of the wrapper while CMD runs: CMD keeps the seat and the record names it (as
# after a plain run's wrapper is killed); when CMD ends, the seat is free.
"$HEADCOUNT" run --restart=always kill-during -- sh -c 'echo "$$" >&3; read _ <"$T/gate"; echo ended >&3' &
wrapper=$!
track $wrapper
next_event
cmd=$event
track "$cmd"
kill -KILL $wrapper
wait $wrapper
same "kill during a run: count" "$(hc count kill-during)" 1
same "kill during a run: the record names CMD" "$(listed kill-during)" "$cmd"
kill -0 "$cmd" 2>/dev/null
same "kill during a run: CMD still runs" $? 0
release 1
next_event
same "kill during a run: CMD ended" "$event" ended
expect 0 hc wait kill-during --zero --timeout 20
same "kill during a run: not restarted" "$(hc count kill-during)" 0

# chaos_settled: nothing holds chaos, or what the record names has said it runs.
chaos_settled() {
        local pid
        pid=$(listed chaos)
        [ -z "$pid" ] || grep -qx "$pid" "$T/chaos" 2>/dev/null
}

# Over and over, the SIGKILL lands wherever it lands in the loop (CMD exits at once):
# afterwards either nothing holds the seat, or a live CMD that the record names does.
for round in $(seq 20); do
        "$HEADCOUNT" run --restart=always --restart-sec 0 chaos -- sh -c 'echo "$$" >>"$T/chaos"' &
        wrapper=$!
        track $wrapper
        for i in $(seq 200); do
                [ -s "$T/chaos" ] && break
                sleep 0.01
        done
        kill -KILL $wrapper
        wait $wrapper 2>/dev/null
        # A CMD that was recorded and let go says its pid once it runs, and one held back
        # at the gate sees the wrapper gone and exits, freeing the seat: wait for either.
        wait_for 60 "chaos $round: the seat is free or its holder has started" chaos_settled
        pid=$(listed chaos)
        if [ -n "$pid" ]; then
                same "chaos $round: the holder is a CMD we started" \
                        "$(grep -qx "$pid" "$T/chaos" && echo yes)" yes
        fi
        expect 0 hc wait chaos --zero --timeout 20
        for pid in $(cat "$T/chaos"); do
                same "chaos $round: CMD $pid is gone" "$(until_gone "$pid" && echo yes)" yes
        done
        rm -f "$T/chaos"
        [ "$failures" -eq 0 ] || break
done

# A command that cannot be run is not run again.
expect 127 hc run --restart=always restart-missing -- "$T/no-such-program"
one_error_line "cannot run '$T/no-such-program': No such file or directory"

# Options that do not go together.
usage_fails "--restart-sec needs --restart" hc run --restart-sec 1 web -- true
usage_fails "invalid --restart value 'sometimes'" hc run --restart=sometimes web -- true
usage_fails "invalid --restart-sec value '-1'" hc run --restart=always --restart-sec -1 web -- true

finish
