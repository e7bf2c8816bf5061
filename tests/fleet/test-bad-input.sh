#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# What goes wrong around the fleet scope says so in one line: malformed endpoints (usage
# error), an etcd that refuses connections or does not answer (exit 69 within the etcd
# timeout, naming the endpoint), no headcountd (exit 69, saying how to start one), callers
# that disagree on N (exit 1 naming both), bad names and tags (usage errors, as for the
# local scope). Hosts on different prefixes do not see each other.
. "${srcdir:-.}/tests/fleet/lib.sh"
fleet_events
etcd_start 1

# headcountd refuses malformed options at once, with a usage error.
mkdir -m 0700 "$T/bad"
for etcd in nonsense "" "http://" "ftp://127.0.0.1:1"; do
        expect 64 timeout 20 "$HEADCOUNTD" --dir "$T/bad" --bus=none --log-target stderr \
                --host x --etcd "$etcd"
        contains "$T/err" "etcd"
done
expect 64 timeout 20 "$HEADCOUNTD" --dir "$T/bad" --bus=none --log-target stderr \
        --host x --etcd "$ETCD_ENDPOINTS" --ttl nonsense
expect 64 timeout 20 "$HEADCOUNTD" --dir "$T/bad" --bus=none --log-target stderr \
        --host x --etcd "$ETCD_ENDPOINTS" --etcd-timeout -1
expect 64 timeout 20 "$HEADCOUNTD" --dir "$T/bad" --bus=none --log-target stderr \
        --host "a/b c" --etcd "$ETCD_ENDPOINTS"
check "no fleet socket after refused options" [ ! -e "$T/bad/.headcountd.fleet" ]

# No headcountd serves the fleet scope of $D: exit 69 with the way to start one, and CMD
# does not run.
expect 69 hc --fleet count x && one_error_line ""
contains "$T/err" "headcountd"
contains "$T/err" "--etcd"
expect 69 hc --fleet run x -- touch "$T/ran"
check "the command did not run without a headcountd" [ ! -e "$T/ran" ]
expect 69 hc --fleet list x
expect 69 hc --fleet names

# Nobody listens on the endpoint: the daemon serves, and every call says which endpoint.
read -r dead_port <<<"$(free_ports 1)"
host_start u --etcd "http://127.0.0.1:$dead_port" --etcd-timeout 2
t0=$(now_ms)
expect 69 on u run x -- touch "$T/ran"
elapsed=$(($(now_ms) - t0))
one_error_line ""
contains "$T/err" "127.0.0.1:$dead_port"
check "the command did not run without etcd" [ ! -e "$T/ran" ]
check "the call gave up within the etcd timeout, 2 s (+3 s for a loaded machine): $elapsed ms" \
        [ "$elapsed" -le 5000 ]
expect 69 on u count x
contains "$T/err" "127.0.0.1:$dead_port"
host_stop u

# etcd answers nothing (stopped): the same within the etcd timeout.
host_start s --etcd "$ETCD_ENDPOINTS" --etcd-timeout 2
etcd_pause
t0=$(now_ms)
expect 69 on s run x -- touch "$T/ran"
elapsed=$(($(now_ms) - t0))
contains "$T/err" "127.0.0.1:${ETCD_CLIENT_PORTS[0]}"
check "the command did not run while etcd was stopped" [ ! -e "$T/ran" ]
check "the call gave up within the etcd timeout, 2 s (+3 s for a loaded machine): $elapsed ms" \
        [ "$elapsed" -le 5000 ]
etcd_resume
host_stop s

# Two prefixes are two fleets.
host_start p1 --etcd-prefix /one/
host_start p2 --etcd-prefix /two/
hold p1 run --max 1 pre -- "$T/hold.sh" one
expect_event "held under /one/" "one * *"
same "count under /one/" "$(fleet_count p1 pre)" 1
same "count under /two/" "$(fleet_count p2 pre)" 0
expect 0 on p2 run --max 1 pre -- true          # its own seat, under its own prefix
expect 0 ectl get --prefix --keys-only /one/pre/s/
check "the seat is under /one/" [ -s "$T/out" ]
release 1
wait_for 10 "the seat under /one/ is freed" count_is p1 pre 0

# Disagreeing N: exit 1, naming both numbers; the seat of the first caller is kept.
host_start a
host_start b
hold a run --max 2 dn -- "$T/hold.sh" dn
expect_event "held with --max 2" "dn * *"
expect 1 on b run --max 3 dn -- touch "$T/ran" && one_error_line ""
contains "$T/err" "2"
contains "$T/err" "3"
check "a command with another N did not run" [ ! -e "$T/ran" ]
expect 0 on b run --max 2 dn -- true
# run's LEAVE is not waited for: the key goes one etcd round trip after run exits
wait_for 10 "the count after a disagreeing join is 1" count_is a dn 1
release 1
wait_for 10 "the seat of dn is freed" count_is a dn 0

# Bad names and tags: usage errors, as for the local scope, and nothing in etcd.
for name in "" .hidden "a/b" "a b" "é" "$(printf 'x%.0s' $(seq 201))" "Local\\" "../x"; do
        usage_fails "invalid name '${name//\\/\\\\}'" on a count "$name"
        usage_fails "invalid name '${name//\\/\\\\}'" on a run "$name" -- true
        usage_fails "invalid name '${name//\\/\\\\}'" on a list "$name"
done
usage_fails "--tag is longer than 64 bytes" on a run --tag "$(printf 't%.0s' $(seq 65))" web -- true
expect 0 ectl get --prefix --keys-only "$FLEET_PREFIX"
# (x's keys may come from the join that etcd applied after its pause; dn's N stays.)
same "keys left in etcd by bad names" \
        "$(grep -v -e "^${FLEET_PREFIX}dn/max\$" -e "^${FLEET_PREFIX}x/" -e '^$' "$T/out")" ""

fleet_finish
