#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fleet names have owners and modes, and the agent believes only the kernel about pids.
# A root agent serves a shared (1777) scope directory that root and two throwaway users
# reach: the other user cannot join, resize, remove or redefine root's names, can count a
# 0644 name and join a 0666 one; a name squatted before root defines it is root's once
# root does; a name made by a join goes with its last seat; per-uid caps on names and
# connections hold, root exempt. A raw JOIN that claims pid 1 is listed as pid 1 but
# unverified, while 'run' holders are verified with their command's pid.
. "${srcdir:-.}/tests/fleet/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root (throwaway users)"
command -v useradd >/dev/null && command -v setpriv >/dev/null || skip "needs useradd, setpriv"

U1=hcca$$
U2=hccb$$
SHARED=$(mktemp -d /tmp/hcc-shared.XXXXXX) || exit 99
chmod 1777 "$SHARED"
access_cleanup() {
        fleet_cleanup
        userdel "$U1" 2>/dev/null
        userdel "$U2" 2>/dev/null
        rm -rf "$SHARED"
}
trap access_cleanup EXIT
useradd -M -N -d / -s /bin/sh "$U1" && useradd -M -N -d / -s /bin/sh "$U2" || exit 99

etcd_start 1
HOST_DIR[a]=$SHARED
host_start a --fleet-user-connections 6 --fleet-user-names 2

# run_as USER CMD...: CMD as USER (exec'd in place: its pid is CMD's).
run_as() {
        local user=$1
        shift
        setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- "$@"
}
# as USER ARG...: 'headcount --fleet ARG...' as USER through host a's agent.
as() {
        local user=$1
        shift
        HEADCOUNT_DIR=$SHARED run_as "$user" "$HEADCOUNT" --fleet "$@"
}
max_key() {
        ectl get --print-value-only "${FLEET_PREFIX}$1/max"
}

# root defines a name others may read but not join
expect 0 on a create rootjob --max 2 --mode 0644
same "rootjob's definition" "$(max_key rootjob)" '{"max":2,"owner":"root","mode":"0644"}'
expect 1 as "$U1" run --max 2 rootjob -- true
one_error_line "cannot join region 'rootjob' in the fleet scope: permission denied: fleet name 'rootjob' belongs to root (mode 0644)"
expect 0 as "$U1" count rootjob
same "count of rootjob as $U1" "$(cat "$T/out")" 0
expect 1 as "$U1" remove rootjob
contains "$T/err" "permission denied"
expect 1 as "$U1" create rootjob --max 5
contains "$T/err" "exists and belongs to root"
same "rootjob's definition after the others tried" "$(max_key rootjob)" \
        '{"max":2,"owner":"root","mode":"0644"}'
expect 1 as "$U1" create rootjob2 --max 1 --owner root
contains "$T/err" "only root may name another owner"
usage_fails "invalid mode 0640 for a fleet name" on a create x --max 1 --mode 0640
expect 0 on a run --max 2 rootjob -- true

# 0600: not even counted or listed by others, nor shown in their 'names'
expect 0 on a create private --max 1 --mode 0600
expect 1 as "$U1" count private
contains "$T/err" "may not read it"
expect 1 as "$U1" list private
expect 1 as "$U1" wait private --below 1 --timeout 5
contains "$T/err" "may not read it"
expect 0 as "$U1" names -n -o NAME
same "names $U1 may read" "$(sort "$T/out" | tr '\n' ' ')" "rootjob "

# 0666: others join it
expect 0 on a create shared --max 3 --mode 0666
expect 0 as "$U1" run --max 3 shared -- true
expect 0 as "$U2" run --max 3 shared -- true
expect 1 as "$U1" run --max 2 shared -- true
contains "$T/err" "allows at most 3"

# A name another user made first (by joining it) is root's once root defines it: the
# squatter's seat stays until it leaves, its next join is refused, root's N holds.
hold_as() {
        as "$@" &
        started_pids="$started_pids $!"
}
hold_as "$U1" run --max 5 squat -- sleep 600
squatter=$!
wait_for 10 "the squatter holds its seat" count_is a squat 1
same "squat's definition" "$(max_key squat)" "{\"max\":5,\"owner\":\"$U1\",\"mode\":\"0644\",\"join\":true}"
expect 1 on a run --max 2 squat -- true
contains "$T/err" "allows at most 5"
expect 1 as "$U2" create squat --max 1
contains "$T/err" "belongs to $U1"
expect 0 on a create squat --max 2 --mode 0644
same "squat's definition after root's" "$(max_key squat)" '{"max":2,"owner":"root","mode":"0644"}'
expect 1 as "$U1" run --max 5 squat -- true
contains "$T/err" "permission denied"
expect 0 on a run --max 2 squat -- true
kill_tree TERM "$squatter"
wait "$squatter" 2>/dev/null
wait_for 10 "the squatter's seat goes" count_is a squat 0
same "squat's definition outlives the seats (made by create)" "$(max_key squat)" \
        '{"max":2,"owner":"root","mode":"0644"}'

