#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# etcd's failures, on a cluster of three members:
#  - the leader is killed while seats are held and joins come and go: no seat is lost, no
#    command is admitted beyond N, every holder keeps running;
#  - every member is killed: the holders are told, and 'run' stops its command with
#    SIGTERM before the lease's TTL has passed, then exits 69;
#  - etcd comes back: new joins work, up to N at once, and what the lost seats left in etcd
#    goes away by itself (one lease per host, no seat key).
. "${srcdir:-.}/tests/fleet/lib.sh"
fleet_events
etcd_start 3
ttl=9
for h in a b c; do
        host_start $h --ttl $ttl
done
export HOLD_CHECK=3                             # hold.sh records more than 3 at once

# Two long holders, then three hosts join and leave again and again with --max 3 --wait
# (one seat for all of them) while the leader dies.
hold a run --max 3 lk -- "$T/hold.sh" L1
l1=$!
expect_event "L1 admitted" "L1 * *"
hold b run --max 3 lk -- "$T/hold.sh" L2
l2=$!
expect_event "L2 admitted" "L2 * *"
exec 3>&-                                       # the joiners' events are not read
exec 3>/dev/null
joiners=()
for h in a b c; do
        (
                for i in 1 2 3 4 5 6; do
                        HOLD_FOR=0.1 on $h run --max 3 --wait=120 lk -- "$T/hold.sh" "J$h$i" 2>>"$T/join-errors"
                        echo "$h$i $?" >>"$T/joins"
                done
        ) &
        joiners+=($!)
        started_pids="$started_pids $!"
done
wait_for 60 "two joins are done before the leader dies" eval '[ "$(cat "$T/joins" 2>/dev/null | wc -l)" -ge 2 ]'
leader=$(etcd_leader_index)
check "a leader is found" [ -n "$leader" ]
etcd_kill "$leader"
for p in "${joiners[@]}"; do
        wait "$p"
done
# A join may fail with 69 while no member leads (the agent gives up at --etcd-timeout,
# naming the endpoint); any other status, or none admitted after the kill, is a failure.
same "joins done" "$(wc -l <"$T/joins")" 18
same "joins that failed otherwise than 0 or 69" "$(grep -cv -e ' 0$' -e ' 69$' "$T/joins")" 0
check "joins are admitted after the leader died" [ "$(tail -n 3 "$T/joins" | grep -c ' 0$')" -ge 1 ]
if grep -q ' 69$' "$T/joins"; then
        echo "note: $(grep -c ' 69$' "$T/joins") of 18 joins exited 69 during the election:"
        sed 's/^/  join: /' "$T/join-errors"
        checks=$((checks + 1))
        grep -q "etcd at http://127.0.0.1:" "$T/join-errors" ||
                fail "a join exited 69 without naming the endpoint"
fi
check "no more than 3 commands held at once: $(cat "$T/violations" 2>/dev/null)" [ ! -s "$T/violations" ]
check "L1 keeps running" running $l1
check "L2 keeps running" running $l2
check "L1 was not told to stop" [ ! -e "$T/term-L1" ]
check "L2 was not told to stop" [ ! -e "$T/term-L2" ]
for h in a b c; do
        same "count from $h after the leader died" "$(fleet_count $h lk)" 2
done
same "seat keys after the leader died" "$(seat_keys lk)" 2
etcd_start_again

# Every member dies: both holders are stopped by SIGTERM before the TTL runs out; 'run'
# exits 69. Time from the kill of the last member to the command's trap.
t0=$(now_ms)
etcd_stop_all
wait_for $((ttl + 10)) "L1 and L2 are told to stop" eval '[ -e "$T/term-L1" ] && [ -e "$T/term-L2" ]'
for l in L1 L2; do
        if [ -e "$T/term-$l" ]; then
                dt=$(($(cat "$T/term-$l") - t0))
                echo "$l got SIGTERM $dt ms after etcd died (TTL $ttl s)"
                check "$l got SIGTERM before the TTL ran out ($dt ms)" [ "$dt" -lt $((ttl * 1000)) ]
        fi
done
for l in l1 l2; do
        p=${!l}
        if wait_for 20 "run ($l) exits once its seat was lost" exited "$p"; then
                wait "$p"
                same "status of run whose seat was lost ($l)" $? 69
        else
                kill_tree KILL "$p"
                wait "$p"
        fi
done
rm -f "$T/in"/*

# etcd is back: new joins get seats, three at once, with no cleanup by hand.
etcd_start_again
exec 3>&-
exec 3<>"$T/events"
for h in a b c; do
        hold $h run --max 3 --wait=60 lk -- "$T/hold.sh" "N$h"
done
for i in 1 2 3; do
        expect_event "a join after etcd came back" "N[abc] * *"
done
for h in a b c; do
        same "count from $h after etcd came back" "$(fleet_count $h lk)" 3
done
release 3
wait_for 30 "the new seats are freed" count_is a lk 0
wait_for $((ttl + 10)) "no seat key is left" eval '[ "$(seat_keys lk)" = 0 ]'
leases() {
        ectl lease list 2>/dev/null | grep -c '^[0-9a-f]\+$'
}
wait_for $((ttl + 10)) "one lease per host is left" eval '[ "$(leases)" = 3 ]'
same "leases once the lost ones expired" "$(leases)" 3
check "no more than 3 commands held at once: $(cat "$T/violations" 2>/dev/null)" [ ! -s "$T/violations" ]

fleet_finish
