#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The fleet agent's health, as an admin sees it:
#  - READY=1 (read from a notify socket of our own, as systemd would) comes only once the
#    first etcd lease is held; with etcd away, after --etcd-timeout, STATUS= saying why;
#  - 'headcount --fleet status', STATUS= and the D-Bus property FleetState (on a private
#    bus) say "lease held", then "renewing late" and "lease lost" or "etcd unreachable"
#    while etcd is stopped (SIGSTOP), and "lease held" again after SIGCONT;
#  - the main thread stopped alone for 3 TTLs: the lease stays held (the agent's thread);
#    SIGTERM: the agent's thread revokes the lease (no seat key left), the daemon exits 0;
#  - a try-once join fails at once while etcd is down (69, and why); a join with
#    --wait=10 started then is admitted once etcd is back 2 s later.
. "${srcdir:-.}/tests/fleet/lib.sh"
command -v dbus-daemon >/dev/null || skip "dbus-daemon is needed"
command -v busctl >/dev/null || skip "busctl is needed"

# notify_reader SOCKET OUT LOG: receives sd_notify() datagrams on SOCKET; writes one line
# per message to OUT: "MS<TAB>MESSAGE" (newlines as '|'), and for READY=1 whether LOG
# already said that the lease is held ("ready-after-lease" or "ready-before-lease").
notify_reader() {
        python3 - "$@" <<'PY' &
import os, socket, sys, time
path, out, log = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, "a") as f:
    f.write("%d\tlistening\n" % (time.time() * 1000))
    f.flush()
    while True:
        data = s.recv(65536).decode("utf-8", "replace")
        now = int(time.time() * 1000)
        lines = data.split("\n")
        if "READY=1" in lines:
            held = os.path.exists(log) and "Holding etcd lease" in open(log, errors="replace").read()
            f.write("%d\t%s\n" % (now, "ready-after-lease" if held else "ready-before-lease"))
        f.write("%d\t%s\n" % (now, "|".join(lines)))
        f.flush()
PY
        started_pids="$started_pids $!"
}

# A private session bus for FleetState.
dbus-daemon --session --nofork --nopidfile --print-address=1 >"$T/bus-address" 2>/dev/null &
started_pids="$started_pids $!"
wait_for 10 "the private bus serves" test -s "$T/bus-address" || fleet_finish
DBUS_SESSION_BUS_ADDRESS=$(head -n 1 "$T/bus-address")
export DBUS_SESSION_BUS_ADDRESS

fleet_state() {
        busctl --user get-property org.headcount.Manager1 /org/headcount/Manager1 \
                org.headcount.Manager1 FleetState 2>/dev/null
}

# The states a status line may be in: held, late, lost or unreachable.
status_is() {
        local out
        out=$(on "$1" status 2>/dev/null)
        case $2 in
        held) [ "$out" = "lease held" ] ;;
        late) [ "$out" = "renewing late" ] ;;
        gone) [ "$out" = "lease lost" ] || [ "${out#etcd unreachable: }" != "$out" ] ;;
        esac
}

etcd_start 1

# ---- READY=1 after the lease, with STATUS= and FleetState -------------------------------
notify_reader "$T/notify-a" "$T/notify-a.out" "$T/host-a.log"
wait_for 10 "the notify socket listens" test -S "$T/notify-a"
NOTIFY_SOCKET=$T/notify-a
export NOTIFY_SOCKET
host_start a --bus user
unset NOTIFY_SOCKET
wait_for 10 "READY=1 from host a" grep -q 'READY=1' "$T/notify-a.out"
check "READY=1 came after 'Holding etcd lease', not before" \
        grep -q 'ready-after-lease' "$T/notify-a.out"
check "no READY=1 before the lease" sh -c "! grep -q 'ready-before-lease' '$T/notify-a.out'"
check "READY=1's STATUS= says the lease is held" grep -q 'READY=1.*fleet: lease held' "$T/notify-a.out"

expect 0 on a status
same "status while held" "$(cat "$T/out")" "lease held"
wait_for 10 "FleetState says held" sh -c "[ \"\$(busctl --user get-property org.headcount.Manager1 /org/headcount/Manager1 org.headcount.Manager1 FleetState 2>/dev/null)\" = 's \"lease held\"' ]"

