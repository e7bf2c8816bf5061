#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 'run --replace' signals only a process that the kernel shows holding the seat, never
# one that a record merely names. A root script takes a seat with 'join --fd 9' and
# leaves a child in the background holding fd 9, then ends; its pid goes to another
# user's 'sleep'. --replace must not signal that sleep: it names the child as the holder
# (or says nobody can be identified), signals nobody, and exits 75. A script that holds
# its seat itself is still replaced. 'join --fd --pid' of a stranger is refused.
#
# Root only (a throwaway user, pid reuse forced through ns_last_pid). Everything runs in
# a PID namespace of its own, with its own /proc and a private tmpfs for the regions, so
# that the pids we force are ours alone and nothing touches the host.

if [ "$(id -u)" != 0 ]; then
        echo "SKIP: needs root (a throwaway user, and a PID namespace to reuse pids in)" >&2
        exit 77
fi
if [ -z "${HC_REUSE_INSIDE:-}" ]; then
        if ! unshare --mount --pid --fork --mount-proc true 2>/dev/null; then
                echo "SKIP: cannot make a PID and mount namespace here" >&2
                exit 77
        fi
        HC_REUSE_INSIDE=1 exec unshare --mount --pid --fork --mount-proc bash "$0" "$@"
fi

. "${srcdir:-.}/tests/cli/lib.sh"

if [ ! -w /proc/sys/kernel/ns_last_pid ] || ! command -v setpriv >/dev/null ||
   ! command -v useradd >/dev/null; then
        echo "SKIP: needs /proc/sys/kernel/ns_last_pid, setpriv and useradd" >&2
        exit 77
fi

# The regions: a tmpfs of this mount namespace alone.
R=$T/shm
mkdir -m 0755 "$R"
mount -t tmpfs -o mode=0755 hcrp-test "$R" || { echo "cannot mount a tmpfs" >&2; exit 99; }

user=hcrp$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
reuse_cleanup() {
        [ -n "$user" ] && userdel -f "$user" >/dev/null 2>&1
        umount -l "$R" 2>/dev/null
        cleanup
}
trap reuse_cleanup EXIT
if ! useradd -M -N -s /usr/sbin/nologin "$user" >/dev/null 2>&1; then
        user=
        echo "SKIP: cannot create a test user" >&2
        exit 77
fi
uid=$(id -u "$user")
gid=$(id -g "$user")

hcr() {
        "$HEADCOUNT" --dir "$R" "$@"
}

