#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Hostile local users and hostile bytes, through the command line: modes others could write,
# the descriptors 'run' hands to its command, closed standard descriptors, the primary's
# order under a shifted clock, holders in other PID namespaces, and terminal escapes in
# tags and in words echoed in error messages.
# Parts that need other users or namespaces run only as root; they say SKIP otherwise.
. "${srcdir:-.}/tests/cli/lib.sh"
events_open

root=false
[ "$(id -u)" -eq 0 ] && root=true
user=
user_uid=
user_gid=
shared=

hostile_cleanup() {
        if [ -n "$user" ]; then
                rm -rf "/dev/shm/headcount-$user_uid"
                userdel -f -r "$user" >/dev/null 2>&1
        fi
        [ -n "$shared" ] && rm -rf "$shared"
        cleanup
}
trap hostile_cleanup EXIT

skip() {
        echo "SKIP: $*" >&2
}

# A throwaway user (root only).
if $root; then
        user=hcs$$
        userdel -f -r "$user" >/dev/null 2>&1
        if useradd -M -N "$user" >/dev/null 2>&1; then
                user_uid=$(id -u "$user")
                user_gid=$(id -g "$user")
        else
                skip "cannot create a test user"
                user=
        fi
fi

# as_user CMD...: runs CMD as the throwaway user, in the default user scope.
as_user() {
        setpriv --reuid="$user_uid" --regid="$user_gid" --clear-groups \
                env -u XDG_RUNTIME_DIR -u HEADCOUNT_DIR "$@"
}

# The build tree may sit where another user cannot reach it (a package build's private
# directory): then the checks as that user cannot run here, and say so.
if [ -n "$user" ] && ! as_user "$HEADCOUNT" --help >/dev/null 2>&1; then
        skip "the test user cannot run $HEADCOUNT from this build tree"
        userdel -f -r "$user" >/dev/null 2>&1
        user=
fi

# no_raw WHAT FILE: FILE holds no ESC and no C1 control (U+0080..U+009F) in UTF-8.
no_raw() {
        local hex
        checks=$((checks + 1))
        hex=" $(od -An -tx1 -v "$2" | tr -s ' \n' '  ')"
        case "$hex" in
        *" 1b "* | *" c2 8"[0-9a-f]" "* | *" c2 9"[0-9a-f]" "*)
                fail "$1: raw terminal control bytes in the output:$(echo "$hex" | head -c 300)"
                return 1 ;;
        esac
        return 0
}

# ---- Modes others could write, outside the system scope --------------------------------
if [ -n "$user" ]; then
        shared=$(mktemp -d "${TMPDIR:-/tmp}/headcount-hostile.XXXXXX")
        chmod 0755 "$shared"
        mkdir -m 0700 "$shared/own"
        chown "$user_uid:$user_gid" "$shared/own"
        for mode in 0666 0620; do
                expect 1 as_user "$HEADCOUNT" create "web$mode" --mode "$mode" &&
                        same "stderr lines of 'create --mode $mode'" "$(wc -l <"$T/err")" 1 &&
                        same "stdout of 'create --mode $mode'" "$(cat "$T/out")" ""
                same "files after 'create --mode $mode' (user scope)" \
                        "$(ls -A "/dev/shm/headcount-$user_uid" 2>/dev/null)" ""
                expect 1 as_user "$HEADCOUNT" --dir "$shared/own" create "web$mode" \
                        --mode "$mode" &&
                        same "stderr lines of 'create --mode $mode --dir'" "$(wc -l <"$T/err")" 1
                same "files after 'create --mode $mode' (own --dir)" "$(ls -A "$shared/own")" ""
        done
elif ! $root; then
        for mode in 0666 0620; do
                expect 1 hc create "web$mode" --mode "$mode" &&
                        same "stderr lines of 'create --mode $mode'" "$(wc -l <"$T/err")" 1
                same "files after 'create --mode $mode'" "$(ls -A "$D")" ""
        done
else
        skip "modes others could write: no test user"
fi

