#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 'headcount run': exit statuses, full regions, waiting for a seat, tags, the pass-through
# of CMD's arguments, and a wrapper killed with SIGKILL.
. "${srcdir:-.}/tests/cli/lib.sh"
events_open

# CMD's status, and 128 + N when it dies of signal N.
expect 0 hc run web -- true
expect 1 hc run web -- false
expect 42 hc run web -- sh -c 'exit 42'
expect 137 hc run web -- sh -c 'kill -KILL $$'
expect 143 hc run web -- sh -c 'kill -TERM $$'

# Not found and not executable, as a shell says it.
expect 127 hc run web -- "$T/no-such-program" && one_error_line "cannot run '$T/no-such-program': No such file or directory"
expect 127 hc run web -- no-such-program-in-path-xyz
printf 'not a program\n' >"$T/plain"
chmod 0644 "$T/plain"
expect 126 hc run web -- "$T/plain" && one_error_line "cannot run '$T/plain': Permission denied"
expect 126 hc run web -- "$T"
same "count after failed execs" "$(hc count web)" 0

# Everything after '--' belongs to CMD, options included; options may follow NAME.
expect 0 hc run web -- printf '%s\n' -x --max 3 --
same "arguments passed through" "$(tr '\n' ' ' <"$T/out")" "-x --max 3 -- "
expect 0 hc run web --max 2 --tag t -- true
expect 0 hc run --dir "$D" web -- true
expect 0 hc --dir "$D" run web -- true

# CMD holds the seat while it runs and sees itself in 'list' with its tag.
"$HEADCOUNT" run --tag "holder one" web -- sh -c 'echo "$$" >&3; read _ <"$T/gate"' &
holder=$!
track $holder
next_event
cmd_pid=$event
same "count while held" "$(hc count web)" 1
expect 75 hc run web -- true && one_error_line "no free seat in region 'web': held by pid"
expect 75 hc run --quiet web -- true && same "--quiet stderr" "$(cat "$T/err")" ""
expect 3 hc run -E 3 web -- true
expect 0 hc run --conflict-exit-code 0 web -- true
expect 75 hc run --wait=0.2 web -- true && one_error_line "no free seat in region 'web' within the timeout"
expect 0 hc run --max 2 web -- true                     # a second seat is free
expect 0 hc list web
contains "$T/out" "holder one"

# A waiter gets the seat once the holder ends; it needs no polling, just the release.
"$HEADCOUNT" run --wait web -- sh -c 'echo waiter-ran >&3' &
waiter=$!
track $waiter
release 1
wait $holder
same "holder status" $? 0
next_event
same "waiter event" "$event" waiter-ran
wait $waiter
same "waiter status" $? 0
expect 0 hc run --wait=5 web -- true
same "count after all left" "$(hc count web)" 0

# A wrapper killed with SIGKILL: CMD keeps the seat, and 'list' names CMD, not the wrapper.
"$HEADCOUNT" run kill -- sh -c 'echo "$$" >&3; read _ <"$T/gate"; echo cmd-done >&3' &
wrapper=$!
track $wrapper
next_event
cmd_pid=$event
# The wrapper records CMD's pid right after exec; a loaded machine may get here first.
cmd_listed() {
        hc list -rn -o PID kill | grep -qx "$cmd_pid"
}
wait_for 60 "'list' names CMD (pid $cmd_pid)" cmd_listed
kill -KILL $wrapper
wait $wrapper
same "wrapper killed" $? 137
same "count after the wrapper died" "$(hc count kill)" 1
expect 0 hc list -rn -o PID kill
same "pid in list" "$(cat "$T/out")" "$cmd_pid"
expect 75 hc run kill -- true
release 1
next_event
same "cmd went on" "$event" cmd-done
expect 0 hc wait kill --zero --timeout 30
same "count after CMD ended" "$(hc count kill)" 0
expect 0 hc run kill -- true

# Errors other than usage: exit 1 and one line.
expect 1 hc run --dir "$T/missing" web -- true && one_error_line "directory '$T/missing' (from --dir) does not exist"

finish
