#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The shell-script form: 'exec 9<>"$(headcount path NAME)"; headcount join --fd 9 NAME'
# holds a seat for the rest of the script, as 'exec 9>F; flock -n 9' holds a lock. The
# seat is the shell's: 'list' names the script, it goes when the script ends however it
# ends (SIGKILL too), and 'leave --fd' gives it back early.
. "${srcdir:-.}/tests/cli/lib.sh"
events_open

# holder.sh NAME [JOIN OPTIONS...]: takes a seat on fd 9, says "held PID" (its own pid),
# then waits at the gate and exits 0. A failed join ends the script with its status.
cat >"$T/holder.sh" <<'EOF'
name=$1
shift
exec 9<>"$("$HEADCOUNT" path "$name")" || exit 1
"$HEADCOUNT" join --fd 9 "$@" "$name" || exit $?
echo "held $$" >"$T/events"
read -r _ <"$T/gate"
EOF

# A script holds a seat: list names the script's pid and tag, the count is 1.
bash "$T/holder.sh" backup --tag nightly &
holder=$!
track "$holder"
next_event
same "holder's event" "$event" "held $holder"
expect 0 hc count backup && same "count with a script holding" "$(cat "$T/out")" 1
expect 0 hc list -rn -o PID,TAG backup && same "list: the script's pid" "$(cut -d' ' -f1 "$T/out")" "$holder"
same "list: the tag" "$(cut -d' ' -f2 "$T/out")" nightly
same "region files" "$(ls "$D" | grep -c '^backup$')" 1

# A second script finds no seat: 75, and the message names the first.
expect 75 bash "$T/holder.sh" backup
one_error_line "no free seat in region 'backup': held by pid $holder"
expect 3 bash "$T/holder.sh" backup -E 3 --quiet
same "--quiet" "$(cat "$T/err")" ""

# SIGKILL of the script frees the seat: the kernel closes its descriptor.
kill -KILL "$holder"
wait "$holder" 2>/dev/null
expect 0 hc count backup && same "count after SIGKILL of the script" "$(cat "$T/out")" 0
bash "$T/holder.sh" backup &
holder=$!
track "$holder"
next_event
same "a new script takes the freed seat" "$event" "held $holder"

# A script that ends normally gives the seat back too.
release 1
wait "$holder"
same "the script's status" "$?" 0
expect 0 hc count backup && same "count after the script ended" "$(cat "$T/out")" 0

# --max: as many scripts as seats; joining twice on one descriptor keeps one seat.
bash "$T/holder.sh" pool --max 2 &
track $!
next_event
expect 0 bash -c 'exec 9<>"$("$HEADCOUNT" path pool)"
                  "$HEADCOUNT" join --fd 9 --max 2 pool || exit 10
                  "$HEADCOUNT" join --fd 9 --max 2 pool || exit 11
                  "$HEADCOUNT" count pool'
same "two scripts, one joined twice" "$(cat "$T/out")" 2
release 1
expect 0 hc wait pool --zero --timeout 60

# leave --fd gives the seat back early, erasing the record; the script goes on.
cat >"$T/leaver.sh" <<'EOF'
exec 9<>"$("$HEADCOUNT" path early)" || exit 1
"$HEADCOUNT" join --fd 9 early || exit $?
echo "count $("$HEADCOUNT" count early)" >"$T/events"
"$HEADCOUNT" leave --fd 9 early || exit 20
echo "left $("$HEADCOUNT" count early)" >"$T/events"
read -r _ <"$T/gate"
"$HEADCOUNT" leave --fd 9 early 2>"$T/leave2.err"
echo "again $?" >"$T/events"
EOF
bash "$T/leaver.sh" &
leaver=$!
track "$leaver"
next_event && same "count before leave" "$event" "count 1"
next_event && same "count after leave" "$event" "left 0"
expect 0 hc list early && same "list after leave" "$(cat "$T/out")" ""
bash "$T/holder.sh" early &
holder=$!
track "$holder"
next_event
same "another script takes the seat while the leaver lives" "$event" "held $holder"
release 2
next_event && same "leave with no seat" "$event" "again 1"
contains "$T/leave2.err" "headcount: descriptor 9 holds no seat of region 'early'"
wait "$leaver"