# A name made by a join lives as long as its seats.
expect 0 as "$U1" run --max 1 passing -- true
wait_for 10 "the definition of a name made by a join goes with its last seat" \
        eval '[ -z "$(max_key passing)" ]'

# A definition a join made and no seat holds any more (its last host died before it
# could delete it) is nobody's: the next join defines the name anew.
ectl put "${FLEET_PREFIX}stale/max" "{\"max\":5,\"owner\":\"$U1\",\"mode\":\"0600\",\"join\":true}" >/dev/null
expect 0 as "$U2" run --max 1 stale -- true
# An older agent's definition (N alone) reads as root's, mode 0666.
ectl put "${FLEET_PREFIX}legacy/max" 3 >/dev/null
expect 0 as "$U1" run --max 3 legacy -- true
expect 1 as "$U1" remove legacy
contains "$T/err" "belongs to root (mode 0666)"
expect 0 on a remove legacy

# Removing: the owner's or root's. After root removes its name, anyone may define it.
expect 1 as "$U2" remove shared
contains "$T/err" "permission denied"
expect 0 on a remove shared
same "shared after remove" "$(max_key shared)" ""
expect 0 as "$U1" create shared --max 1 --mode 0644
expect 1 as "$U2" remove shared
expect 0 on a remove shared

# Per-owner cap on names made with create (2 here), root exempt.
expect 0 as "$U1" create n1 --max 1
expect 0 as "$U1" create n2 --max 1
expect 0 as "$U1" create n2 --max 1                # as it is: no change, no new name
expect 1 as "$U1" create n3 --max 1
one_error_line "cannot define region 'n3' in the fleet scope: user $U1 owns 2 fleet names made with create"
expect 0 on a create n3 --max 1 --owner "$U2"
for i in 1 2 3; do
        expect 0 on a create "r$i" --max 1
done

# Per-uid cap on connections (6 here): a seventh is refused in one line; root's go on.
expect 0 on a create open --max 10 --mode 0666
run_as "$U1" /usr/bin/python3 -c '
import socket, sys, time
s = []
for i in range(6):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        c.connect(sys.argv[1])
        s.append(c)
open(sys.argv[2], "w").close()
time.sleep(600)' "$SHARED/.headcountd.fleet" "$SHARED/u1-ready" &
holder=$!
started_pids="$started_pids $holder"
wait_for 10 "$U1 holds six connections" test -e "$SHARED/u1-ready"
expect 1 as "$U1" count open
one_error_line "cannot count region 'open' in the fleet scope: uid $(id -u "$U1") has 6 connections to the fleet agent"
expect 0 as "$U2" count open
expect 0 on a count open
kill_tree TERM "$holder"
wait "$holder" 2>/dev/null
wait_for 10 "$U1 is served again" eval 'as "$U1" count open >/dev/null'

# Pids: a raw JOIN claiming pid 1 is recorded as claimed, and listed as unverified; a
# 'run' holder is verified, with its command's pid.
python3 -c '
import socket, sys, time
c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
c.connect(sys.argv[1])
c.send(b"JOIN\0forged\0" + b"2\0" + b"0\0" + b"1")
a = c.recv(4096)
open(sys.argv[2], "w").write(a.split(b"\0")[0].decode())
time.sleep(600)' "$SHARED/.headcountd.fleet" "$T/forged" &
forger=$!
started_pids="$started_pids $forger"
wait_for 10 "the raw JOIN is answered" test -s "$T/forged"
same "raw JOIN's answer" "$(cat "$T/forged")" OK
hold a run --max 2 forged -- sleep 600
runner=$!
wait_for 10 "the run holds its seat" count_is a forged 2
cmd_pid=$(ps -o pid= --ppid "$runner" | tr -d ' ')
expect 0 on a list -J forged
same "pids and verified flags" "$(python3 -c '
import json, sys
print(" ".join("%s:%s" % (i["pid"], "unverified" not in i["flags"])
               for i in json.load(open(sys.argv[1]))["instances"]))' "$T/out")" \
        "1:False $cmd_pid:True"
contains "$T/host-a.log" "pid 1 unverified"
expect 75 on a run --max 2 forged -- true
one_error_line "no free seat in fleet region 'forged': held by pid 1 (unverified) on a, pid $cmd_pid on a"

fleet_finish
