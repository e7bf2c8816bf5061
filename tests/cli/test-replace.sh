#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 'headcount run --replace': the holder that blocks us is stopped (SIGTERM, then SIGKILL
# after --kill-after) and we take its seat; a free seat stops nobody; with --max N only
# the longest-running holder goes; records we cannot trust are refused; and launches that
# race each other end with exactly one running, round after round.
. "${srcdir:-.}/tests/cli/lib.sh"
events_open

# holder_of NAME SLOT: waits until 'list' names the holder of seat SLOT, prints its pid.
holder_of() {
        local dir=${HOLDER_DIR:-$D}
        local i pid
        for i in $(seq 400); do
                pid=$(hc --dir "$dir" list "$1" 2>/dev/null | awk -v s="$2" '$1 == s { print $2 }')
                case $pid in
                [0-9]*) echo "$pid"; return 0 ;;
                esac
                sleep 0.05
        done
        return 1
}

# Nothing runs: --replace just runs, with CMD's status.
expect 0 hc run --replace solo -- true
expect 3 hc run --replace solo -- sh -c 'exit 3'
same "count after" "$(hc count solo)" 0

# A holder is stopped with SIGTERM; the newcomer gets its seat and sees itself listed.
"$HEADCOUNT" run web -- sh -c 'echo "$$" >&3; read _ <"$T/gate"' &
old=$!
track $old
next_event
old_cmd=$event
same "old holder listed" "$(holder_of web 0)" "$old_cmd"
expect 0 hc run --replace web -- sh -c 'hc_list=$("$HEADCOUNT" list -rn -o PID web); echo "$$ $hc_list"'
read -r me listed <"$T/out"
same "the newcomer holds the seat" "$listed" "$me"
wait $old
same "old wrapper status (SIGTERM)" $? 143
same "count after the replacement ended" "$(hc count web)" 0

# A holder that ignores SIGTERM is killed after --kill-after.
"$HEADCOUNT" run stubborn -- sh -c 'trap "" TERM; echo "$$" >&3; while :; do read _ <"$T/gate"; done' &
old=$!
track $old
next_event
same "stubborn holder listed" "$(holder_of stubborn 0)" "$event"
expect 0 hc run --replace --kill-after 0.2 stubborn -- true
wait $old
same "stubborn wrapper status (SIGKILL)" $? 137

# --max 2: a free seat stops nobody; when both are held, the longest-running goes.
"$HEADCOUNT" run --max 2 pair -- sh -c 'echo "$$" >&3; read _ <"$T/gate"' &
first=$!
track $first
next_event
first_cmd=$event
same "first of the pair listed" "$(holder_of pair 0)" "$first_cmd"
"$HEADCOUNT" run --max 2 --replace pair -- sh -c 'echo "$$" >&3; read _ <"$T/gate"' &
second=$!
track $second
next_event
second_cmd=$event
track "$second_cmd"
same "second of the pair listed" "$(holder_of pair 1)" "$second_cmd"
same "nobody stopped for a free seat" "$(hc count pair)" 2
kill -0 $first 2>/dev/null
same "the first still runs" $? 0
expect 0 hc run --max 2 --replace pair -- sh -c '"$HEADCOUNT" list -rn -o PID pair | sort -n | tr "\n" " "'
wait $first
same "the longest-running was stopped" $? 143
kill -0 $second 2>/dev/null
same "the other one still runs" $? 0
release 1
wait $second
same "the other one ends on its own" $? 0

# A --restart holder is stopped for good: its loop ends.
"$HEADCOUNT" run --restart=always loop -- sh -c 'echo "$$" >&3; read _ <"$T/gate"' &
looper=$!
track $looper
next_event
track "$event"
same "restarting holder listed" "$(holder_of loop 0)" "$event"
expect 0 hc run --replace loop -- true
wait $looper
same "restart wrapper status" $? 143
same "count after the loop" "$(hc count loop)" 0

