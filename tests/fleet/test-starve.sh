#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Local users cannot starve the host's agent. headcountd --dir SHARED --etcd --ttl 3 serves
# a shared 1777 directory; a 'headcount --fleet run' holder must stay admitted for 60 s
# (its command runs on, the fleet still lists it, the agent never loses its lease) while,
# in that scope:
#  (a) a throwaway user holds every seat of a 4096-seat region of their own and writes
#      garbage over its records (their file: they may), sets its seat_hwm to 0, and pokes
#      it every 10 ms so that the daemon lists it again and again;
#  (b) another throwaway user read-locks the region-lock byte (HC_LOCK_MUTEX, the region
#      file) of root's 0644 region, so that no writer can take the region lock, and a
#      holder in that region dies;
# and root's joins and leaves of other regions (seats held 100 ms) are still logged, for
# a bounded amount of the daemon's work: under EVENT_CPU seconds of its CPU from the run
# to the log line (a daemon starved by the attacks would spend its time on them first;
# wall time is the machine's load, not the daemon's). Also: a 'headcount run' by another
# user that finds a 4096-seat 0666 region full of unreadable records says so with under
# a second of CPU (each record was read 2,000 times: about 10 s of it).
# Needs root (throwaway users); skips (77) otherwise. Nothing touches /dev/shm or /run:
# the scope is a directory under /tmp.
. "${srcdir:-.}/tests/fleet/lib.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root (throwaway users)"
command -v useradd >/dev/null && command -v runuser >/dev/null || skip "needs useradd and runuser"

ATTACK_SECS=${ATTACK_SECS:-60}
EVENT_CPU=${EVENT_CPU:-5}               # the daemon's CPU seconds until an event is logged
HANG=60                                 # seconds of wall time: a bound for a hang
users=()
S=

starve_cleanup() {
        local u
        fleet_cleanup_pids
        for u in "${users[@]}"; do
                pkill -KILL -u "$u" 2>/dev/null
                userdel -f "$u" >/dev/null 2>&1
        done
        [ -n "$S" ] && rm -rf "$S"
        fleet_cleanup
}
# the users' processes first: userdel refuses a user who still runs something
fleet_cleanup_pids() {
        local p
        for p in $(tree_pids $started_pids); do
                kill -KILL "$p" 2>/dev/null
        done
}
trap starve_cleanup EXIT

for who in a b; do
        u=hce$$$who
        userdel -f "$u" >/dev/null 2>&1
        useradd -M -N -s /usr/sbin/nologin "$u" >/dev/null 2>&1 || skip "cannot create a test user"
        users+=("$u")
done
UA=${users[0]}
UB=${users[1]}
as() {
        local u=$1
        shift
        runuser -u "$u" -- env -u XDG_RUNTIME_DIR -u HEADCOUNT_DIR LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}" "$@"
}
as "$UA" "$HEADCOUNT" --help >/dev/null 2>&1 ||
        skip "the test users cannot run $HEADCOUNT from this build tree"

S=$(mktemp -d /tmp/hce-starve.XXXXXX) || exit 99
chmod 1777 "$S"
HOST_DIR[a]=$S

# The attackers, in Python: the region file's layout is lib/format.h's.
cat >"$T/hold-all.py" <<'PY'
# hold-all.py DIR NAME SECONDS READY: hold every seat of region NAME (OFD write locks on
# its lock files), write garbage over its records and 0 into its seat_hwm, then poke it
# (the header's poke word: an IN_MODIFY for the daemon's watch) every 10 ms.
import fcntl, os, struct, sys, time
d, name, secs, ready = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
F_OFD_SETLK = 37
HC_LOCK_BASE = 1 << 40
fd = os.open(os.path.join(d, name), os.O_RDWR)
hdr = os.pread(fd, 192, 0)
cap, spf = struct.unpack_from("=II", hdr, 16)     # capacity, seats per lock file
table, = struct.unpack_from("=Q", hdr, 24)
rid, = struct.unpack_from("=Q", hdr, 56)
locks = []
for k in range((cap + spf - 1) // spf):
    lf = os.open(os.path.join(d, ".%s.%016x.%d" % (name, rid, k)), os.O_RDWR)
    n = min(spf, cap - spf * k)
    fcntl.fcntl(lf, F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, HC_LOCK_BASE + spf * k, n, 0))
    locks.append(lf)
