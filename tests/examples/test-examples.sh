#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs the examples unattended and checks what they promise: a second single-instance is
# refused and names the holder, the pool never runs more than its seats, appinst follows
# starts and SIGKILLs, notify-daemon talks to the service manager and runs once.
. "${srcdir:-.}/tests/cli/lib.sh"
events_open
EX=$top_builddir/examples

# single-instance: the second copy is refused with 75 and told who holds the seat.
"$EX/single-instance" demo >&3 &
first=$!
track $first
next_event
same "first copy" "$event" "demo: running as pid $first"
expect 75 "$EX/single-instance" demo
contains "$T/err" "demo: already running as pid $first since "
kill -TERM $first
wait $first
same "first copy stopped" $? 0
next_event
same "first copy says so" "$event" "demo: stopped"
# A copy killed with SIGKILL leaves nothing behind that blocks the next start.
"$EX/single-instance" demo >&3 &
killed=$!
track $killed
next_event
kill -KILL $killed
wait $killed
"$EX/single-instance" demo >&3 &
next=$!
track $next
next_event
same "start after SIGKILL" "$event" "demo: running as pid $next"
kill -TERM $next
wait $next
next_event
same "second copy stopped" "$event" "demo: stopped"

# worker-pool: 8 workers, 2 seats; all work, never more than 2 at once.
expect 0 "$EX/worker-pool" 8 2 60000
contains "$T/out" "8 workers: 8 worked, 0 gave up, 0 failed"
same "seats busy at most" "$(sed -n 's/.*, \([0-9]*\) of 2 seats busy/\1/p' "$T/out" | sort -n | tail -1)" 2
same "worker lines" "$(grep -c 'seats busy' "$T/out")" 8
# With no time to wait, those that find both seats taken give up; each worker does one.
"$EX/worker-pool" 6 1 0 >"$T/out" 2>"$T/err"
checks=$((checks + 1))
grep -Eq '^6 workers: [1-6] worked, [0-5] gave up, 0 failed$' "$T/out" || fail "pool without waiting: $(tail -1 "$T/out")"

# appinst: each copy shows the live count and follows starts and SIGKILLs.
"$EX/appinst" demo-app >&3 &
a=$!
track $a
next_event
same "first appinst" "$event" "pid $a: 1 instance running"
"$EX/appinst" demo-app >&3 &
b=$!
track $b
seen_a= seen_b=
while [ -z "$seen_a" ] || [ -z "$seen_b" ]; do
        next_event
        case $event in
        "pid $a: 2 instances running") seen_a=1 ;;
        "pid $b: 2 instances running") seen_b=1 ;;
        *) fail "unexpected appinst line '$event'" ; break ;;
        esac
done
kill -KILL $b
wait $b
next_event
same "after SIGKILL" "$event" "pid $a: 1 instance running"
kill -TERM $a
wait $a
same "appinst stopped" $? 0

# notify-daemon: READY=1 and STATUS= on $NOTIFY_SOCKET; a second copy is refused. It is
# not built with --disable-daemon (it needs libsystemd).
if [ -x "$EX/notify-daemon" ] && command -v python3 >/dev/null; then
        python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
out = open(3, "w")
print("bound", file=out, flush=True)
while True:
    for line in s.recv(4096).decode().split("\n"):
        print(line, file=out, flush=True)' "$T/notify" &
        track $!
        next_event
        same "listener" "$event" bound
        NOTIFY_SOCKET=$T/notify "$EX/notify-daemon" --watch web 2>"$T/daemon.err" &
        daemon=$!
        track $daemon
        next_event
        same "notify" "$event" "READY=1"
        next_event
        same "status" "$event" "STATUS=0 instances of 'web' running"
        expect 75 "$EX/notify-daemon" --watch web
        contains "$T/err" "already running as pid $daemon"
        "$HEADCOUNT" run web -- sh -c 'read _ <"$T/gate"' &
        track $!
        next_event
        same "status after a start" "$event" "STATUS=1 instance of 'web' running"
        release 1
        next_event
        same "status after the end" "$event" "STATUS=0 instances of 'web' running"
        kill -TERM $daemon
        next_event
        same "stopping" "$event" "STOPPING=1"
        wait $daemon
        same "daemon status" $? 0
fi

finish