# A holder in another PID namespace is refused, and nothing is signalled.
if unshare --pid --fork true 2>/dev/null; then
        unshare --pid --fork "$HEADCOUNT" run ns -- sh -c 'echo "$$" >&3; read _ <"$T/gate"' &
        ns=$!
        track $ns
        next_event
        holder_of ns 0 >/dev/null
        expect 1 hc run --replace ns -- true &&
                one_error_line "cannot replace pid $event in region 'ns': it is not a process of this PID namespace"
        kill -0 $ns 2>/dev/null
        same "the other namespace's holder still runs" $? 0
        release 1
        wait $ns
else
        echo "(no PID namespace here: its refusal is not checked)"
fi

# A record that another user may have written (a region others may write) is refused:
# its pid is a claim. As root, with a throwaway user as the newcomer.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1 &&
   setpriv --reuid=nobody --regid=nogroup --clear-groups "$HEADCOUNT" --help >/dev/null 2>&1; then
        S=$(mktemp -d "${TMPDIR:-/tmp}/headcount-replace.XXXXXX")
        chmod 1777 "$S"
        "$HEADCOUNT" --dir "$S" create claim --mode 0666
        "$HEADCOUNT" --dir "$S" run claim -- sh -c 'echo "$$" >&3; read _ <"$T/gate"' &
        rootholder=$!
        track $rootholder
        next_event
        HOLDER_DIR=$S holder_of claim 0 >/dev/null
        expect 1 setpriv --reuid=nobody --regid=nogroup --clear-groups \
                "$HEADCOUNT" --dir "$S" run --replace claim -- true &&
                one_error_line "cannot replace pid $event in region 'claim': the record is unverified"
        kill -0 $rootholder 2>/dev/null
        same "root's holder still runs" $? 0
        release 1
        wait $rootholder
        rm -rf "$S"
else
        echo "(not root, no throwaway user, or one that cannot run this build tree, as in a package build's private directory: the refusal of an unverified record is not checked)"
fi

# Options that do not go together.
usage_fails "--replace and --wait exclude each other" hc run --replace --wait web -- true
usage_fails "--kill-after needs --replace or the fleet scope" hc run --kill-after 1 web -- true
usage_fails "invalid --kill-after value 'x'" hc run --replace --kill-after x web -- true

# Two --replace launches at once, against a running holder, over and over: the old one
# is stopped and exactly one of the two runs afterwards (the other was stopped in turn).
for round in $(seq 20); do
        "$HEADCOUNT" run race -- sleep 600 &
        old=$!
        track $old
        holder_of race 0 >/dev/null
        "$HEADCOUNT" run --replace race -- sleep 600 &
        a=$!
        track $a
        "$HEADCOUNT" run --replace race -- sleep 600 &
        b=$!
        track $b
        # the first of the two to end is the loser (bounded: two that both run would hang)
        loser=
        for i in $(seq 1200); do
                if ! kill -0 $a 2>/dev/null; then loser=$a survivor=$b; break; fi
                if ! kill -0 $b 2>/dev/null; then loser=$b survivor=$a; break; fi
                sleep 0.05
        done
        if [ -z "$loser" ]; then
                fail "round $round: both --replace launches still run after 60 s"
                break
        fi
        wait $loser
        st=$?
        same "round $round: the loser was stopped" $st 143
        # the survivor's CMD is the holder: its record names a child of the survivor
        winner=
        for i in $(seq 400); do
                pid=$(hc list -rn -o PID race)
                if [ -n "$pid" ] && [ "$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$survivor" ]; then
                        winner=$pid
                        break
                fi
                sleep 0.05
        done
        same "round $round: the survivor holds the seat" "${winner:+yes}" yes
        same "round $round: count" "$(hc count race)" 1
        kill -0 $survivor 2>/dev/null
        same "round $round: the survivor runs" $? 0
        wait $old
        same "round $round: the old holder was stopped" $? 143
        kill -TERM $survivor
        wait $survivor
        same "round $round: the survivor ends on SIGTERM" $? 143
        same "round $round: count at the end" "$(hc count race)" 0
        [ "$failures" -eq 0 ] || break
done

finish
