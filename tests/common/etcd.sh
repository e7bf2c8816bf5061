# SPDX-License-Identifier: LGPL-2.1-or-later
# The tests' one etcd launcher (bash, sourced): a private cluster of Debian's etcd, one or
# three members on free loopback ports, started again on other ports when another program
# took one between the pick and etcd's bind. tests/fleet/lib.sh and tests/cli/test-on-lost.sh
# source it; the C tests run it through tests/common/etcd-launch.
#
# Set before sourcing: T (a directory for the members' logs, etcd-mI.log) and ETCD_TOP (a
# private directory for their data). started_pids gets every member's pid. Functions:
#   etcd_start 1|3        start the members, wait until every one is healthy; sets
#                         ETCD_ENDPOINTS (exported) and ETCD_PIDS[]. A secured cluster: set
#                         ETCD_SCHEME=https and ETCD_FLAGS=(--cert-file F ...) first (added
#                         to every member), and ECTL_OPTS=(--cacert F ...) for etcdctl
#   etcd_leader           print the leader member's PID (etcd_leader_index: its index)
#   etcd_stop_all         SIGKILL every member and wait for it (etcd_kill I: one)
#   etcd_start_again      start the same members again on the same ports and directories
#                         (etcd_start_member I: one of them)
#   etcd_pause/etcd_resume  SIGSTOP / SIGCONT every member that runs
#   ectl ARG...           etcdctl on the cluster, with a deadline
#   pki_make DIR          with openssl: DIR/ca.crt, DIR/server.{crt,key} (for 127.0.0.1)
#                         and DIR/client.{crt,key} (no CommonName); pki_ca DIR NAME and
#                         pki_cert DIR NAME SUBJECT EXTENSIONS [CA] make more
#   etcd_tls_flags DIR    set ETCD_SCHEME, ETCD_FLAGS, ECTL_OPTS for an etcd with DIR's
#                         certificates that wants client certificates

ETCD=${ETCD:-/usr/bin/etcd}
ETCDCTL=${ETCDCTL:-/usr/bin/etcdctl}
ETCD_N=0
ETCD_SCHEME=${ETCD_SCHEME:-http} # of the client URLs; peers speak http
ETCD_FLAGS=()                    # more options for every member
ECTL_OPTS=()                     # more options for every etcdctl call
ETCD_PIDS=()
ETCD_CLIENT_PORTS=()
ETCD_PEER_PORTS=()
ETCD_ENDPOINTS=
started_pids=${started_pids:-}
# A command put before each member (the launcher's: setpriv --pdeathsig KILL).
ETCD_WRAP=()

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
        env -u ETCD_ENDPOINTS ${ETCD_WRAP[@]+"${ETCD_WRAP[@]}"} "$ETCD" --name "m$i" --data-dir "$ETCD_TOP/m$i" \
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
