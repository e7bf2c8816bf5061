#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 'headcount --fleet run --on-lost': when the host's agent cannot renew its etcd lease (etcd
# stopped with SIGSTOP), CMD gets SIGTERM (term, the default), SIGKILL after --kill-after,
# or SIGKILL at once (kill), and the wrapper exits 69; with ignore a warning, and CMD runs
# on. CMD sees its fence in HEADCOUNT_FENCE. A real etcd and a real headcountd --etcd, on
# free loopback ports; skips when either is missing.
. "${srcdir:-.}/tests/cli/lib.sh"
events_open

ETCD=${ETCD:-/usr/bin/etcd}
ETCDCTL=${ETCDCTL:-/usr/bin/etcdctl}
HEADCOUNTD=${HEADCOUNTD:-$top_builddir/daemon/headcountd}
if [ ! -x "$ETCD" ] || [ ! -x "$ETCDCTL" ] || [ ! -x "$HEADCOUNTD" ] ||
   ! command -v python3 >/dev/null || ! "$HEADCOUNTD" --help | grep -q -- --etcd; then
        echo "SKIP: needs $ETCD, $ETCDCTL, python3 and a headcountd built with the fleet agent" >&2
        exit 77
fi

# etcd from the tests' one launcher (tests/common/etcd.sh): free loopback ports, tried
# again on others when one was taken; its pid is tracked, so it dies with the test.
ETCD_TOP=$T/etcd
mkdir -m 0700 "$ETCD_TOP"
. "${srcdir:-.}/tests/common/etcd.sh"
etcd_start 1
for p in $started_pids; do
        track "$p"
done
etcd=${ETCD_PIDS[0]}
url=$ETCD_ENDPOINTS
"$HEADCOUNTD" --dir "$D" --bus=none --log-target=stderr --etcd "$url" --host h1 --ttl 3 \
        2>"$T/headcountd.log" &
agent=$!
track $agent

# fleet_ready: waits until the agent serves the fleet scope through etcd (60 s at most).
fleet_ready() {
        local i
        for i in $(seq 600); do
                hc --fleet count probe >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        fail "the fleet scope is not served: $(tail -3 "$T/headcountd.log")"
        exit 1
}

# lose: stops etcd until the agent has told its holders (the wrapper has ended), then
# lets it go on and waits until the fleet is served again.
lose() {
        local i
        kill -STOP $etcd
        for i in $(seq 600); do
                kill -0 $wrapper 2>/dev/null || break
                sleep 0.1
        done
        if kill -0 $wrapper 2>/dev/null; then
                kill -CONT $etcd
                fail "the wrapper still runs 60 s after etcd stopped"
                exit 1
        fi
        wait $wrapper
        status=$?
        kill -CONT $etcd
        fleet_ready
}

fleet_ready

# term (the default): SIGTERM to CMD, which ends; exit 69. CMD had its fence.
"$HEADCOUNT" --fleet run lost -- sh -c '
        trap "echo term >&3; exit 0" TERM
        echo "$$ ${HEADCOUNT_FENCE:-none}" >&3
        while :; do sleep 0.1; done' 2>"$T/wrapper.err" &
wrapper=$!
track $wrapper
next_event
read -r cmd fence <<<"$event"
track "$cmd"
same "HEADCOUNT_FENCE is a number" "$(case $fence in *[!0-9]* | "") echo no ;; *) echo yes ;; esac)" yes
# The wrapper tells the agent CMD's pid after the exec, so CMD may speak first: poll.
listed_lost() {
        hc --fleet list lost >"$T/out" 2>"$T/err" && grep -qF -- "$cmd" "$T/out"
}
wait_for 60 "'headcount --fleet list lost' names CMD (pid $cmd)" listed_lost
lose
same "term: exit status" $status 69
next_event
same "term: CMD got SIGTERM" "$event" term
contains "$T/wrapper.err" "lost the fleet seat in region 'lost'"

# term with a CMD that ignores SIGTERM: SIGKILL after --kill-after.
"$HEADCOUNT" --fleet run --kill-after 0.5 stubborn -- sh -c '
        trap "" TERM; echo "$$" >&3; while :; do sleep 0.1; done' 2>/dev/null &
wrapper=$!
track $wrapper
next_event
cmd=$event
track "$cmd"
lose
same "stubborn: exit status" $status 69
kill -0 "$cmd" 2>/dev/null
same "stubborn: CMD was killed" $? 1

# kill: SIGKILL at once, whatever CMD traps.
"$HEADCOUNT" --fleet run --on-lost=kill killed -- sh -c '
        trap "echo term >&3" TERM; echo "$$" >&3; while :; do sleep 0.1; done' 2>/dev/null &
wrapper=$!
track $wrapper
next_event
cmd=$event
track "$cmd"
lose
same "kill: exit status" $status 69
kill -0 "$cmd" 2>/dev/null
same "kill: CMD was killed" $? 1

# ignore: a warning, and CMD runs on.
"$HEADCOUNT" --fleet run --on-lost=ignore ignored -- sh -c '
        echo "$$" >&3; read _ <"$T/gate"; echo done >&3' 2>"$T/wrapper.err" &
wrapper=$!
track $wrapper
next_event
kill -STOP $etcd
for i in $(seq 600); do
        grep -q warning "$T/wrapper.err" && break
        sleep 0.1
done
kill -CONT $etcd
contains "$T/wrapper.err" "warning: lost the fleet seat in region 'ignored'"
kill -0 $wrapper 2>/dev/null
same "ignore: the wrapper runs on" $? 0
release 1
next_event
same "ignore: CMD ran on" "$event" done
wait $wrapper
same "ignore: CMD's status" $? 0

# The options check their scope.
usage_fails "--on-lost applies to the fleet scope only" hc run --on-lost=kill web -- true
usage_fails "invalid --on-lost value 'maybe'" hc --fleet run --on-lost=maybe web -- true
usage_fails "--replace does not apply to the fleet scope" hc --fleet run --replace web -- true

finish
