#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# --fleet without a headcountd to serve it: every command that works in the fleet scope
# exits 69 with one line that names the directory and says how to start one; what the
# fleet scope does not offer ('send', Local\ and Global\ names, 'create' without --max)
# is a usage error.
# The fleet against a real headcountd and etcd: tests/lib/test-fleet-agent.c, tests/fleet/.
. "${srcdir:-.}/tests/cli/lib.sh"

hint="; start one with 'headcountd --etcd URL' (see headcountd(8))"

# No agent in the named directory: the one line, exit 69, nothing on stdout.
for cmd in "count web" "list web" "names" "wait --zero web" "remove web" "run web -- true"; do
        # shellcheck disable=SC2086 # the words of the command
        expect 69 hc --fleet --dir "$D" $cmd || continue
        same "stdout of --fleet $cmd" "$(cat "$T/out")" ""
        one_error_line "no headcountd serves the fleet scope in $D$hint"
done
# --fleet after the command, and $HEADCOUNT_DIR as the local scope: no fallback then.
expect 69 hc count web --fleet && one_error_line "no headcountd serves the fleet scope in $D$hint"
# 'run' did not start its command.
expect 69 hc --fleet run web -- touch "$T/ran"
[ ! -e "$T/ran" ] || fail "'run' started its command without a seat"

# --user and --system name the local scope whose headcountd serves the fleet.
mkdir -m 0700 "$T/xdg"
expect 69 env -u HEADCOUNT_DIR XDG_RUNTIME_DIR="$T/xdg" "$HEADCOUNT" --fleet --user count web &&
        one_error_line "no headcountd serves the fleet scope in $T/xdg/headcount$hint"
if [ ! -e /run/headcountd/fleet.sock ]; then
        expect 69 hc --fleet --system count web &&
                one_error_line "no headcountd serves the fleet scope in /run/headcount$hint"
        # nothing named: the user scope's, then the system scope's
        expect 69 env -u HEADCOUNT_DIR XDG_RUNTIME_DIR="$T/xdg" "$HEADCOUNT" --fleet count web &&
                one_error_line "no headcountd serves the fleet scope in $T/xdg/headcount (nor in /run/headcount)$hint"
fi

# Not in the fleet scope.
usage_fails "'--fleet create' needs --max <n>, the name's N" hc --fleet create web
usage_fails "'send' is not available in the fleet scope" hc --fleet send web hello
usage_fails 'invalid name '"'"'Global\\web'"'"': names of the fleet scope take no Local or Global prefix' \
        hc --fleet count 'Global\web'
expect 0 hc --help && contains "$T/out" "--fleet"

# Local scopes are untouched by the option's existence.
expect 0 hc count web && same "local count" "$(cat "$T/out")" 0
finish
