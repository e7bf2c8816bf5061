# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the fleet scope's tests: a private etcd cluster (Debian's /usr/bin/etcd, one or
# three members on free loopback ports, data in a private directory), simulated hosts (one
# headcountd --etcd per host, each with its own local scope directory), and the checks of
# tests/cli/lib.sh (expect, same, contains, fail, finish, the event pipe).
#
#   etcd_start 1|3        start the members, wait until every one is healthy; sets
#                         ETCD_ENDPOINTS (exported) and ETCD_PIDS[]. A secured cluster: set
#                         ETCD_SCHEME=https and ETCD_FLAGS=(--cert-file F ...) first (added
#                         to every member), and ECTL_OPTS=(--cacert F ...) for etcdctl
#   etcd_leader           print the leader member's PID (etcd_leader_index: its index)
#   etcd_stop_all         SIGTERM every member and wait for it (etcd_kill I: SIGKILL one)
#   etcd_start_again      start the same members again on the same ports and directories
#                         (etcd_start_member I: one of them)
#   etcd_pause/etcd_resume  SIGSTOP / SIGCONT every member that runs
#   host_start NAME [OPT...]  start a headcountd for host NAME (OPT: --ttl N, ...), wait
#                         until it serves the fleet scope; HOST_DIR[NAME], HOST_PID[NAME]
#   on NAME ARG...        run 'headcount --fleet ARG...' as a process on host NAME
#   hold NAME ARG...      the same in the background (its own process group), remembered
#                         as a holder of NAME: $! is headcount's pid
#   host_kill NAME        SIGKILL host NAME's headcountd and every holder started through it
#   wait_for SECS WHAT CMD...  (tests/cli/lib.sh) run CMD until it succeeds, at most SECS
#                         seconds; fails the test (naming WHAT) when it never does
#   seat_keys NAME        print the number of seat keys of NAME in etcd (waiters included)
#   pki_make DIR          with openssl: DIR/ca.crt, DIR/server.{crt,key} (for 127.0.0.1)
#                         and DIR/client.{crt,key} (no CommonName); pki_ca DIR NAME and
#                         pki_cert DIR NAME SUBJECT EXTENSIONS [CA] make more
#   etcd_tls_flags DIR    set ETCD_SCHEME, ETCD_FLAGS, ECTL_OPTS for an etcd with DIR's
#                         certificates that wants client certificates
#
# Everything started here is killed by PID (and process group) at exit, however the test
# ends, and every directory is removed. A test skips (77) when etcd or headcountd's fleet
# support is missing.

# The real program rather than libtool's wrapper script, which costs a shell per call.
if [ -z "${HEADCOUNT:-}" ] && [ -x "${top_builddir:-.}/cli/.libs/headcount" ] &&
   [ -d "${top_builddir:-.}/lib/.libs" ]; then
        HEADCOUNT=${top_builddir:-.}/cli/.libs/headcount
        LD_LIBRARY_PATH=${top_builddir:-.}/lib/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        export LD_LIBRARY_PATH
fi
. "${srcdir:-.}/tests/cli/lib.sh"

ETCD=${ETCD:-/usr/bin/etcd}
ETCDCTL=${ETCDCTL:-/usr/bin/etcdctl}
HEADCOUNTD=${HEADCOUNTD:-$top_builddir/daemon/headcountd}
FLEET_PREFIX=${FLEET_PREFIX:-/headcount/}

skip() {
        echo "SKIP: $*" >&2
        exit 77
}

