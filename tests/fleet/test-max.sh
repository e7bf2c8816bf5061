#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# --max N holds across hosts: three hosts launch three commands each at once with --max 2,
# exactly two run and the seven others exit 75; with --wait, waiters from every host are
# admitted in the order they queued, one per freed seat, with growing fences.
. "${srcdir:-.}/tests/fleet/lib.sh"
fleet_events
etcd_start 1
host_start a
host_start b
host_start c

# Nine at once, --max 2: two run, seven are told the name is full.
launched=()
for h in a b c; do
        for i in 1 2 3; do
                hold $h run --max 2 cap -- "$T/hold.sh" "$h$i"
                launched+=($!)
        done
done
count_exited() {
        local p n=0
        for p in "${launched[@]}"; do
                exited "$p" && n=$((n + 1))
        done
        [ "$n" -ge "$1" ]
}
wait_for 60 "seven of nine launches exit" count_exited 7
expect_event "first admitted" "[abc][123] * *"
expect_event "second admitted" "[abc][123] * *"
busy=0 other=0 alive=()
for p in "${launched[@]}"; do
        if running "$p"; then
                alive+=("$p")
                continue
        fi
        wait "$p"
        case $? in
        75) busy=$((busy + 1)) ;;
        *) other=$((other + 1)) ;;
        esac
done
same "launches that exited 75" "$busy" 7
same "launches that exited otherwise" "$other" 0
same "launches still running" "${#alive[@]}" 2
for h in a b c; do
        same "count from $h with two held" "$(fleet_count $h cap)" 2
done
same "seat keys with two held" "$(seat_keys cap)" 2
expect 75 on c run --max 2 cap -- true
contains "$T/err" "cap"
release 2
for p in "${alive[@]}"; do
        wait "$p"
        same "status of a holder that was released" $? 0
done
wait_for 10 "the count falls to 0" count_is a cap 0
same "seat keys when nobody holds" "$(seat_keys cap)" 0

# Waiting: two holders, then four waiters from three hosts, each queued before the next
# starts; each freed seat admits the earliest waiter.
hold a run --max 2 cap -- "$T/hold.sh" H1
expect_event "H1 admitted" "H1 * *"
fences=("${event##* }")
hold b run --max 2 cap -- "$T/hold.sh" H2
expect_event "H2 admitted" "H2 * *"
fences+=("${event##* }")
order="W1:c W2:a W3:b W4:c"
k=2
for w in $order; do
        hold "${w#*:}" run --max 2 --wait=120 cap -- "$T/hold.sh" "${w%:*}"
        k=$((k + 1))
        wait_for 30 "${w%:*} is queued (seat keys: $k)" eval '[ "$(seat_keys cap)" = '$k' ]'
done
for h in a b c; do
        same "count from $h with two held and four waiting" "$(fleet_count $h cap)" 2
        expect 0 on $h list --json cap
        same "seats listed from $h with four waiting" "$(json_len "$T/out")" 2
done
for w in $order; do
        release 1               # one of the holders leaves
        expect_event "admission after a seat was freed" "${w%:*} * *"
        fences+=("${event##* }")
done
same "count once every waiter is in" "$(fleet_count b cap)" 2
release 2
wait_for 10 "the count falls to 0 after the waiters" count_is c cap 0
wait_for 10 "no seat key is left" eval '[ "$(seat_keys cap)" = 0 ]'

# Fences grow with each admission.
prev=0
for f in "${fences[@]}"; do
        checks=$((checks + 1))
        if ! [[ $f =~ ^[0-9]+$ ]] || [ "$f" -le "$prev" ]; then
                fail "fences of successive admissions do not grow: ${fences[*]}"
                break
        fi
        prev=$f
done

fleet_finish
