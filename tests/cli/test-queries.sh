#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# count, list, names, wait, create, remove; the scope options before and after the
# command; errors that are not usage errors (exit 1, one line); output errors.
. "${srcdir:-.}/tests/cli/lib.sh"
events_open

# A region that does not exist has nobody in it.
expect 0 hc count web && same "count of a new name" "$(cat "$T/out")" 0
expect 0 hc list web && same "list of a new name" "$(cat "$T/out")" ""
expect 0 hc names && same "names of an empty scope" "$(cat "$T/out")" ""
expect 1 hc --dir "$T/nowhere" names && one_error_line "directory '$T/nowhere' (from --dir) does not exist"
expect 0 hc wait web --zero

# Scope options before and after the command, and $HEADCOUNT_DIR.
mkdir -m 0700 "$T/other"
"$HEADCOUNT" --dir "$T/other" run --max 2 web -- sh -c 'echo up >&3; read _ <"$T/gate"' &
track $!
next_event
"$HEADCOUNT" run --dir "$T/other" --max 2 --tag second web -- sh -c 'echo up >&3; read _ <"$T/gate"' &
track $!
next_event
expect 0 hc --dir "$T/other" count web && same "--dir before" "$(cat "$T/out")" 2
expect 0 hc count --dir "$T/other" web && same "--dir after" "$(cat "$T/out")" 2
expect 0 hc count web --dir "$T/other" && same "--dir last" "$(cat "$T/out")" 2
expect 0 env HEADCOUNT_DIR="$T/other" "$HEADCOUNT" count web && same "HEADCOUNT_DIR" "$(cat "$T/out")" 2
expect 0 hc count web && same "the other scope" "$(cat "$T/out")" 0
expect 0 hc --dir "$D" --user count web && same "--user after --dir" "$(cat "$T/out")" 0

# list: a header, then one line per seat in seat order, in the default columns.
expect 0 hc --dir "$T/other" list web
same "list lines" "$(wc -l <"$T/out")" 3
same "list header" "$(head -1 "$T/out" | tr -s ' ')" "SEAT PID USER COMMAND JOINED TAG"
same "seat 1's command and tag" "$(sed -n 3p "$T/out" | awk '{ print $4, $7 }')" "sh second"
# the columns that -o names, in its order and any case; raw: one space between them
expect 0 hc --dir "$T/other" list -rn -o seat,UID,Seq,TAG,FLAGS web
same "-o lines" "$(wc -l <"$T/out")" 2
same "slots" "$(cut -d ' ' -f1 "$T/out" | tr '\n' ' ')" "0 1 "
same "uids" "$(cut -d ' ' -f2 "$T/out" | sort -u)" "$(id -u)"
same "tag of seat 1" "$(sed -n 2p "$T/out" | cut -d ' ' -f4)" second
same "no flags" "$(cut -d ' ' -f5 "$T/out" | tr '\n' ' ')" "  "
seq0=$(sed -n 1p "$T/out" | cut -d ' ' -f3)
seq1=$(sed -n 2p "$T/out" | cut -d ' ' -f3)
checks=$((checks + 1))
[ "$seq0" -lt "$seq1" ] || fail "later join has a smaller seq: $seq0 $seq1"
expect 0 hc --dir "$T/other" list -o PID web
same "-o PID, with its header" "$(head -1 "$T/out" | tr -d ' ')" PID
expect 0 hc --dir "$T/other" list -o +SEQ,AGE web
same "-o +: the defaults, then SEQ and AGE" "$(head -1 "$T/out" | tr -s ' ')" \
        "SEAT PID USER COMMAND JOINED TAG SEQ AGE"
same "-o +: the values" "$(sed -n 3p "$T/out" | awk '{ print NF }')" 9
expect 0 hc --dir "$T/other" list --output-all web
same "--output-all" "$(head -1 "$T/out" | tr -s ' ')" \
        "SEAT PID UID USER COMMAND JOINED AGE SEQ TAG FLAGS"
expect 0 hc --dir "$T/other" list -rn -o USER,COMMAND web
same "USER and COMMAND" "$(sed -n 1p "$T/out")" "$(id -un) sh"

