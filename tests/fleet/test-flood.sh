#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The fleet agent survives a user who floods its socket. A throwaway user holds 2,000 idle
# connections to an agent whose descriptor limit is 256:
#  - with the per-uid cap (a quarter of the limit by default), the agent keeps room: its
#    CPU stays low, its log gains a handful of lines, root's calls go on during the flood;
#    two users together hold half the limit at most;
#  - with the cap above the limit, accept4() fails with EMFILE: the agent does not spin
#    (CPU, log lines), and root's next call after the flooder is gone succeeds;
#  - and about 20,000 connections hung up at once are released with under 1 s of CPU.
. "${srcdir:-.}/tests/fleet/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root (a throwaway user, descriptor limits)"
command -v useradd >/dev/null && command -v setpriv >/dev/null || skip "needs useradd, setpriv"
PY=/usr/bin/python3
[ -x "$PY" ] || skip "needs $PY"

U=hccf$$
U2=hccg$$
SHARED=$(mktemp -d /tmp/hcc-flood.XXXXXX) || exit 99
chmod 1777 "$SHARED"
flood_cleanup() {
        fleet_cleanup
        userdel "$U" 2>/dev/null
        userdel "$U2" 2>/dev/null
        rm -rf "$SHARED"
}
trap flood_cleanup EXIT
useradd -M -N -d / -s /bin/sh "$U" && useradd -M -N -d / -s /bin/sh "$U2" || exit 99

# The agent under a descriptor limit: a wrapper that sets it and execs (same pid).
REAL_HEADCOUNTD=$HEADCOUNTD
cat >"$T/agent.sh" <<EOF
#!/bin/bash
ulimit -n "\$AGENT_NOFILE" || exit 99
exec "$REAL_HEADCOUNTD" "\$@"
EOF
chmod +x "$T/agent.sh"
HEADCOUNTD=$T/agent.sh

# flood N READY [USER]: N idle connections to the agent's socket as USER (default $U),
# held until killed; READY gets the number it could open. $flooder is its pid.
cat >"$SHARED/flood.py" <<'PY'
import socket, sys, time
path, n, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
held = []
# A full backlog answers a non-blocking connect with EAGAIN at once (AF_UNIX has no
# EINPROGRESS): try again until the agent has taken some, for 2 s at most per connection.
def connect():
    c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    c.setblocking(False)
    end = time.monotonic() + 2
    while True:
        try:
            c.connect(path)
            return c
        except BlockingIOError:
            if time.monotonic() > end:
                break
            time.sleep(0.001)
        except OSError:
            break
    c.close()
    return None
for i in range(n):
    c = connect()
    if c is None:
        break
    held.append(c)
with open(ready + ".tmp", "w") as f:
    f.write("%d\n" % len(held))
import os
os.rename(ready + ".tmp", ready)
time.sleep(3600)
PY
flood() {
        local user=${3:-$U}
        rm -f "$2"
        (ulimit -n $(($1 + 100)) && exec setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups \
                -- "$PY" "$SHARED/flood.py" "$SHARED/.headcountd.fleet" "$1" "$2") &
        flooder=$!
        started_pids="$started_pids $flooder"
        wait_for 60 "the flooder's connections are open" test -s "$2"
}
unflood() {
        kill -KILL "$flooder" 2>/dev/null
        wait "$flooder" 2>/dev/null
}
log_lines() {
        wc -l <"$T/host-$1.log"
}
fds() {
        ls "/proc/$1/fd" | wc -l
}

etcd_start 1

# ---- 1: the per-uid cap keeps room ------------------------------------------------
HOST_DIR[a]=$SHARED
AGENT_NOFILE=256 host_start a
expect 0 on a count warm
lines0=$(log_lines a)
flood 2000 "$SHARED/ready1"
echo "flooder opened $(cat "$SHARED/ready1") connections (agent limit 256)"
ticks0=$(cpu_ticks "${HOST_PID[a]}")
start=$(now_ms)
for i in 1 2 3 4 5; do
        expect 0 timeout 2 env HEADCOUNT_DIR="$SHARED" "$HEADCOUNT" --fleet count during