# PropertiesChanged for FleetState, seen by a monitor on the bus.
dbus-monitor --session "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'" \
        >"$T/monitor.out" 2>/dev/null &
started_pids="$started_pids $!"
wait_for 10 "dbus-monitor listens" grep -q 'NameAcquired\|member=' "$T/monitor.out"

# ---- etcd stopped: late, then lost or unreachable; back: held ----------------------------
t0=$(now_ms)
etcd_pause
# a keepalive goes every TTL/3 (10 s here) and is late 1 s after it went: 3.4 + 1 s + slack
wait_for 8 "status says renewing late" status_is a late
t_late=$(now_ms)
expect 0 on a status
# lost 2/3 of TTL after the last renewal that succeeded (6.7 s), unreachable after a grant
wait_for 12 "status says lease lost or etcd unreachable" status_is a gone
t_gone=$(now_ms)
expect 69 on a status
echo "late after $((t_late - t0)) ms, lost/unreachable after $((t_gone - t0)) ms"
# STATUS= is sent at most every 100 ms: the last line is there within a second
wait_for 5 "STATUS= said renewing late" grep -q 'STATUS=.*fleet: renewing late' "$T/notify-a.out"
wait_for 5 "STATUS= said lost or unreachable" \
        grep -Eq 'STATUS=.*fleet: (lease lost|etcd unreachable: )' "$T/notify-a.out"
check "no seats counted while no lease" \
        sh -c "! grep -Eq 'fleet: (lease lost|etcd unreachable).*seats? held' '$T/notify-a.out'"
wait_for 5 "FleetState is no longer held" sh -c "busctl --user get-property org.headcount.Manager1 /org/headcount/Manager1 org.headcount.Manager1 FleetState | grep -Eq 'lease lost|etcd unreachable'"
wait_for 5 "PropertiesChanged carried renewing late" grep -q '"renewing late"' "$T/monitor.out"

etcd_resume
wait_for 15 "status says held again after SIGCONT" status_is a held
wait_for 5 "STATUS= said held again" sh -c "tail -n 1 '$T/notify-a.out' | grep -q 'fleet: lease held'"
wait_for 5 "FleetState says held again" sh -c "[ \"\$(busctl --user get-property org.headcount.Manager1 /org/headcount/Manager1 org.headcount.Manager1 FleetState 2>/dev/null)\" = 's \"lease held\"' ]"

