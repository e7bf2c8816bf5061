#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs editor and appinst-section unattended and checks what they promise: a second
# editor hands its files to the first and prints its reply, also after the first was
# killed; appinst-section's copies share one count that stays right after a SIGKILL.
. "${srcdir:-.}/tests/cli/lib.sh"
events_open
EX=$top_builddir/examples
export EDITOR_NAME=ed

# editor: the first copy listens; a second launch forwards its files and prints the reply.
"$EX/editor" first.txt >&3 &
ed=$!
track $ed
next_event
same "first editor" "$event" "editor: pid $ed listening"
next_event
same "its own file" "$event" "editor: open $PWD/first.txt (from pid $ed)"
expect 0 "$EX/editor" notes.txt /etc/motd
same "reply" "$(cat "$T/out")" "editor $ed opened 2 files"
next_event
case $event in
"editor: open $PWD/notes.txt (from pid "*) checks=$((checks + 1)) ;;
*) fail "forwarded file: '$event'" ;;
esac
next_event
case $event in
"editor: open /etc/motd (from pid "*) checks=$((checks + 1)) ;;
*) fail "forwarded absolute file: '$event'" ;;
esac
expect 0 "$EX/editor"
same "no files" "$(cat "$T/out")" "editor $ed opened 0 files"

# headcount send: the words go to the primary, its reply comes back on stdout.
expect 0 "$HEADCOUNT" send ed hello world
same "send: the primary's reply" "$(cat "$T/out")" "editor $ed: not a list of files"
expect 0 "$HEADCOUNT" send --timeout 5 ed -- --not-an-option
same "send: words after -- are the message" "$(cat "$T/out")" "editor $ed: not a list of files"
expect 64 "$HEADCOUNT" send ed
expect 64 "$HEADCOUNT" send --timeout x ed hi

# Killed: its socket stays behind, stale; the next launch becomes the editor anyway.
kill -KILL $ed
wait $ed 2>/dev/null
expect 69 "$HEADCOUNT" send ed anyone
contains "$T/err" "no primary listens on region 'ed'"
"$EX/editor" >&3 &
ed2=$!
track $ed2
next_event
same "editor after SIGKILL" "$event" "editor: pid $ed2 listening"
expect 0 "$EX/editor" again.txt
same "reply from the new editor" "$(cat "$T/out")" "editor $ed2 opened 1 file"
next_event
kill -TERM $ed2
wait $ed2
same "editor stopped" $? 0
next_event
same "stopping" "$event" "editor: stopped"

# A seat holder that never listens: a launch gives up with 69 (no primary listens).
"$HEADCOUNT" run --max 1 ed -- sh -c 'echo held >&3; read _ <"$T/gate"' &
track $!
next_event
same "seat held" "$event" held
expect 69 "$EX/editor" lost.txt
contains "$T/err" "editor: cannot reach the running editor"
expect 69 "$HEADCOUNT" send ed hi
release 1

# appinst-section: one shared count and last starter, right after a SIGKILL.
"$EX/appinst-section" app >&3 &
a=$!
track $a
next_event
same "first appinst" "$event" "pid $a: 1 instance running, last started by pid $a"
"$EX/appinst-section" app >&3 &
b=$!
track $b
seen_a= seen_b=
while [ -z "$seen_a" ] || [ -z "$seen_b" ]; do
        next_event
        case $event in
        "pid $a: 2 instances running, last started by pid $b") seen_a=1 ;;
        "pid $b: 2 instances running, last started by pid $b") seen_b=1 ;;
        *) fail "unexpected appinst-section line '$event'" ; break ;;
        esac
done
kill -KILL $b
wait $b 2>/dev/null
next_event
same "stale count noticed" "$event" "pid $a: the shared count said 2: a copy was killed"
next_event
same "after SIGKILL" "$event" "pid $a: 1 instance running, last started by pid $b"
kill -TERM $a
wait $a
same "appinst-section stopped" $? 0
finish
