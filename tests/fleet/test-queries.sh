#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# count, list, names, wait and remove of the fleet scope give the same exact answers on
# every host; list names each seat's host, pid and fence (HEADCOUNT_FENCE of its command),
# in rank order with growing fences; waiters are not counted.
. "${srcdir:-.}/tests/fleet/lib.sh"
fleet_events
etcd_start 1
host_start a
host_start b
host_start c

for h in a b c; do
        expect 0 on $h count q && same "count from $h before any join" "$(cat "$T/out")" 0
        expect 0 on $h list --json q && same "empty list from $h" "$(json_len "$T/out")" 0
done

# Three seats of q (two on a, one on b), one of r on c.
declare -A cmd_host=() cmd_fence=() holder=()
for spec in a:q1 b:q2 a:q3; do
        h=${spec%%:*} label=${spec#*:}
        hold $h run --max 5 --tag "tag $label" q -- "$T/hold.sh" "$label"
        holder[$label]=$!
        expect_event "$label admitted" "$label * *"
        read -r _ pid fence <<<"$event"
        cmd_host[$pid]=$h
        cmd_fence[$pid]=$fence
done
hold c run --max 1 r -- "$T/hold.sh" r1
holder[r1]=$!
expect_event "r1 admitted" "r1 * *"

for h in a b c; do
        same "count of q from $h" "$(fleet_count $h q)" 3
        same "count of r from $h" "$(fleet_count $h r)" 1
        expect 0 on $h list q
        for pid in "${!cmd_host[@]}"; do
                contains "$T/out" "$pid"
        done
        expect 0 on $h list --json q
        cp "$T/out" "$T/list-$h.json"
done
same "list --json the same from every host (but for order of keys)" \
        "$(python3 -c 'import json,sys; print(len({json.dumps(json.load(open(f)), sort_keys=True) for f in sys.argv[1:]}))' "$T"/list-[abc].json)" 1

want=""
for pid in "${!cmd_host[@]}"; do
        want="$want $pid:${cmd_host[$pid]}:${cmd_fence[$pid]}"
done
checks=$((checks + 1))
if ! why=$(python3 - "$T/list-a.json" "$want" 2>&1 <<'PY'
import json, sys
seats = json.load(open(sys.argv[1]))["instances"]
want = {int(p): (h, int(f)) for p, h, f in (w.split(":") for w in sys.argv[2].split())}
assert isinstance(seats, list) and len(seats) == 3, "3 seats expected: %r" % seats
keys = ["rank", "host", "pid", "uid", "joined", "tag", "fence", "flags"]
assert all(list(s) == keys for s in seats), "keys are not %r: %r" % (keys, seats)
for s in seats:
    for k in ("host", "fence", "pid"):
        assert k in s, "no %r in %r" % (k, s)
fences = [int(s["fence"]) for s in seats]
assert fences == sorted(fences) and len(set(fences)) == 3, "fences not strictly increasing in rank order: %r" % fences
for s in seats:
    pid = int(s["pid"])
    assert pid in want, "pid %d is none of the commands %r" % (pid, sorted(want))
    assert s["host"] == want[pid][0], "pid %d listed on host %r, runs on %r" % (pid, s["host"], want[pid][0])
    assert int(s["fence"]) == want[pid][1], "pid %d: fence %s listed, HEADCOUNT_FENCE was %d" % (pid, s["fence"], want[pid][1])
tags = sorted(s.get("tag") for s in seats)
assert tags == ["tag q1", "tag q2", "tag q3"], "tags: %r" % tags
PY
); then
        fail "list --json: $(echo "$why" | tail -1)"
fi

expect 0 on b names
contains "$T/out" "q"
contains "$T/out" "r"
expect 0 on b names --json
checks=$((checks + 1))
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert list(d) == ["regions"] and all(list(o) == ["name", "count"] for o in d["regions"]), d
names = {o["name"]: o for o in d["regions"]}
assert set(names) >= {"q", "r"}, names
assert names["q"]["count"] == 3 and names["r"]["count"] == 1, names
' "$T/out" || fail "names --json does not say q 3, r 1: $(cat "$T/out")"

# A waiter holds a key but no seat: not counted, not listed.
hold a run --max 1 --wait=120 r -- "$T/hold.sh" r2
wait_for 30 "the waiter on r is queued" eval '[ "$(seat_keys r)" = 2 ]'
for h in a b c; do
        same "count of r from $h with a waiter" "$(fleet_count $h r)" 1
        expect 0 on $h list --json r && same "seats of r listed from $h with a waiter" "$(json_len "$T/out")" 1
done

# The waiter gets the seat when its holder is killed, from another host.
kill_tree KILL "${holder[r1]}"
expect_event "the waiter on r is admitted once r1 died" "r2 * *"
same "count of r after r1 died" "$(fleet_count b r)" 1

# wait --below: times out while 3 run, returns 0 once one leaves.
expect 124 on c wait q --below 3 --timeout 0.3
expect 0 on c wait q --below 4 --timeout 5
hold c wait q --below 3 --timeout 120
waiter=$!
expect 1 on b remove q                          # seats are held: EBUSY, and nothing removed
same "count of q after a refused remove" "$(fleet_count a q)" 3
check "the waiter waits" running $waiter
kill_tree TERM "${holder[q2]}"
wait "${holder[q2]}"
wait "$waiter"
same "status of 'wait --below 3' once a seat of q was freed" $? 0
same "count of q after q2 left" "$(fleet_count c q)" 2
release 10
wait_for 30 "every seat of q is free" count_is b q 0
wait_for 30 "every seat of r is free" count_is b r 0
# q was made by a join: its definition goes with its last seat, and nothing is left to remove
wait_for 10 "q's definition goes with its last seat" eval \
        '[ -z "$(ectl get --print-value-only "${FLEET_PREFIX}q/max")" ]'
expect 1 on c remove q
contains "$T/err" "no fleet name 'q'"
expect 0 on a names --json
checks=$((checks + 1))
python3 -c 'import json,sys; assert "q" not in {o["name"] for o in json.load(open(sys.argv[1]))["regions"]}' "$T/out" ||
        fail "q is still named after remove: $(cat "$T/out")"

fleet_finish
