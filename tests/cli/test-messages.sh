#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Messages that say what to do: the characters a name may have, the --data-size limit, a
# region that another user owns, a file that is no region, a directory that does not
# exist; and who keeps a seat when the command that 'run' started leaves a child behind.
. "${srcdir:-.}/tests/cli/lib.sh"
events_open

# says TEXT: one line on stderr, which contains TEXT.
says() {
        same "stderr lines" "$(wc -l <"$T/err")" 1
        contains "$T/err" "$1"
}

# Bad names and sizes name the rule.
usage_fails "invalid name 'bad/name': a name is 1 to 200 of the characters A-Z a-z 0-9 . _ - and does not start with '.'" \
        hc count bad/name
usage_fails "invalid --data-size value '1073741825': at most 1073741824 bytes (1 GiB)" \
        hc create big --data-size 1073741825
expect 0 hc create big --data-size 1073741824
same "regions after the sizes" "$(ls "$D")" big
hc remove big

# A file that is no region: an empty one (touch, flock(1)) and another program's.
touch "$D/stale"
printf 'not a region\n' >"$D/notes"
for cmd in "count stale" "run stale -- true" "create stale" "wait --zero stale" \
           "path stale" "list stale"; do
        expect 1 hc $cmd &&
                says "'$D/stale' is an empty file (touch(1) and flock(1) leave such files), not a headcount region; remove it with 'rm $D/stale' when nothing uses it, or use another name"
done
expect 1 bash -c 'exec 9<>"$T/plain"; "$HEADCOUNT" join --fd 9 stale'
says "cannot join region 'stale': '$D/stale' is an empty file"
expect 1 hc count notes
one_error_line "cannot count region 'notes': '$D/notes' is not a headcount region (another program's file, a damaged region, or one from an incompatible build); remove it with 'headcount remove notes' when nobody is in it, or use another name"
if command -v flock >/dev/null; then
        flock "$D/locked" true
        expect 1 hc run locked -- true && says "'$D/locked' is an empty file"
        rm "$D/locked"
fi
# 'names' lists the others and warns once for each file that is none.
hc create web
expect 0 hc names -rn -o NAME,COUNT
same "names with foreign files" "$(cat "$T/out")" "web 0"
same "names: warnings" "$(wc -l <"$T/err")" 2
contains "$T/err" "headcount: warning: 'stale' is not a headcount region"
contains "$T/err" "headcount: warning: 'notes' is not a headcount region"
# its owner removes a file that is no region by name, as it removes a region
expect 0 hc remove stale
expect 0 hc remove notes
same "regions after removing the foreign files" "$(ls "$D")" web
expect 0 hc run stale -- true

# A directory that does not exist, named by --dir or $HEADCOUNT_DIR, is an error for every
# command; nothing is created.
for cmd in "count web" "list web" "names" "run web -- true" "create web" "remove web" \
           "wait web --zero" "send web hello" "path web" "join --fd 1 web" "leave --fd 1 web"; do
        expect 1 hc --dir "$T/typo" $cmd &&
                one_error_line "directory '$T/typo' (from --dir) does not exist: create it, or name another"
        expect 1 env HEADCOUNT_DIR="$T/typo" "$HEADCOUNT" $cmd &&
                one_error_line "directory '$T/typo' (from \$HEADCOUNT_DIR) does not exist"
done
[ ! -e "$T/typo" ] || fail "a missing directory was created"
checks=$((checks + 1))
# The system scope ignores $HEADCOUNT_DIR, as the library does.
expect 0 env HEADCOUNT_DIR="$T/typo" "$HEADCOUNT" --dir "$D" count web

# A region that another user owns (as in the system scope, where a user who came first
# owns the name): the message names the owner and what to do. A region writable by others
# outside the system scope, and one with a second hard link (root trusts its own regions
# whatever their mode, so these run as another user).
if [ "$(id -u)" = 0 ] && setpriv --reuid=nobody --regid=nogroup --clear-groups true 2>/dev/null &&
   setpriv --reuid=nobody --regid=nogroup --clear-groups "$HEADCOUNT" --version >/dev/null 2>&1; then
        as_nobody="setpriv --reuid=nobody --regid=nogroup --clear-groups"
        chmod 0711 "$T"
        mkdir -m 1777 "$T/sticky"
        expect 0 $as_nobody "$HEADCOUNT" --dir "$T/sticky" create squat
        for cmd in "run squat -- true" "path squat" "create squat" "remove squat"; do
                expect 1 hc --dir "$T/sticky" $cmd &&
                        says "'$T/sticky/squat' belongs to user 'nobody' (uid $(id -u nobody)), not to you; its owner or root can remove it ('headcount --dir $T/sticky remove squat' when nobody is in it), or use another name"
        done
        mkdir -m 0700 "$T/nobody"
        chown nobody "$T/nobody"
        expect 0 $as_nobody "$HEADCOUNT" --dir "$T/nobody" create loose
        chmod 0666 "$T/nobody/loose"
        expect 1 $as_nobody "$HEADCOUNT" --dir "$T/nobody" run loose -- true &&
                says "'$T/nobody/loose' is writable by others (mode 0666), which only the system scope allows"
        chmod 0600 "$T/nobody/loose"
        ln "$T/nobody/loose" "$T/nobody/twin"
        expect 1 $as_nobody "$HEADCOUNT" --dir "$T/nobody" run loose -- true &&
                says "'$T/nobody/loose' has 2 hard links, and a region has one"
        rm "$T/nobody/twin"
        expect 0 $as_nobody "$HEADCOUNT" --dir "$T/nobody" run loose -- true
else
        echo "SKIP: regions of another user (needs root and the user nobody)"
fi

# Who keeps the seat when the command leaves a child behind: 'run' gives the seat back
# when the command ends, so a daemonized child does not keep it (it holds a copy of the
# descriptor, without the seat). The shell form keeps it: see test-shellform.sh.
expect 0 hc run daemon -- sh -c 'set -m; sleep 1000 >/dev/null 2>&1 & echo "child $!" >"$T/events"'
next_event
child=${event#child }
track "$child"
[ -d "/proc/$child" ] || fail "the background child is gone"
checks=$((checks + 1))
expect 0 hc count daemon && same "count after 'run' with a child left behind" "$(cat "$T/out")" 0
expect 0 hc run daemon -- true
kill -KILL "$child"

finish
