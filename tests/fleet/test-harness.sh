#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The fleet tests' own harness (tests/fleet/lib.sh), which every other fleet test trusts:
# one and three etcd members start and answer, the leader is found and its death is
# survived, a cluster stopped and started again keeps its data, a paused cluster answers
# nothing until it goes on, and nothing it started outlives it.
FLEET_NEED_DAEMON=0
. "${srcdir:-.}/tests/fleet/lib.sh"

# One member: it answers and keeps a key.
etcd_start 1
same "endpoints of one member" "$(echo "$ETCD_ENDPOINTS" | tr ',' '\n' | wc -l)" 1
expect 0 ectl put /t/a one
expect 0 ectl get --print-value-only /t/a && same "value read back" "$(cat "$T/out")" one
same "the leader of one member" "$(etcd_leader)" "${ETCD_PIDS[0]}"
first_pids=("${ETCD_PIDS[@]}")
etcd_stop_all
check "the member exited" exited "${first_pids[0]}"
ECTL_TIMEOUT=1s expect 1 ectl get /t/a          # nobody answers
etcd_start_again
expect 0 ectl get --print-value-only /t/a && same "value after a restart" "$(cat "$T/out")" one
etcd_stop_all

# Three members: a new cluster on other ports and directories.
old_endpoints=$ETCD_ENDPOINTS
etcd_start 3
same "endpoints of three members" "$(echo "$ETCD_ENDPOINTS" | tr ',' '\n' | sort -u | wc -l)" 3
check "a new cluster has new endpoints" [ "$ETCD_ENDPOINTS" != "$old_endpoints" ]
expect 0 ectl put /t/b two
expect 0 ectl get /t/a && same "the old cluster's key is not there" "$(cat "$T/out")" ""
leader=$(etcd_leader)
li=$(etcd_leader_index)
check "a leader is found ($leader, member $li)" [ -n "$leader" ] && [ "$leader" = "${ETCD_PIDS[li]}" ]
etcd_kill "$li"
check "the leader is dead" exited "$leader"
wait_for 30 "a new leader among the other two" etcd_leader_index >/dev/null
new=$(etcd_leader)
check "the new leader ($new) is another member" [ -n "$new" ] && [ "$new" != "$leader" ]
expect 0 ectl put /t/c three                   # a quorum of two still writes
etcd_start_again
wait_for 30 "the old leader is back and healthy" etcd_healthy
expect 0 ectl get --print-value-only /t/c && same "value after the leader's death" "$(cat "$T/out")" three

# Paused: nothing answers (etcdctl gives up at its deadline); resumed: everything does.
etcd_pause
ECTL_TIMEOUT=1s expect 1 ectl get /t/b
etcd_resume
wait_for 30 "the cluster answers after SIGCONT" etcd_healthy
expect 0 ectl get --print-value-only /t/b && same "value after a pause" "$(cat "$T/out")" two

all_pids=("${ETCD_PIDS[@]}" "${first_pids[@]}")
etcd_stop_all
for p in "${all_pids[@]}"; do
        check "member $p is gone after etcd_stop_all" exited "$p"
done

# Everything is killed at exit, the data directories removed: a child test shows it.
cat >"$T/child.sh" <<EOF
FLEET_NEED_DAEMON=0
srcdir=$(cd "${srcdir:-.}" && pwd)
. "\$srcdir/tests/fleet/lib.sh"
etcd_start 1
echo "\${ETCD_PIDS[*]}" >"$T/child-pids"
echo "\$ETCD_TOP" >"$T/child-top"
echo "\$T" >"$T/child-t"
exit 0
EOF
expect 0 bash "$T/child.sh"
for p in $(cat "$T/child-pids"); do
        check "the child's member $p was killed at its exit" wait_gone 30 "$p"
done
check "the child's etcd directory was removed" [ ! -e "$(cat "$T/child-top")" ]
check "the child's test directory was removed" [ ! -e "$(cat "$T/child-t")" ]
check "the child started a member" [ "$(wc -w <"$T/child-pids")" = 1 ]

finish