# --pid names another holder, one that holds the seat itself (a child with a copy of fd
# 9); the default is the parent. A pid that does not hold it is refused, and the seat
# that join took is given back.
expect 0 bash -c 'exec 9<>"$("$HEADCOUNT" path named)"
                  sleep 1000 &
                  "$HEADCOUNT" join --fd 9 --pid $! named && "$HEADCOUNT" list -rn -o PID named
                  echo "$!"; kill $!'
same "--pid" "$(sed -n 1p "$T/out")" "$(sed -n 2p "$T/out")"
expect 0 bash -c 'exec 9<>"$("$HEADCOUNT" path named)"
                  "$HEADCOUNT" join --fd 9 --pid 1 named
                  echo "status $? count $("$HEADCOUNT" count named)"'
one_error_line "cannot join region 'named': pid 1 does not hold descriptor 9's seat"
same "a refused --pid, while fd 9 is still open" "$(cat "$T/out")" "status 1 count 0"

# A child that the script put in the background keeps the seat after the script ends:
# it holds a copy of fd 9, as with flock(1).
expect 0 bash -c 'set -m
                  exec 9<>"$("$HEADCOUNT" path bg)"
                  "$HEADCOUNT" join --fd 9 bg || exit 1
                  sleep 1000 >/dev/null 2>&1 &
                  echo "sleeper $!" >"$T/events"'
next_event
sleeper=${event#sleeper }
track "$sleeper"
expect 0 hc count bg && same "count after the script, with its background child" "$(cat "$T/out")" 1
kill -KILL "$sleeper"
expect 0 hc wait bg --zero --timeout 60
expect 0 hc count bg && same "count after the background child" "$(cat "$T/out")" 0

# Bad descriptors: one clear line each, status 1, and no seat taken.
expect 1 hc join --fd 8 backup
one_error_line "descriptor 8 is not open: open it first, with exec 8<>\"\$(headcount path backup)\""
expect 1 bash -c '"$HEADCOUNT" join --fd 8 backup 8<>"$T/plain"'
one_error_line "descriptor 8 is not open on the seat file of region 'backup'"
expect 1 bash -c '"$HEADCOUNT" join --fd 8 backup 8</dev/null'
one_error_line "descriptor 8 is not open on the seat file of region 'backup'"
expect 1 bash -c '"$HEADCOUNT" join --fd 8 backup 8<>"$("$HEADCOUNT" path pool)"'
one_error_line "descriptor 8 is not open on the seat file of region 'backup'"
expect 1 bash -c '"$HEADCOUNT" join --fd 8 backup 8<"$("$HEADCOUNT" path backup)"'
one_error_line "descriptor 8 is not open for writing: open it with exec 8<>"
expect 1 bash -c 'f=$("$HEADCOUNT" path gone); "$HEADCOUNT" remove gone
                  "$HEADCOUNT" join --fd 8 gone 8<>"$f"'
one_error_line "descriptor 8 is open on a seat file of region 'gone' that was removed since"
expect 1 hc leave --fd 8 backup
one_error_line "descriptor 8 is not open"
expect 0 hc count backup && same "count after bad descriptors" "$(cat "$T/out")" 0
usage_fails "'join' needs --fd <fd>, the shell's descriptor" hc join backup
usage_fails "'leave' needs --fd <fd>, the shell's descriptor" hc leave backup
usage_fails "--max is at most 32 with 'join --fd' (the seats of one file)" hc join --fd 9 --max 33 backup
usage_fails "invalid --fd value 'x'" hc join --fd x backup
usage_fails "option '--fd' does not apply to 'run'" hc run --fd 9 backup -- true

# path prints the seat file: a data-less file in the scope directory, beside the region.
expect 0 hc path backup
case $(cat "$T/out") in
"$D"/.backup.*.0) same "path: size" "$(stat -c %s "$(cat "$T/out")")" 0 ;;
*) fail "path printed '$(cat "$T/out")'" ;;
esac

finish