# --time-format: local time by default, iso with the offset, relative, raw microseconds.
expect 0 hc --dir "$T/other" list -rn -o JOINED --time-format raw web
raw=$(sed -n 1p "$T/out")
checks=$((checks + 1))
[ "${#raw}" -ge 16 ] && [ "$((raw / 1000000))" -le "$(date +%s)" ] ||
        fail "raw time is no microseconds since the epoch: '$raw'"
secs=$((raw / 1000000))
expect 0 env TZ=UTC0 "$HEADCOUNT" --dir "$T/other" list -n -o JOINED web
same "local time (UTC)" "$(sed -n 1p "$T/out")" "$(TZ=UTC0 date -d "@$secs" '+%Y-%m-%d %H:%M:%S')"
expect 0 env TZ=IST-5:30 "$HEADCOUNT" --dir "$T/other" list -n -o JOINED --time-format iso web
same "iso time" "$(sed -n 1p "$T/out")" "$(TZ=IST-5:30 date -d "@$secs" '+%Y-%m-%dT%H:%M:%S+05:30')"
expect 0 hc --dir "$T/other" list -n -o JOINED --time-format relative web
checks=$((checks + 1))
grep -Eqx '[0-9]+(s|m[0-9]{2}s|h[0-9]{2}m|d[0-9]{2}h) ago' <(sed -n 1p "$T/out") ||
        fail "relative time: $(cat "$T/out")"

# names: a header, then one line per region with its count and capacity.
expect 0 hc create idle --capacity 3 --dir "$T/other"
expect 0 hc names --dir "$T/other"
same "names" "$(tr -s ' ' <"$T/out")" "$(printf 'NAME COUNT CAPACITY\nidle 0 3\nweb 2 64')"
expect 0 hc names -rn -o count,NAME --dir "$T/other"
same "names -rn -o" "$(cat "$T/out")" "$(printf '0 idle\n2 web')"

# wait: 0 when met, 124 on timeout; it wakes when a holder ends.
expect 124 hc --dir "$T/other" wait web --below 2 --timeout 0.1
expect 124 hc --dir "$T/other" wait web --zero --timeout 0
expect 0 hc --dir "$T/other" wait web --below 3 --timeout 0
"$HEADCOUNT" --dir "$T/other" wait web --below 2 && echo "wait-done $?" >&3 &
track $!
release 1
next_event
same "wait woke" "$event" "wait-done 0"

# remove refuses a region in use, removes an empty one, and fails on a missing one.
expect 1 hc --dir "$T/other" remove web && one_error_line "cannot remove region 'web': Device or resource busy"
release 1
expect 0 hc --dir "$T/other" wait web --zero --timeout 60
expect 0 hc --dir "$T/other" remove web
expect 1 hc --dir "$T/other" remove web && one_error_line "cannot remove region 'web': No such file or directory"
expect 0 hc --dir "$T/other" names -n -r && same "names after remove" "$(cat "$T/out")" "idle 0 3"

# create: mode and capacity; the capacity caps every caller's --max.
expect 0 hc create small --capacity 1 --mode 0600 --data-size 128
same "mode of a created region" "$(stat -c %a "$D/small")" 600
expect 0 hc create small            # it exists: fine, left as it is
"$HEADCOUNT" run --max 5 small -- sh -c 'echo up >&3; read _ <"$T/gate"' &
track $!
next_event
expect 75 hc run --max 5 small -- true
release 1
expect 0 hc wait small --zero --timeout 60

# What needs another user than root runs as nobody, when root can switch to it.
as_nobody=
if [ "$(id -u)" = 0 ] && setpriv --reuid=nobody --regid=nogroup --clear-groups true 2>/dev/null &&
   setpriv --reuid=nobody --regid=nogroup --clear-groups "$HEADCOUNT" --version >/dev/null 2>&1; then
        as_nobody="setpriv --reuid=nobody --regid=nogroup --clear-groups"
fi

# create: a mode that lets group or others write is for the system scope only (a user's
# region that others may write would not be trusted), unless root creates it.
shared_fails() {         # MODE NAME SHOWN-AS COMMAND...
        local mode=$1 name=$2 shown=$3
        shift 3
        expect 1 "$@" create "$name" --mode "$mode" &&
                one_error_line "cannot create region '$shown': mode $mode (writable by group or others) is only allowed in the system scope"
}
if [ -n "$as_nobody" ]; then
        mkdir -m 0700 "$T/nobody"
        chown nobody "$T/nobody"
        chmod 0711 "$T"
        user_dir=$T/nobody