row = bytes(((i * 37 + 11) & 0xff) | 1 for i in range(192))   # a record (lib/format.h)
os.pwrite(fd, row * cap, table)
os.pwrite(fd, struct.pack("=I", 0), 148)
open(ready, "w").close()
end = time.time() + secs
while time.time() < end:
    os.pwrite(fd, struct.pack("=I", 1), 136)
    time.sleep(0.01)
PY
cat >"$T/read-lock.py" <<'PY'
# read-lock.py FILE SECONDS READY: an OFD read lock on the byte HC_LOCK_MUTEX of FILE
# (a read lock needs only read access) for SECONDS.
import fcntl, os, struct, sys, time
F_OFD_SETLK = 37
HC_LOCK_MUTEX = (1 << 40) - 3
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.fcntl(fd, F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_RDLCK, 0, HC_LOCK_MUTEX, 1, 0))
open(sys.argv[3], "w").close()
time.sleep(float(sys.argv[2]))
PY
chmod 0644 "$T/hold-all.py" "$T/read-lock.py"
mkdir -m 0755 "$T/py"
cp "$T/hold-all.py" "$T/read-lock.py" "$T/py/"
chmod 0711 "$T"                          # the users reach $T/py, nothing else
mkdir -m 1777 "$T/ready"

etcd_start 1
host_start a --ttl 3
LOG=$T/host-a.log

# the fleet holder: it must stay admitted throughout
hold a run starve-fleet -- sleep $((ATTACK_SECS + 120))
fleet_pid=$!
wait_for 10 "the fleet holder is admitted" count_is a starve-fleet 1

# local_event WHAT NAME: root runs 'headcount run NAME -- sleep 0.1' in the shared scope;
# the daemon logs its join and its leave, with under EVENT_CPU seconds of its CPU spent
# meanwhile. The daemon samples
# the seats when events come: a seat that comes and goes within a millisecond ('run --
# true') can fall between two looks even when nothing else happens, so the seat lives
# 100 ms, far longer than any look takes.
logged() {
        [ "$(grep -c -- "$1" "$LOG")" -ge "$2" ]
}
# daemon_work WHAT TICKS0: the daemon spent under EVENT_CPU seconds since TICKS0.
daemon_work() {
        local ticks=$(($(cpu_ticks "${HOST_PID[a]}") - $2))
        echo "$1: the daemon spent $ticks ticks of CPU until it was logged"
        check "$1: the daemon spent $ticks ticks of CPU on the way (bound $((EVENT_CPU * HZ)))" \
                [ "$ticks" -lt $((EVENT_CPU * HZ)) ]
}
local_event() {
        local joins leaves t0 ticks0
        joins=$(grep -c -- "$2: .* joined" "$LOG")
        leaves=$(grep -c -- "$2: .* left" "$LOG")
        t0=$(now_ms)
        ticks0=$(cpu_ticks "${HOST_PID[a]}")
        "$HEADCOUNT" --dir "$S" run "$2" -- sleep 0.1 || fail "$1: run $2 failed"
        wait_for "$HANG" "$1: the join in $2 is logged" logged "$2: .* joined" $((joins + 1)) &&
                wait_for "$HANG" "$1: the leave in $2 is logged" logged "$2: .* left" $((leaves + 1)) &&
                echo "$1: join and leave of $2 logged $(($(now_ms) - t0)) ms after the run began" &&
                daemon_work "$1" "$ticks0"
}
local_event "before the attacks" other

# (a) user A's own 4096-seat region, garbage records, seat_hwm 0, poked
as "$UA" "$HEADCOUNT" --dir "$S" create junk --capacity 4096 ||
        { fail "user A cannot create a 4096-seat region"; fleet_finish; }