[ -x "$ETCD" ] || skip "no etcd at $ETCD (Debian's etcd-server)"
[ -x "$ETCDCTL" ] || skip "no etcdctl at $ETCDCTL (Debian's etcd-client)"
command -v python3 >/dev/null || skip "python3 is needed"
if [ "${FLEET_NEED_DAEMON:-1}" = 1 ]; then
        [ -x "$HEADCOUNTD" ] || skip "no headcountd at $HEADCOUNTD (configure --disable-daemon?)"
        "$HEADCOUNTD" --help 2>/dev/null | grep -q -- '--etcd' ||
                skip "headcountd has no fleet support (no --etcd)"
        if [ -f "$top_builddir/config.h" ] && ! grep -q '^#define HAVE_FLEET 1' "$top_builddir/config.h"; then
                skip "headcountd is built without the fleet agent (configure --disable-fleet)"
        fi
        "$HEADCOUNT" --help 2>/dev/null | grep -q -- '--fleet' || skip "headcount has no --fleet"
fi

# etcd's data live on tmpfs when there is one: a test must not wait on a loaded disk's fsync.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
        ETCD_TOP=$(mktemp -d /dev/shm/headcount-etcd.XXXXXX) || exit 99
else
        ETCD_TOP=$T/etcd
        mkdir "$ETCD_TOP"
fi
chmod 0700 "$ETCD_TOP"

ETCD_N=0
ETCD_SCHEME=http                 # of the client URLs; peers speak http
ETCD_FLAGS=()                    # more options for every member
ECTL_OPTS=()                     # more options for every etcdctl call
ETCD_PIDS=()
ETCD_CLIENT_PORTS=()
ETCD_PEER_PORTS=()
ETCD_ENDPOINTS=
declare -A HOST_DIR=() HOST_PID=() HOST_ARGS=() HOST_HOLDERS=()

# Every pid started here; killed (with its process group when it leads one) at exit.
started_pids=

# tree_pids P...: P and its descendants (a command may have a process group of its own).
tree_pids() {
        local p
        for p in "$@"; do
                echo "$p"
                tree_pids $(ps -o pid= --ppid "$p" 2>/dev/null)
        done
}

# kill_tree SIG P: SIG to P and every descendant of P (a holder and its command).
kill_tree() {
        local p
        for p in $(tree_pids "$2"); do
                kill "-$1" "$p" 2>/dev/null
        done
}

fleet_cleanup() {
        local p
        disown -a 2>/dev/null           # no "Killed" line for each job
        local pids
        pids=$(tree_pids $started_pids)
        for p in $pids; do
                kill -CONT "$p" 2>/dev/null
                kill -KILL -- "-$p" 2>/dev/null
                kill -KILL "$p" 2>/dev/null
        done
        # A SIGKILLed process lives on until the kernel has torn it down (a large etcd takes
        # a while on a loaded machine): nothing we started may outlive us, so wait for each
        # to be gone or a zombie, for at most 30 s in all.
        for p in $pids; do
                wait_gone 30 "$p"
        done
        rm -rf "$ETCD_TOP"
        cleanup
}
trap fleet_cleanup EXIT
trap 'exit 1' INT TERM HUP

# now_ms: the wall clock in milliseconds (shared with the commands that write times).
now_ms() {
        echo $(($(date +%s%N) / 1000000))
}