elif [ "$(id -u)" != 0 ]; then
        mkdir -m 0700 "$T/mine"
        user_dir=$T/mine
fi
if [ -n "${user_dir:-}" ]; then
        shared_fails 0666 shared shared $as_nobody "$HEADCOUNT" --dir "$user_dir"
        shared_fails 0620 shared shared $as_nobody "$HEADCOUNT" --dir "$user_dir"
        shared_fails 0602 shared shared $as_nobody env HEADCOUNT_DIR="$user_dir" "$HEADCOUNT"
        shared_fails 0666 shared shared $as_nobody "$HEADCOUNT" --system --dir "$user_dir"
        shared_fails 0666 'Local\shared' 'Local\\shared' \
                $as_nobody env HEADCOUNT_DIR="$user_dir" "$HEADCOUNT" --system
        same "regions created with such modes" "$(ls -A "$user_dir")" ""
        expect 0 $as_nobody "$HEADCOUNT" --dir "$user_dir" create shared --mode 0644
        same "a mode without group or other write" "$(stat -c %a "$user_dir/shared")" 644
        chmod 0700 "$T"
fi
if [ "$(id -u)" = 0 ]; then
        expect 0 hc create rootshared --mode 0666
        same "root's region with write for all" "$(stat -c %a "$D/rootshared")" 666
fi

# Errors that are not usage errors: exit 1 with one line naming the cause.
touch "$T/file"
expect 1 hc --dir "$T/file" count web && one_error_line "cannot count region 'web': Not a directory"
expect 1 hc --dir "$T/file" run web -- true && one_error_line "cannot join region 'web': Not a directory"
expect 1 hc --dir "$T/file" names && one_error_line "cannot list regions in '$T/file': Not a directory"
mkdir -m 0777 "$T/open"     # writable by all and not sticky: anyone could swap regions
expect 1 hc --dir "$T/open" run web -- true && one_error_line "cannot join region 'web': Operation not permitted"
expect 1 hc --dir "$T/open" create web && one_error_line "cannot create region 'web': Operation not permitted"
if [ -n "$as_nobody" ]; then
        # an unreadable directory, as somebody who may not read it
        mkdir -m 0700 "$T/private"
        chmod 0711 "$T"
        expect 1 $as_nobody "$HEADCOUNT" --dir "$T/private" run web -- true &&
                one_error_line "cannot join region 'web': Permission denied"
        expect 1 $as_nobody "$HEADCOUNT" --dir "$T/private" names &&
                one_error_line "cannot list regions in '$T/private': Permission denied"
        chmod 0700 "$T"
elif [ "$(id -u)" != 0 ]; then
        mkdir -m 0000 "$T/private"
        expect 1 hc --dir "$T/private" run web -- true && one_error_line "cannot join region 'web': Permission denied"
        chmod 0700 "$T/private"
fi
printf 'not a region' >"$D/junk"
chmod 0600 "$D/junk"
expect 1 hc count junk && one_error_line "cannot count region 'junk': '$D/junk' is not a headcount region"
expect 1 hc list junk && one_error_line "cannot list region 'junk': '$D/junk' is not a headcount region"
# 'names' skips a file that is no region, with one warning, and lists the others
: >"$D/empty"
expect 0 hc names
contains "$T/err" "warning: 'empty' is not a headcount region"
contains "$T/err" "warning: 'junk' is not a headcount region"
checks=$((checks + 1))
grep -q '^junk' "$T/out" && fail "'names' listed a file that is no region"
rm -f "$D/empty"

# Output errors are errors.
"$HEADCOUNT" run out -- sh -c 'echo up >&3; read _ <"$T/gate"' &
track $!
next_event
expect 1 sh -c "'$HEADCOUNT' list --json out >/dev/full"
expect 1 sh -c "'$HEADCOUNT' list out >/dev/full" && one_error_line "write error: No space left on device"
expect 1 sh -c "'$HEADCOUNT' count out >/dev/full"
expect 1 sh -c "'$HEADCOUNT' names >/dev/full"
expect 1 sh -c "'$HEADCOUNT' --help >/dev/full"
release 1

finish
