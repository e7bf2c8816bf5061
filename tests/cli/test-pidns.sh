#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A holder in another PID namespace (a container) is listed with its PID marked '*' and
# named "pid N in another PID namespace", never as if the number meant a process here.
. "${srcdir:-.}/tests/cli/lib.sh"
events_open

if ! unshare --pid --fork true 2>/dev/null; then
        echo "SKIP: cannot make a PID namespace (unshare --pid needs privileges)" >&2
        exit 77
fi

# In the new namespace the first process is PID 1 (headcount, or libtool's wrapper of
# it in the build tree) and its command has a small PID of that namespace.
unshare --pid --fork "$HEADCOUNT" run ns -- sh -c 'echo "$$" >&3; read _ <"$T/gate"' &
track $!
next_event
theirs=$event

expect 0 hc list -n -o PID,COMMAND ns
same "PID and COMMAND columns" "$(echo $(cat "$T/out"))" "$theirs* -"
expect 0 hc list --json ns
if command -v python3 >/dev/null; then
        same "JSON" "$(python3 -c '
import json, sys
o = json.load(open(sys.argv[1]))["instances"][0]
print(o["pid"], o["flags"])' "$T/out")" "$theirs ['other-pidns']"
fi
full="no free seat in region 'ns': held by pid $theirs in another PID namespace"
expect 75 hc run ns -- true && one_error_line "$full"

# One of ours beside it is listed as it is.
"$HEADCOUNT" run --max 2 ns -- sh -c 'echo "$$" >&3; read _ <"$T/gate"' &
track $!
next_event
ours=$event
expect 0 hc list -rn -o PID,COMMAND,FLAGS ns
same "PID column of ours" "$(sed -n 2p "$T/out")" "$ours sh "
same "FLAGS of theirs" "$(sed -n 1p "$T/out")" "$theirs* - other-pidns"
expect 75 hc run --max 2 ns -- true && one_error_line "$full, pid $ours"

release 2
expect 0 hc wait ns --zero --timeout 60
finish