done
while [ $(($(now_ms) - start)) -lt 5000 ]; do sleep 0.2; done
ticks=$(($(cpu_ticks "${HOST_PID[a]}") - ticks0))
lines=$(($(log_lines a) - lines0))
echo "capped: agent CPU over 5 s of flood: $ticks ticks (HZ $HZ); log lines: $lines"
check "the capped agent's CPU over 5 s of flood is under 1 s" [ "$ticks" -lt "$HZ" ]
check "the capped agent logged a handful of lines ($lines)" [ "$lines" -le 12 ]
contains "$T/host-a.log" "Refused a fleet client of uid $(id -u "$U")"
unflood
start=$(now_ms)
expect 0 timeout 2 env HEADCOUNT_DIR="$SHARED" "$HEADCOUNT" --fleet count after
echo "capped: root's call after the flood took $(($(now_ms) - start)) ms"
host_stop a

# ---- 1b: all users but root together hold half the descriptors at most -------------
AGENT_NOFILE=256 host_start a --fleet-user-connections 100
flood 2000 "$SHARED/ready1b"
first=$flooder
flood 2000 "$SHARED/ready1c" "$U2"
second=$flooder
expect 1 timeout 2 env HEADCOUNT_DIR="$SHARED" setpriv --reuid="$U2" --regid="$(id -g "$U2")" \
        --init-groups -- "$HEADCOUNT" --fleet count during
contains "$T/err" "the fleet agent holds as many connections of users other than root as it may"
expect 0 timeout 2 env HEADCOUNT_DIR="$SHARED" "$HEADCOUNT" --fleet count during
kill -KILL "$first" "$second" 2>/dev/null
wait "$first" "$second" 2>/dev/null
host_stop a

# ---- 2: out of descriptors ---------------------------------------------------------
AGENT_NOFILE=256 host_start a --fleet-user-connections 100000
expect 0 on a count warm
lines0=$(log_lines a)
flood 2000 "$SHARED/ready2"
echo "flooder opened $(cat "$SHARED/ready2") connections (agent limit 256, no cap)"
ticks0=$(cpu_ticks "${HOST_PID[a]}")
start=$(now_ms)
while [ $(($(now_ms) - start)) -lt 5000 ]; do sleep 0.2; done
ticks=$(($(cpu_ticks "${HOST_PID[a]}") - ticks0))
lines=$(($(log_lines a) - lines0))
echo "EMFILE: agent CPU over 5 s of flood: $ticks ticks; log lines: $lines"
check "the agent out of descriptors does not spin" [ "$ticks" -lt "$HZ" ]
check "the agent out of descriptors logged a handful of lines ($lines)" [ "$lines" -le 12 ]
contains "$T/host-a.log" "Cannot accept fleet clients: Too many open files"
unflood
start=$(now_ms)
expect 0 timeout 30 env HEADCOUNT_DIR="$SHARED" "$HEADCOUNT" --fleet count after
echo "EMFILE: root's first call after the flooder died took $(($(now_ms) - start)) ms"
host_stop a

# ---- 3: many connections hung up at once ------------------------------------------
hard=$(ulimit -Hn)
n=$((hard > 20500 ? 20000 : hard - 500))
if [ "$n" -lt 5000 ]; then
        echo "descriptor limit $hard is too low for the hang-up part: left out"
else
        AGENT_NOFILE=$((n + 200)) host_start a --fleet-user-connections 100000
        flood "$n" "$SHARED/ready3"
        got=$(cat "$SHARED/ready3")
        echo "flooder opened $got connections"
        check "the flooder holds $n connections" [ "$got" -eq "$n" ]
        wait_for 30 "the agent holds the flooder's connections" eval '[ "$(fds "${HOST_PID[a]}")" -ge "$n" ]'
        start=$(now_ms)
        ticks0=$(cpu_ticks "${HOST_PID[a]}")
        unflood
        wait_for 60 "the agent released them" eval '[ "$(fds "${HOST_PID[a]}")" -lt 100 ]'
        ticks=$(($(cpu_ticks "${HOST_PID[a]}") - ticks0))
        echo "released $n hung-up connections in $(($(now_ms) - start)) ms, $ticks ticks of CPU"
        # O(1) each: a fraction of a second of CPU; a release that walked every
        # connection for each would take minutes (the wall time depends on the load)
        check "$n hung-up connections released with under 1 s of CPU ($ticks ticks)" [ "$ticks" -lt "$HZ" ]
        start=$(now_ms)
        expect 0 timeout 5 env HEADCOUNT_DIR="$SHARED" "$HEADCOUNT" --fleet count after
        echo "root's next call took $(($(now_ms) - start)) ms"
fi

fleet_finish