# ---- The descriptors 'run' hands to its command are not the region file ----------------
list_fds='for f in /proc/$$/fd/*; do
        n=${f##*/}
        [ "$n" -ge 3 ] 2>/dev/null || continue
        id=$(stat -L -c %d:%i "$f" 2>/dev/null) || continue
        echo "$n $id $(readlink "$f")"
done'
expect 0 hc run fds -- sh -c "$list_fds" 3>&- 4>&-
region=$(stat -c %d:%i "$D/fds")
checks=$((checks + 1))
if grep -q " $region " "$T/out"; then
        fail "the command inherited the region file: $(grep " $region " "$T/out")"
fi
expect 0 hc run --max 3 fds -- sh -c "$list_fds" 3>&- 4>&-
checks=$((checks + 1))
if grep -q " $region " "$T/out"; then
        fail "the command inherited the region file (existing region): $(grep " $region " "$T/out")"
fi

# ---- Closed standard descriptors -------------------------------------------------------
# In a directory of their own: a region damaged here must not spoil the checks below.
S=$T/stdio
mkdir -m 0700 "$S"
# stdout closed: whatever the command writes to fd 1 goes nowhere near the region.
for name in out-new out-old; do
        [ "$name" = out-old ] && hc --dir "$S" create "$name" >/dev/null
        "$HEADCOUNT" --dir "$S" run "$name" -- sh -c 'echo hi; echo hi >&1' >&- 2>"$T/err"
        expect 0 hc --dir "$S" count "$name" &&
                same "count after a run with stdout closed ($name)" "$(cat "$T/out")" 0
        expect 0 hc --dir "$S" list "$name"
        expect 0 hc --dir "$S" run "$name" -- true
done
# stderr closed, likewise.
"$HEADCOUNT" --dir "$S" run err-new -- sh -c 'echo oops >&2' 2>&-
expect 0 hc --dir "$S" count err-new &&
        same "count after a run with stderr closed" "$(cat "$T/out")" 0
expect 0 hc --dir "$S" list err-new
# stdin closed: the command reads end-of-file, not the region's bytes.
for name in in-new in-old; do
        [ "$name" = in-old ] && hc --dir "$S" create "$name" >/dev/null
        "$HEADCOUNT" --dir "$S" run "$name" -- sh -c 'cat; echo "rc=$?"' <&- >"$T/in.out" 2>"$T/err"
        checks=$((checks + 1))
        if [ "$(head -c 4096 "$T/in.out" | od -An -c | tr -s ' \n' ' ')" != " r c = 0 \n " ]; then
                fail "the command with stdin closed ($name) read:" \
                        "$(head -c 200 "$T/in.out" | od -An -c | head -3)"
        fi
        expect 0 hc --dir "$S" count "$name" &&
                same "count after a run with stdin closed ($name)" "$(cat "$T/out")" 0
done

# ---- The primary's order does not follow a clock ---------------------------------------
# B joins after A, from a time namespace whose CLOCK_MONOTONIC is far behind ours.
uptime_s=$(awk '{ print int($1) }' /proc/uptime)
if ! $root; then
        skip "primary order under a time namespace: needs root"
elif [ "$uptime_s" -lt 20 ] ||
     ! unshare --time --monotonic=-$((uptime_s - 10)) true 2>/dev/null; then
        skip "primary order under a time namespace: no time namespaces here"
else
        "$HEADCOUNT" run --max 2 prim -- sh -c 'echo "$$" >&3; read _ <"$T/gate"' &
        track $!
        next_event
        a=$event
        unshare --time --monotonic=-$((uptime_s - 10)) \
                "$HEADCOUNT" run --max 2 prim -- sh -c 'echo "$$" >&3; read _ <"$T/gate"' &
        track $!
        next_event
        b=$event
        expect 0 hc list -rn -o SEQ,PID prim
        first=$(sort -k1,1n "$T/out" | head -n 1 | cut -d ' ' -f 2)
        same "the earliest join (lowest seq) of A=$a and B=$b" "$first" "$a"
        release 2
        wait
fi

# ---- Holders in another PID namespace --------------------------------------------------
if ! $root; then
        skip "holders in another PID namespace: needs root"
elif ! unshare --pid --fork true 2>/dev/null; then
        skip "holders in another PID namespace: no PID namespaces here"
else
        unshare --pid --fork "$HEADCOUNT" run ns -- sh -c 'echo "$$" >&3; read _ <"$T/gate"' &
        track $!
        next_event
        expect 0 hc list -rn -o PID ns
        checks=$((checks + 1))
        # the PID column marks a pid of another namespace with '*' (headcount(1), list)
        grep -Eqx '[0-9]+\*' "$T/out" ||
                fail "'list' does not mark the holder's pid as one of another PID namespace: $(cat "$T/out")"
        expect 75 hc run ns -- true
        contains "$T/err" "held by"
        checks=$((checks + 1))
        grep -qi namespace "$T/err" ||
                fail "'run' does not say the holder is in another PID namespace: $(cat "$T/err")"
        release 1
        wait
fi

# ---- Terminal escapes in tags ----------------------------------------------------------
for tag in "$(printf 'a\302\233b')" "$(printf 'a\302\2352;title\302\234b')" \
           "$(printf 'a\302\234b')" "$(printf 'a\033[31mb')" "$(printf 'a\033]0;title\007b')"; do
        "$HEADCOUNT" run --tag "$tag" tagged -- sh -c 'echo "$$" >&3; read _ <"$T/gate"' &
        track $!
        next_event
        for form in "" -r -n --output-all; do
                expect 0 hc list $form tagged &&
                        no_raw "list $form with the tag $(printf '%q' "$tag")" "$T/out"
                no_raw "list $form's stderr" "$T/err"
        done
        expect 0 hc list --json tagged &&
                no_raw "list --json with the tag $(printf '%q' "$tag")" "$T/out"
        no_raw "list --json's stderr" "$T/err"
        expect 75 hc run tagged -- true && no_raw "run's 'held by' message" "$T/err"
        expect 0 hc names && no_raw "names" "$T/out"
        release 1
        wait
done

# ---- Terminal escapes in words echoed in error messages --------------------------------
esc_word=$(printf 'x\033[2J\033]0;t\007\302\233y')
expect 64 hc "$esc_word" web && no_raw "unknown command" "$T/err"
expect 64 hc count "$esc_word" && no_raw "invalid name" "$T/err"
expect 64 hc run "$esc_word" -- true && no_raw "invalid name for run" "$T/err"
expect 64 hc run --max "$esc_word" web -- true && no_raw "invalid --max" "$T/err"
expect 64 hc wait web --below "$esc_word" && no_raw "invalid --below" "$T/err"
expect 64 hc "--$esc_word" count web && no_raw "unrecognized option" "$T/err"
expect 64 hc count web "$esc_word" && no_raw "unexpected argument" "$T/err"
expect 64 hc run web "$esc_word" && no_raw "missing --" "$T/err"
expect 127 hc run web -- "$esc_word" && no_raw "cannot run" "$T/err"
"$HEADCOUNT" --dir "/nonexistent/$esc_word" create web >"$T/out" 2>"$T/err"
no_raw "create in a missing --dir" "$T/err"

finish