# free_ports N: N distinct free loopback TCP ports, bound together so they differ.
free_ports() {
        python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# etcdctl with the cluster's endpoints and a short deadline (every call of a test is bounded).
ectl() {
        "$ETCDCTL" --endpoints "$ETCD_ENDPOINTS" --dial-timeout 2s --command-timeout "${ECTL_TIMEOUT:-5s}" \
                ${ECTL_OPTS[@]+"${ECTL_OPTS[@]}"} "$@"
}

etcd_cluster_spec() {
        local i spec=
        for ((i = 0; i < ETCD_N; i++)); do
                spec="$spec${spec:+,}m$i=http://127.0.0.1:${ETCD_PEER_PORTS[i]}"
        done
        echo "$spec"
}

# etcd_start_member I: starts member I (first start or again) in the background.
etcd_start_member() {
        local i=$1 c=${ETCD_CLIENT_PORTS[$1]} p=${ETCD_PEER_PORTS[$1]}
        env -u ETCD_ENDPOINTS "$ETCD" --name "m$i" --data-dir "$ETCD_TOP/m$i" \
                --listen-client-urls "$ETCD_SCHEME://127.0.0.1:$c" \
                --advertise-client-urls "$ETCD_SCHEME://127.0.0.1:$c" \
                --listen-peer-urls "http://127.0.0.1:$p" \
                --initial-advertise-peer-urls "http://127.0.0.1:$p" \
                --initial-cluster "$(etcd_cluster_spec)" \
                --initial-cluster-state new \
                --initial-cluster-token "hc-$$-$ETCD_TOP" \
                --logger zap --log-level warn ${ETCD_FLAGS[@]+"${ETCD_FLAGS[@]}"} \
                >>"$T/etcd-m$i.log" 2>&1 &
        ETCD_PIDS[i]=$!
        started_pids="$started_pids $!"
}

# etcd_healthy: every member answers and the cluster has a leader.
etcd_healthy() {
        local i
        for ((i = 0; i < ETCD_N; i++)); do
                kill -0 "${ETCD_PIDS[i]}" 2>/dev/null || return 2
        done
        ectl endpoint health >/dev/null 2>&1
}

etcd_wait_healthy() {
        local deadline=$(($(date +%s) + ${1:-30})) r
        while :; do
                etcd_healthy
                r=$?
                [ $r -eq 0 ] && return 0
                [ $r -eq 2 ] && return 2        # a member died: a port was taken
                [ "$(date +%s)" -gt "$deadline" ] && return 1
                sleep 0.05
        done
}

# etcd_start 1|3: a new cluster, on ports picked now; tries again with other ports when a
# member cannot start (another program took a port between the pick and the bind).
etcd_start() {
        local n=${1:-1} attempt i ports r
        ETCD_N=$n
        for attempt in 1 2 3 4 5; do
                read -r -a ports <<<"$(free_ports $((2 * n)))"
                ETCD_CLIENT_PORTS=("${ports[@]:0:n}")
                ETCD_PEER_PORTS=("${ports[@]:n:n}")
                ETCD_ENDPOINTS=
                for ((i = 0; i < n; i++)); do
                        ETCD_ENDPOINTS="$ETCD_ENDPOINTS${ETCD_ENDPOINTS:+,}$ETCD_SCHEME://127.0.0.1:${ETCD_CLIENT_PORTS[i]}"
                        rm -rf "$ETCD_TOP/m$i"
                        : >"$T/etcd-m$i.log"
                done
                export ETCD_ENDPOINTS
                for ((i = 0; i < n; i++)); do
                        etcd_start_member "$i"
                done
                etcd_wait_healthy 60
                r=$?
                [ $r -eq 0 ] && return 0
                echo "etcd_start: attempt $attempt failed ($( [ $r -eq 2 ] && echo 'a member exited' || echo 'not healthy in 60 s')):" >&2
                for ((i = 0; i < n; i++)); do
                        tail -n 3 "$T/etcd-m$i.log" | sed "s/^/  m$i: /" >&2
                        kill -KILL "${ETCD_PIDS[i]}" 2>/dev/null
                        wait "${ETCD_PIDS[i]}" 2>/dev/null
                done
        done
        echo "etcd_start: no cluster of $n after 5 attempts" >&2
        exit 99
}

# etcd_live_endpoints: the client URLs of the members that run (a dead member would make
# etcdctl wait for its deadline).
etcd_live_endpoints() {
        local i eps=
        for ((i = 0; i < ETCD_N; i++)); do
                [ -n "${ETCD_PIDS[i]}" ] || continue
                eps="$eps${eps:+,}$ETCD_SCHEME://127.0.0.1:${ETCD_CLIENT_PORTS[i]}"
        done
        echo "$eps"
}

# etcd_leader_index: the index of the member that leads, as the running members say.
etcd_leader_index() {
        "$ETCDCTL" --endpoints "$(etcd_live_endpoints)" --dial-timeout 1s --command-timeout 1s \
                ${ECTL_OPTS[@]+"${ECTL_OPTS[@]}"} endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
eps = sys.argv[1].split(",")
st = json.load(sys.stdin)
leaders = {s["Status"]["leader"] for s in st}
for s in st:
    if s["Status"]["header"]["member_id"] in leaders and s["Endpoint"] in eps:
        print(eps.index(s["Endpoint"]))
        break
else:
    sys.exit(1)
' "$ETCD_ENDPOINTS"
}

etcd_leader() {
        local i
        i=$(etcd_leader_index) || return 1
        echo "${ETCD_PIDS[i]}"
}

# etcd_kill I: SIGKILL member I and reap it.
etcd_kill() {
        kill -KILL "${ETCD_PIDS[$1]}" 2>/dev/null
        wait "${ETCD_PIDS[$1]}" 2>/dev/null
        ETCD_PIDS[$1]=
}

# etcd_stop_all: every member dies at once (SIGKILL: an outage, and a SIGTERM'd member
# spends seconds handing over its leadership). etcd writes its log before it answers.
etcd_stop_all() {
        local i
        for ((i = 0; i < ETCD_N; i++)); do
                [ -n "${ETCD_PIDS[i]}" ] || continue
                kill -KILL "${ETCD_PIDS[i]}" 2>/dev/null
        done
        for ((i = 0; i < ETCD_N; i++)); do
                [ -n "${ETCD_PIDS[i]}" ] || continue
                wait "${ETCD_PIDS[i]}" 2>/dev/null
                ETCD_PIDS[i]=
        done
}

# etcd_start_again: the members that do not run start again on their ports and data.
etcd_start_again() {
        local i
        for ((i = 0; i < ETCD_N; i++)); do
                [ -z "${ETCD_PIDS[i]}" ] && etcd_start_member "$i"
        done
        if ! etcd_wait_healthy 60; then
                echo "etcd_start_again: the cluster is not healthy within 60 s" >&2
                for ((i = 0; i < ETCD_N; i++)); do
                        tail -n 3 "$T/etcd-m$i.log" | sed "s/^/  m$i: /" >&2
                done
                exit 99
        fi
}

etcd_pause() {
        local p
        for p in "${ETCD_PIDS[@]}"; do
                [ -n "$p" ] && kill -STOP "$p"
        done
}

etcd_resume() {
        local p
        for p in "${ETCD_PIDS[@]}"; do
                [ -n "$p" ] && kill -CONT "$p"
        done
}

# seat_keys NAME: how many seat keys NAME has in etcd (held seats and waiters' keys).
seat_keys() {
        ectl get --prefix --keys-only --limit 1 -w json "${FLEET_PREFIX}$1/s/" |
                python3 -c 'import json,sys; print(json.load(sys.stdin).get("count", 0))'
}

# pki_cert DIR NAME SUBJECT EXTENSIONS [CA]: DIR/NAME.crt and .key, an EC key signed by
# DIR/CA (default ca); EXTENSIONS as openssl's -extfile lines, '\n' between them.
pki_cert() {
        local dir=$1 name=$2 subj=$3 ext=$4 ca=${5:-ca}
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "$subj" 2>/dev/null &&
        printf '%b\n' "$ext" >"$dir/$name.ext" &&
        openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$ca.crt" -CAkey "$dir/$ca.key" \
                -CAserial "$dir/$ca.srl" -CAcreateserial -days 2 -extfile "$dir/$name.ext" \
                -out "$dir/$name.crt" 2>/dev/null
}

# pki_ca DIR NAME: a self-signed CA, DIR/NAME.crt and .key.
pki_ca() {
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
                -keyout "$1/$2.key" -out "$1/$2.crt" -subj "/O=headcount test/OU=$2" 2>/dev/null
}

# pki_make DIR: the CA, etcd's certificate (its gateway shows it to etcd's own gRPC
# server as a client, hence clientAuth) and the agents' client certificate, without a CN.
pki_make() {
        mkdir -p -m 0700 "$1"
        pki_ca "$1" ca &&
        pki_cert "$1" server "/O=headcount test/OU=etcd" \
                "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth" &&
        pki_cert "$1" client "/O=headcount test/OU=agents" "extendedKeyUsage=clientAuth" || {
                echo "pki_make: openssl cannot make the certificates" >&2
                exit 99
        }
}

# etcd_tls_flags DIR: sets ETCD_SCHEME, ETCD_FLAGS and ECTL_OPTS for a cluster with
# DIR's certificates that wants client certificates (etcd_start then starts it so).
etcd_tls_flags() {
        ETCD_SCHEME=https
        ETCD_FLAGS=(--cert-file "$1/server.crt" --key-file "$1/server.key"
                    --trusted-ca-file "$1/ca.crt" --client-cert-auth)
        ECTL_OPTS=(--cacert "$1/ca.crt" --cert "$1/client.crt" --key "$1/client.key")
}

# host_start NAME [OPT...]: a headcountd for host NAME on its own scope directory; ready
# (outside systemd) when its fleet socket exists. OPT go to headcountd (--ttl 3, ...);
# --etcd and --etcd-prefix default to the cluster's and $FLEET_PREFIX.
host_start() {
        local name=$1 dir pid deadline
        shift
        dir=${HOST_DIR[$name]:-$T/host-$name}
        mkdir -p -m 0700 "$dir"
        HOST_DIR[$name]=$dir
        HOST_ARGS[$name]="$*"
        local etcd_opt=() o
        for o in "$@"; do
                case $o in --etcd|--etcd=*) etcd_opt=(x) ;; esac
        done
        if [ ${#etcd_opt[@]} -eq 0 ]; then
                set -- --etcd "$ETCD_ENDPOINTS" --etcd-prefix "$FLEET_PREFIX" "$@"
        fi
        "$HEADCOUNTD" --dir "$dir" --bus=none --log-target stderr --host "$name" "$@" \
                >>"$T/host-$name.log" 2>&1 &
        pid=$!
        HOST_PID[$name]=$pid
        started_pids="$started_pids $pid"
        deadline=$(($(date +%s) + 30))
        until [ -S "$dir/.headcountd.fleet" ]; do
                if ! kill -0 "$pid" 2>/dev/null || [ "$(date +%s)" -gt "$deadline" ]; then
                        echo "host_start $name: headcountd did not serve the fleet scope:" >&2
                        tail -n 5 "$T/host-$name.log" | sed 's/^/  /' >&2
                        exit 99
                fi
                sleep 0.02
        done
}

# on NAME ARG...: 'headcount --fleet ARG...' on host NAME.
on() {
        local name=$1
        shift
        HEADCOUNT_DIR=${HOST_DIR[$name]} "$HEADCOUNT" --fleet "$@"
}

# hold NAME ARG...: 'headcount --fleet ARG...' on host NAME in the background; $! is
# headcount's pid, which leads the process group of the holder and its command.
hold() {
        local name=$1
        shift
        HEADCOUNT_DIR=${HOST_DIR[$name]} "$HEADCOUNT" --fleet "$@" &
        HOST_HOLDERS[$name]="${HOST_HOLDERS[$name]:-} $!"
        started_pids="$started_pids $!"
}

# host_kill NAME: the whole host dies at once: its daemon and every holder started on it.
host_kill() {
        local name=$1 p
        for p in "${HOST_PID[$name]}" $(tree_pids ${HOST_HOLDERS[$name]:-}); do
                kill -KILL "$p" 2>/dev/null
        done
        wait "${HOST_PID[$name]}" 2>/dev/null
        for p in ${HOST_HOLDERS[$name]:-}; do
                wait "$p" 2>/dev/null
        done
        HOST_HOLDERS[$name]=
        rm -f "${HOST_DIR[$name]}/.headcountd.fleet"
}

# host_stop NAME: SIGTERM to the daemon alone, and wait for it.
host_stop() {
        kill -TERM "${HOST_PID[$1]}" 2>/dev/null
        wait "${HOST_PID[$1]}" 2>/dev/null
}

# fleet_count HOST NAME: prints 'headcount --fleet count NAME' on HOST, or "error N".
fleet_count() {
        local out
        out=$(on "$1" count "$2" 2>/dev/null) || { echo "error $?"; return 1; }
        echo "$out"
}

# count_is HOST NAME N: the fleet count of NAME seen from HOST is N.
count_is() {
        [ "$(fleet_count "$1" "$2")" = "$3" ]
}

# running P: process P exists (and is not a zombie).
running() {
        [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

# exited P: P is gone or a zombie.
exited() {
        ! running "$1"
}

# wait_gone SECS P: waits until P is gone or a zombie, at most SECS seconds; fails when it
# is still there. For a process that is not our child (we cannot wait(2) for it): SIGKILL
# is delivered at once, but the process exists until the kernel has finished with it.
wait_gone() {
        local deadline=$(($(date +%s%N) + $1 * 1000000000))
        while running "$2"; do
                [ "$(date +%s%N)" -le "$deadline" ] || return 1
                sleep 0.01
        done
        return 0
}

# json_len FILE: how many instances 'list -J' printed in FILE ("invalid" when it is no
# {"instances": [...]}).
json_len() {
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])).get("instances"); print(len(d) if isinstance(d, list) else "invalid")' "$1" 2>/dev/null || echo invalid
}

# check WHAT CMD...: counts a check; fails it naming WHAT when CMD fails.
check() {
        local what=$1
        shift
        checks=$((checks + 1))
        if ! "$@"; then
                fail "$what"
                return 1
        fi
        return 0
}

# dump_hosts: the daemons' logs, for a failed test.
dump_logs() {
        local f
        for f in "$T"/host-*.log "$T"/etcd-m*.log; do
                [ -s "$f" ] || continue
                echo "--- $(basename "$f") (last 15 lines)" >&2
                tail -n 15 "$f" >&2
        done
}

# fleet_events: the event pipe (fd 3), the gate (fd 4), and $T/hold.sh, the command of a
# seat: 'hold.sh LABEL' says "LABEL PID FENCE" on the event pipe ($HEADCOUNT_FENCE, or
# "none"), holds until 'release' lets it go (exit 0), and on SIGTERM writes the time in
# ms to $T/term-LABEL and exits 143. With HOLD_CHECK=N it also records in
# $T/violations any moment when more than N such commands held at once.
fleet_events() {
        events_open
        mkdir "$T/in"
        cat >"$T/hold.sh" <<'EOF_HOLD'
#!/bin/sh
label=$1
reader=
trap 'date +%s%3N >"$T/term-$label"; rm -f "$T/in/$$"; [ -z "$reader" ] || kill $reader 2>/dev/null; exit 143' TERM
if [ -n "${HOLD_CHECK:-}" ]; then
        : >"$T/in/$$"
        n=$(ls "$T/in" | wc -l)
        [ "$n" -le "$HOLD_CHECK" ] || echo "$label: $n commands held at once" >>"$T/violations"
fi
echo "$label $$ ${HEADCOUNT_FENCE:-none}" >&3
if [ "${HOLD_FOR:-}" ]; then
        sleep "$HOLD_FOR"
else
        read _ <"$T/gate" &
        reader=$!
        wait $reader
fi
rm -f "$T/in/$$"
exit 0
EOF_HOLD
        chmod +x "$T/hold.sh"
}

# expect_event WHAT PATTERN: the next event matches the shell PATTERN.
expect_event() {
        next_event
        checks=$((checks + 1))
        case $event in
        $2) return 0 ;;
        esac
        fail "$1: event '$event', expected '$2'"
        return 1
}

fleet_finish() {
        [ "$failures" -ne 0 ] && dump_logs
        finish
}