# ---- the main thread frozen: the lease does not notice ------------------------------------
# The agent runs in a thread of its own ("hcd-fleet"). A ptrace stop of the main thread
# alone (what the worst region work looks like to the lease) for 3 TTLs of host d
# (--ttl 2: lost after 1.3 s without renewal) leaves the lease held and STATUS answered.
host_start d --ttl 2
wait_for 10 "host d holds its lease" status_is d held
pid=${HOST_PID[d]}
check "the agent runs in its own thread" grep -qx hcd-fleet /proc/"$pid"/task/*/comm
cat >"$T/freeze.py" <<'PY'
# freeze.py TID SECONDS: stops one thread (PTRACE_SEIZE, PTRACE_INTERRUPT) for SECONDS,
# then detaches; the process's other threads run on. Exit 77 when ptrace is not allowed.
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
tid, secs = int(sys.argv[1]), float(sys.argv[2])
if libc.ptrace(0x4206, tid, None, None) < 0:
    sys.exit(77)
libc.ptrace(0x4207, tid, None, None)
os.waitpid(tid, 0x40000000)
open(sys.argv[3], "w").write("stopped\n")
time.sleep(secs)
libc.ptrace(17, tid, None, None)
PY
python3 "$T/freeze.py" "$pid" 6 "$T/frozen" &
freezer=$!
started_pids="$started_pids $freezer"
wait_for 5 "the main thread is stopped" sh -c "[ -s '$T/frozen' ] || ! kill -0 $freezer 2>/dev/null"
if [ -s "$T/frozen" ]; then
        polls=0 not_held=0
        while running "$freezer"; do
                polls=$((polls + 1))
                status_is d held || not_held=$((not_held + 1))
                sleep 0.2
        done
        echo "main thread stopped for 6 s (3 TTLs): $polls status polls, $not_held not held"
        same "status polls not 'lease held' while the main thread was stopped" "$not_held" 0
        check "some status polls were answered meanwhile" [ "$polls" -ge 5 ]
        check "no lease lost on host d" sh -c "! grep -q 'Lost etcd lease' '$T/host-d.log'"
else
        echo "SKIP part: ptrace is not allowed here" >&2
fi

# ---- SIGTERM: the fleet thread revokes the lease, then the daemon exits --------------------
hold d run --max 1 stopme -- sleep 1000
keys_are() { [ "$(seat_keys "$1")" = "$2" ]; }
wait_for 10 "a seat held on host d" keys_are stopme 1
t0=$(now_ms)
kill -TERM "${HOST_PID[d]}"
wait "${HOST_PID[d]}"
same "headcountd's exit status after SIGTERM" "$?" 0
t1=$(now_ms)
echo "host d stopped $((t1 - t0)) ms after SIGTERM"
check "headcountd stopped within 3 s of SIGTERM" [ $((t1 - t0)) -lt 3000 ]
same "seat keys left by the stopped host (its lease was revoked)" "$(seat_keys stopme)" 0

# ---- joins while etcd is down ------------------------------------------------------------
etcd_stop_all
t0=$(now_ms)
expect 69 on a run once -- true
t1=$(now_ms)
check "a try-once join fails at once ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 2000 ]
contains "$T/err" "etcd"

HEADCOUNT_DIR=${HOST_DIR[a]} "$HEADCOUNT" --fleet run --wait=10 --max 1 later -- \
        sh -c 'date +%s%3N >"$T/admitted"' >"$T/waiter.out" 2>&1 &
waiter=$!
started_pids="$started_pids $waiter"
sleep 2                                 # the outage itself: etcd comes back 2 s later
check "the waiting join still waits after 2 s" running "$waiter"
etcd_start_again
t_back=$(now_ms)
wait_for 12 "the waiting join is admitted once etcd is back" test -s "$T/admitted"
wait "$waiter"
same "the waiting join's exit status" "$?" 0
[ -s "$T/admitted" ] && echo "admitted $(($(cat "$T/admitted") - t_back)) ms after etcd was back"
[ -s "$T/waiter.out" ] && sed 's/^/  waiter: /' "$T/waiter.out" >&2

# ---- etcd away from the start: READY=1 after --etcd-timeout, STATUS= saying why ----------
read -r dead_port <<<"$(free_ports 1)"
notify_reader "$T/notify-b" "$T/notify-b.out" "$T/host-b.log"
wait_for 10 "the notify socket listens" test -S "$T/notify-b"
NOTIFY_SOCKET=$T/notify-b
export NOTIFY_SOCKET
t0=$(now_ms)
host_start b --etcd "http://127.0.0.1:$dead_port" --etcd-timeout 2
unset NOTIFY_SOCKET
wait_for 10 "READY=1 from host b" grep -q 'READY=1' "$T/notify-b.out"
t_ready=$(grep 'READY=1' "$T/notify-b.out" | head -n 1 | cut -f 1)
echo "READY=1 without etcd after $((t_ready - t0)) ms (--etcd-timeout 2)"
check "READY=1 without etcd waited for --etcd-timeout" [ $((t_ready - t0)) -ge 1900 ]
check "READY=1 without etcd says why in STATUS=" \
        grep -q "READY=1.*STATUS=.*fleet: etcd unreachable: .*127.0.0.1:$dead_port" "$T/notify-b.out"
expect 69 on b status
contains "$T/out" "etcd unreachable"

# ---- without --etcd, READY=1 at once ------------------------------------------------------
notify_reader "$T/notify-c" "$T/notify-c.out" "$T/host-c.log"
wait_for 10 "the notify socket listens" test -S "$T/notify-c"
mkdir -m 0700 "$T/host-c"
NOTIFY_SOCKET=$T/notify-c "$HEADCOUNTD" --dir "$T/host-c" --bus=none --log-target stderr \
        >"$T/host-c.log" 2>&1 &
started_pids="$started_pids $!"
wait_for 10 "READY=1 without --etcd" grep -q 'READY=1' "$T/notify-c.out"
check "no fleet in STATUS= without --etcd" sh -c "! grep -q 'fleet' '$T/notify-c.out'"
expect 64 "$HEADCOUNT" --dir "$T/host-c" status

fleet_finish