as "$UA" python3 "$T/py/hold-all.py" "$S" junk $((ATTACK_SECS + 10)) "$T/ready/a" &
started_pids="$started_pids $!"
wait_for 20 "attack (a) holds every seat" test -e "$T/ready/a"

# (b) root's 0644 region, its region lock read-locked by user B, a holder that dies
"$HEADCOUNT" --dir "$S" create victim --mode 0644 || fail "root cannot create a 0644 region"
as "$UB" python3 "$T/py/read-lock.py" "$S/victim" $((ATTACK_SECS + 10)) "$T/ready/b" &
started_pids="$started_pids $!"
wait_for 20 "attack (b) read-locks the region lock" test -e "$T/ready/b"

attack_start=$(now_ms)

# a 0666 region of root's that user A fills with unreadable records, for user B's run
"$HEADCOUNT" --dir "$S" create big --mode 0666 --capacity 4096 || fail "root cannot create a 0666 region"
as "$UA" python3 "$T/py/hold-all.py" "$S" big $((ATTACK_SECS + 10)) "$T/ready/big" &
started_pids="$started_pids $!"
wait_for 20 "user A holds every seat of big" test -e "$T/ready/big"
t0=$(now_ms)
# its CPU, user and system, as bash's 'time' reports the child's (wall time is the load's)
TIMEFORMAT='%3U %3S'
{ time as "$UB" "$HEADCOUNT" --dir "$S" run big -- true >"$T/out" 2>"$T/err"; } 2>"$T/time"
rc=$?
cpu=$(tail -n 1 "$T/time")
run_ms=$(($(now_ms) - t0))
cpu_ms=$(echo "$cpu" | awk '{ printf "%d", ($1 + $2) * 1000 }')
echo "a 'headcount run' by another user on 4096 unreadable records: exit $rc in $run_ms ms, $cpu_ms ms of CPU"
check "user B's run finds big full (exit 75), got $rc" [ "$rc" -eq 75 ]
check "user B's run on 4096 unreadable records used $cpu_ms ms of CPU (bound 1000)" [ "$cpu_ms" -lt 1000 ]
expect 0 "$HEADCOUNT" --dir "$S" list big
contains "$T/err" "4096 held seats with a record that cannot be read"

# a holder in the victim region dies while the region lock is read-locked
"$HEADCOUNT" --dir "$S" run victim -- sleep 600 &
victim_pid=$!
started_pids="$started_pids $victim_pid"
wait_for "$HANG" "the victim's holder is logged" logged "victim: .* joined" 1
kill_tree KILL "$victim_pid"
t0=$(now_ms)
ticks0=$(cpu_ticks "${HOST_PID[a]}")
wait_for "$HANG" "the victim's holder's end is logged" logged "victim: .* \(died\|left\)" 1 &&
        echo "the end of a holder of the read-locked region logged in $(($(now_ms) - t0)) ms" &&
        daemon_work "the victim's end" "$ticks0"

# local events of other regions, until the attacks end
i=0
while [ $(($(now_ms) - attack_start)) -lt $((ATTACK_SECS * 1000)) ]; do
        i=$((i + 1))
        local_event "under attack ($i)" "other$((i % 3))"
        check "the fleet holder still runs (${i})" running "$fleet_pid"
        sleep 1
done

check "the fleet holder's command still runs after ${ATTACK_SECS} s" running "$fleet_pid"
check "the fleet still counts the holder" count_is a starve-fleet 1
on a list starve-fleet >"$T/out" 2>"$T/err"
check "the fleet still lists the holder" [ "$(wc -l <"$T/out")" -ge 2 ]
if on a status >"$T/out" 2>"$T/err"; then
        echo "fleet status: $(head -n 3 "$T/out" | tr '\n' ' ')"
fi
no_lost_lease() {
        ! grep -q "Lost etcd lease" "$LOG"
}
check "the agent never lost its etcd lease" no_lost_lease
check "the daemon did not crash" running "${HOST_PID[a]}"

kill_tree KILL "$fleet_pid"
fleet_finish
