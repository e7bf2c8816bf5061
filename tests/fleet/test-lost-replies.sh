#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Lost replies and retries: etcd is stopped (SIGSTOP) while a join's request is on its
# way, so that etcd applies it later or never and its answer reaches nobody in time. Then
# no key may be left that fills the limit for good: after etcd goes on, N joins succeed.
#  1. the join times out (the agent gives up at --etcd-timeout): exit 69, then --max 1
#     is free again;
#  2. the join's client is killed while etcd is stopped: once etcd goes on, the agent's
#     late OK is for nobody, and the seat must be deleted;
#  3. a join with --wait survives a pause shorter than the lease's life.
. "${srcdir:-.}/tests/fleet/lib.sh"
fleet_events
etcd_start 1
host_start a --ttl 6 --etcd-timeout 2
host_start b --ttl 6 --etcd-timeout 2
port=${ETCD_CLIENT_PORTS[0]}

# queued: bytes wait in etcd's socket buffers, unread (etcd is stopped): a request is there.
queued() {
        ss -Htn state established "( sport = :$port )" 2>/dev/null |
                awk '$1 > 0 { found = 1 } END { exit !found }'
}

# n_join NAME N: N commands get a seat of NAME (--max N) at once, waiting at most 20 s.
n_join() {
        local name=$1 n=$2 i h
        for ((i = 1; i <= n; i++)); do
                h=$([ $((i % 2)) = 0 ] && echo a || echo b)
                hold $h run --max "$n" --wait=20 "$name" -- "$T/hold.sh" "$name-$i"
        done
        for ((i = 1; i <= n; i++)); do
                expect_event "$name: join $i of $n after the lost reply" "$name-* * *"
        done
        same "count of $name with $n joined" "$(fleet_count a "$name")" "$n"
        release "$n"
        wait_for 20 "$name's seats are freed" count_is b "$name" 0
}

# 1. The agent's deadline passes while etcd is stopped.
etcd_pause
t0=$(now_ms)
expect 69 on a run --max 1 lost1 -- true
elapsed=$(($(now_ms) - t0))
contains "$T/err" "127.0.0.1:$port"
check "the join gave up within the etcd timeout, 2 s (+3 s for a loaded machine): $elapsed ms" \
        [ "$elapsed" -le 5000 ]
etcd_resume
n_join lost1 1

# 2. The client dies while its request waits in etcd's socket.
etcd_pause
hold a run --max 2 --wait=60 lost2 -- "$T/hold.sh" never
client=$!
wait_for 10 "the join's request waits in etcd's socket" queued
kill_tree KILL $client
wait $client 2>/dev/null
etcd_resume
n_join lost2 2
wait_for 20 "no seat key of lost2 is left" eval '[ "$(seat_keys lost2)" = 0 ]'

# 2b. The same with a join that would have been refused (the name is full): its key must
# not stay either.
hold b run --max 1 lost3 -- "$T/hold.sh" full
expect_event "lost3 held" "full * *"
etcd_pause
hold a run --max 1 --wait=60 lost3 -- "$T/hold.sh" never
client=$!
wait_for 10 "the second join's request waits in etcd's socket" queued
kill_tree KILL $client
wait $client 2>/dev/null
etcd_resume
release 1
wait_for 20 "lost3's seat is freed" count_is a lost3 0
n_join lost3 1

# 3. A waiting join survives a pause: it is admitted once etcd goes on.
etcd_pause
hold b run --max 1 --wait=60 lost4 -- "$T/hold.sh" paused
joiner=$!
wait_for 10 "the waiting join's request waits in etcd's socket" queued
etcd_resume
expect_event "the join made during the pause" "paused * *"
release 1
wait $joiner
same "status of the join made during the pause" $? 0

for name in lost1 lost2 lost3 lost4; do
        same "seat keys of $name at the end" "$(seat_keys $name)" 0
done
check "no command was told to stop" eval '! ls "$T"/term-* >/dev/null 2>&1'

fleet_finish