# alive PID: the process is there, and no zombie
alive() {
        [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# start_as_stranger PID: starts the throwaway user's 'sleep' with pid PID (the next fork
# gets ns_last_pid + 1 in this namespace, where nothing else forks); prints its pid.
start_as_stranger() {
        local want=$1 got
        echo $((want - 1)) >/proc/sys/kernel/ns_last_pid
        setpriv --reuid="$uid" --regid="$gid" --clear-groups sleep 1000 </dev/null >/dev/null 2>&1 &
        echo "$!"
}

# 1. A script holds seat 0 with 'join --fd 9', leaves a child holding fd 9, and ends.
# (Run as from cron, in its caller's process group: a group that outlives its leader
# keeps the leader's pid from being given out again.)
set +m
expect 0 bash -c 'exec 9<>"$("$HEADCOUNT" --dir "$1" path reuse)" || exit 1
                  "$HEADCOUNT" --dir "$1" join --fd 9 reuse || exit 1
                  sleep 1000 </dev/null >/dev/null 2>&1 &
                  echo "$$ $!"' _ "$R"
set -m
read -r script child <"$T/out"
track "$child"
same "the seat is held after the script ended" "$(hcr count reuse)" 1
same "list names the script" "$(hcr list -rn -o PID reuse)" "$script"
wait_for 10 "the script's pid is free" eval '! [ -e /proc/$script ]'

# 2. Its pid goes to another user's sleep.
stranger=$(start_as_stranger "$script")
track "$stranger"
same "the stranger got the script's pid" "$stranger" "$script"
wait_for 10 "the stranger runs as the other user" eval '[ "$(stat -c %u "/proc/$stranger")" = "$uid" ] && grep -q "^Name:[[:space:]]*sleep" "/proc/$stranger/status"'
same "the record still names that pid" "$(hcr list -rn -o PID reuse)" "$stranger"

# 3. --replace: nobody is signalled, the real holder is named, exit 75.
expect 75 hcr run --replace --kill-after 0.5 reuse -- true &&
        one_error_line "cannot replace pid $stranger in region 'reuse': it does not hold seat 0; pid $child does; nothing was signalled"
alive "$stranger"
same "the stranger's sleep still runs" $? 0
alive "$child"
same "the real holder still runs" $? 0
same "the seat is still held" "$(hcr count reuse)" 1

# The daemon does not name the stranger as the verified holder either: the record says
# pid $stranger, the kernel says otherwise, and its log says "(unverified)".
HEADCOUNTD=${HEADCOUNTD:-$top_builddir/daemon/headcountd}
if [ -x "$HEADCOUNTD" ]; then
        "$HEADCOUNTD" --dir "$R" --bus none --log-target stderr -v 2>"$T/daemon.log" &
        daemon=$!
        track "$daemon"
        wait_for 20 "the daemon names the holder of 'reuse'" grep -q "reuse: pid" "$T/daemon.log"
        contains "$T/daemon.log" "reuse: pid $stranger (unverified) holds slot 0"
        kill -TERM "$daemon"
        wait "$daemon"
else
        echo "(no headcountd at $HEADCOUNTD: its wording is not checked)"
fi

# 4. Nobody can be identified: the script's description is held by no process's
# descriptor (it sits in a socket's queue, sent with SCM_RIGHTS and never received), and
# the script is gone. Nobody is signalled then either.
expect 0 bash -c 'exec 9<>"$("$HEADCOUNT" --dir "$1" path nobody)" || exit 1
                  "$HEADCOUNT" --dir "$1" join --fd 9 nobody || exit 1
                  python3 -c "
import os, socket, sys, time
a, b = socket.socketpair()
socket.send_fds(a, [b\"x\"], [9])
os.close(9)
print(os.getpid(), flush=True)
sys.stdout.close()
time.sleep(1000)
" </dev/null >"$2" 2>/dev/null &
                  for i in $(seq 3000); do [ -s "$2" ] && break; sleep 0.01; done
                  echo "$$ $(cat "$2")"' _ "$R" "$T/pyready"
read -r nobody_script keeper <"$T/out"
track "$keeper"
same "the seat is held by a description in flight" "$(hcr count nobody)" 1
same "list names the ended script" "$(hcr list -rn -o PID nobody)" "$nobody_script"
expect 75 hcr run --replace --kill-after 0.5 nobody -- true &&
        one_error_line "cannot replace pid $nobody_script in region 'nobody': it does not hold seat 0, and nobody can be identified as its holder; nothing was signalled"
alive "$keeper"
same "the process with the socket still runs" $? 0

# 5. A script that holds its own seat (fd 9 open in the very process the record names)
# is still replaced: SIGTERM, and the seat is ours.
bash -c 'exec 9<>"$("$HEADCOUNT" --dir "$1" path own)" || exit 1
         "$HEADCOUNT" --dir "$1" join --fd 9 own || exit 1
         exec sleep 1000 </dev/null >/dev/null 2>&1' _ "$R" &
own=$!
track "$own"
wait_for 10 "the script holds its seat" eval '[ "$(hcr list -rn -o PID own 2>/dev/null)" = "$own" ]'
expect 0 hcr run --replace --kill-after 5 own -- sh -c 'echo "$$ $("$HEADCOUNT" --dir "$1" list -rn -o PID own)"' _ "$R"
read -r me listed <"$T/out"
same "the newcomer held the seat" "$listed" "$me"
wait "$own"
same "the script holding its seat was stopped with SIGTERM" $? 143

# 6. 'join --fd --pid' names only a process that holds the seat: the stranger is refused,
# and the seat that join took is given back at once.
expect 0 bash -c 'exec 9<>"$("$HEADCOUNT" --dir "$1" path claim)" || exit 1
                  "$HEADCOUNT" --dir "$1" join --fd 9 --pid "$2" claim
                  echo "status $? count $("$HEADCOUNT" --dir "$1" count claim)"' _ "$R" "$stranger"
same "join --fd --pid of a stranger" "$(cat "$T/out")" "status 1 count 0"
contains "$T/err" "headcount: cannot join region 'claim': pid $stranger does not hold descriptor 9's seat"

alive "$stranger"
same "the stranger's sleep still runs at the end" $? 0

finish
