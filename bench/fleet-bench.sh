#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The fleet scope against etcd's own client, on one private etcd (one member, data on
# tmpfs) and simulated hosts (one headcountd --etcd each), all in the same run:
#
#   whole process   'headcount --fleet run --max 1 x -- true'  vs  'etcdctl lock x true'
#                   (target <= 1.0x)
#   count           'headcount --fleet count x'  vs  'etcdctl get --prefix --keys-only --limit 1 -w json'
#                   (etcdctl 3.4 has no --count-only; this prints the count the same way)
#                   (target <= 1.2x)
#   SIGKILL -> free a holder killed, to the delete of its key: headcount's agent (the
#                   socket closes) vs 'etcdctl lock' (its session's lease runs out, TTL 3)
#   throughput      joins per second (run --max 8 --wait -- true) from 8 hosts with 2 callers
#                   each, vs 16 callers of 'etcdctl lock' (each its own lock)
#   TLS + auth      the whole process again on a second etcd with https, client
#                   certificates (--client-cert-auth) and authentication: the agent with
#                   --etcd-cacert/--etcd-cert/--etcd-key/--etcd-user, etcdctl lock with the
#                   same certificates and user (target <= 1.0x). Skipped without openssl.
#
# Prints medians and ratios; a ratio past its target says MISSES. Skips, saying so, when
# etcd or headcountd's fleet support is missing.
#
#   HC_BUILDDIR=build bash bench/fleet-bench.sh [ROUNDS]
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"     # bench/run.sh starts us with sh
set -u
builddir=$(cd "${HC_BUILDDIR:-.}" && pwd)
srcdir=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-${HC_FLEET_BENCH_ROUNDS:-200}}
seconds=${HC_FLEET_BENCH_SECONDS:-5}

note() {
        echo "fleet-bench: skipped: $*"
        exit 0
}
[ -x /usr/bin/etcd ] && [ -x /usr/bin/etcdctl ] || note "no etcd (etcd-server, etcd-client)"
command -v python3 >/dev/null || note "no python3"
[ -x "$builddir/daemon/headcountd" ] || note "no headcountd in $builddir/daemon"
"$builddir/daemon/headcountd" --help 2>/dev/null | grep -q -- --etcd ||
        note "headcountd was built without fleet support"
if [ -f "$builddir/config.h" ] && ! grep -q '^#define HAVE_FLEET 1' "$builddir/config.h"; then
        note "headcountd was built without fleet support (configure --disable-fleet)"
fi

# The real binary, not libtool's wrapper script, which would be timed as well.
hc=$builddir/cli/.libs/headcount
[ -x "$hc" ] || hc=$builddir/cli/headcount
LD_LIBRARY_PATH=$builddir/lib/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
"$hc" --help 2>/dev/null | grep -q -- --fleet || note "headcount has no --fleet"
HEADCOUNT=$hc
top_builddir=$builddir
export HEADCOUNT top_builddir
srcdir_bench=$srcdir
srcdir=$srcdir . "$srcdir/tests/fleet/lib.sh"      # etcd_start, host_start, cleanup at exit
srcdir=$srcdir_bench
set +m

driver=$builddir/bench/cli-bench-spawn
if [ ! -x "$driver" ]; then
        driver=$T/cli-bench-spawn
        ${CC:-cc} -O2 -o "$driver" "$srcdir/bench/cli-bench-spawn.c" || exit 1
fi
true_bin=
for d in $(echo "$PATH" | tr ':' ' '); do       # the program, not the shell's builtin
        [ -x "$d/true" ] && true_bin=$d/true && break
done

etcd_start 1
for i in 1 2 3 4 5 6 7 8; do
        host_start h$i --ttl 3
done
export HEADCOUNT_DIR=${HOST_DIR[h1]}

# ratio LABEL CANDIDATE REFERENCE TARGET: one line of the table ("-" as target: none).
results=$T/results
ratio() {
        awk -v l="$1" -v c="$2" -v r="$3" -v t="$4" 'BEGIN {
                x = c / r
                v = (t == "-") ? "" : (x <= t ? sprintf("<= %.2fx, met", t) : sprintf("<= %.2fx, MISSES", t))
                printf "| %-44s | %10.2f | %10.2f | %7.3fx | %-16s |\n", l, c, r, x, v
        }' >>"$results"
}
: >"$results"

echo "fleet-bench: $rounds rounds of whole processes, then SIGKILLs, then ${seconds} s of joins"

# 1. Whole processes, the commands taken in turn in every round.
"$driver" "$rounds" \
        true "$true_bin" ';;' \
        etcdctl-lock /usr/bin/etcdctl --endpoints "$ETCD_ENDPOINTS" lock benchlock "$true_bin" ';;' \
        fleet-run "$hc" --fleet run --max 1 benchrun -- "$true_bin" ';;' \
        etcdctl-count /usr/bin/etcdctl --endpoints "$ETCD_ENDPOINTS" get --prefix --keys-only --limit 1 -w json "${FLEET_PREFIX}benchrun/s/" ';;' \
        fleet-count "$hc" --fleet count benchrun >"$T/spawn" || exit 1
med() {
        awk -v l="$1" '$1 == l { print $2 / 1000 }' "$T/spawn"
}
ratio "run --max 1 -- true / etcdctl lock (ms)" "$(med fleet-run)" "$(med etcdctl-lock)" 1.0
ratio "count / etcdctl get --keys-only --limit 1 (ms)" "$(med fleet-count)" "$(med etcdctl-count)" 1.2
ratio "fork+exec of true, for scale (ms)" "$(med true)" "$(med true)" -

# 2. SIGKILL of a holder to the delete of its key, timed on etcd's watch.
cat >"$T/kill.py" <<'PY'
import base64, json, os, signal, subprocess, sys, time

etcdctl, endpoints, key_prefix, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
argv = sys.argv[5:]
rev = json.loads(subprocess.check_output([etcdctl, "--endpoints", endpoints, "get", "/",
                                          "-w", "json"]))["header"]["revision"]
watch = subprocess.Popen([etcdctl, "--endpoints", endpoints, "watch", "--prefix", key_prefix,
                          "--rev", str(rev + 1), "-w", "json"], stdout=subprocess.PIPE, text=True)

def events():
    for line in watch.stdout:
        for e in json.loads(line).get("Events") or []:
            yield e.get("type", 0), base64.b64decode(e["kv"]["key"]).decode()
    sys.exit("the watch ended")

ev = events()
times = []
p = None
try:
    for _ in range(rounds):
        p = subprocess.Popen(argv + ["sh", "-c", "echo $$; exec sleep 1000"],
                             stdout=subprocess.PIPE, text=True, start_new_session=True)
        line = p.stdout.readline()
        while line and not line.strip().isdigit():     # etcdctl lock prints the key first
            line = p.stdout.readline()
        if not line:
            sys.exit("the holder did not start: %s" % " ".join(argv))
        groups = {p.pid, os.getpgid(int(line))}
        key = None
        while key is None:
            t, k = next(ev)
            if t == 0:
                key = k
        t0 = time.monotonic()
        for g in groups:
            os.killpg(g, signal.SIGKILL)
        while True:
            t, k = next(ev)
            if t == 1 and k == key:
                break
        times.append((time.monotonic() - t0) * 1000)
        p.wait()
        p = None
finally:
    watch.kill()
    if p:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
times.sort()
print("%.2f" % times[len(times) // 2])
PY
kill_hc=$(python3 "$T/kill.py" /usr/bin/etcdctl "$ETCD_ENDPOINTS" "${FLEET_PREFIX}benchkill/s/" 15 \
        "$hc" --fleet run --max 1 benchkill --) || exit 1
kill_lock=$(python3 "$T/kill.py" /usr/bin/etcdctl "$ETCD_ENDPOINTS" "benchkill-lock/" 3 \
        /usr/bin/etcdctl --endpoints "$ETCD_ENDPOINTS" lock --ttl 3 benchkill-lock --) || exit 1
ratio "SIGKILL -> free / etcdctl lock TTL 3 (ms)" "$kill_hc" "$kill_lock" -

# 3. Throughput: callers loop for $seconds seconds; joins (or locks) per second.
cat >"$T/loop.py" <<'PY'
import os, subprocess, sys, threading, time

seconds = float(sys.argv[1])
cmds = [c.split("\x1f") for c in sys.argv[2:]]      # one caller per argument
done = [0] * len(cmds)
failed = [0] * len(cmds)
deadline = time.monotonic() + seconds

def caller(i):
    env = dict(os.environ)
    argv = cmds[i]
    if argv[0].startswith("HEADCOUNT_DIR="):
        env["HEADCOUNT_DIR"] = argv[0].split("=", 1)[1]
        argv = argv[1:]
    while time.monotonic() < deadline:
        r = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            done[i] += 1
        else:
            failed[i] += 1

threads = [threading.Thread(target=caller, args=(i,)) for i in range(len(cmds))]
t0 = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join()
print("%.1f %d" % (sum(done) / (time.monotonic() - t0), sum(failed)))
PY
us=$'\x1f'
fleet_callers=() lock_callers=()
for i in 1 2 3 4 5 6 7 8; do
        for j in 1 2; do
                fleet_callers+=("HEADCOUNT_DIR=${HOST_DIR[h$i]}$us$hc$us--fleet${us}run$us--max${us}8$us--wait=60${us}benchtp$us--$us$true_bin")
                lock_callers+=("/usr/bin/etcdctl$us--endpoints$us$ETCD_ENDPOINTS${us}lock${us}benchtp-$i-$j$us$true_bin")
        done
done
read -r tp_lock fail_lock <<<"$(python3 "$T/loop.py" "$seconds" "${lock_callers[@]}")"
read -r tp_fleet fail_fleet <<<"$(python3 "$T/loop.py" "$seconds" "${fleet_callers[@]}")"
awk -v c="$tp_fleet" -v r="$tp_lock" 'BEGIN {
        printf "| %-44s | %10.1f | %10.1f | %7.3fx | %-16s |\n", "joins/s, 8 hosts x 2 callers / 16 locks", c, r, c / r, ""
}' >>"$results"

left=$(fleet_count h2 benchtp)

# 4. The same whole processes on a secured etcd: a new cluster, the plain one and its
# hosts gone first (they would only retry in the background).
tls_note=
if command -v openssl >/dev/null; then
        for i in 1 2 3 4 5 6 7 8; do
                host_kill h$i
        done
        etcd_stop_all
        pki_make "$T/pki"
        etcd_tls_flags "$T/pki"
        etcd_start 1
        pw="bench-$RANDOM$RANDOM"
        {
                echo "root-$pw" | ectl user add root --interactive=false &&
                ectl role add root && ectl user grant-role root root &&
                ectl role add hc-fleet &&
                ectl role grant-permission hc-fleet --prefix=true readwrite "$FLEET_PREFIX" &&
                ectl role grant-permission hc-fleet --prefix=true readwrite benchlock-tls &&
                echo "$pw" | ectl user add hc --interactive=false &&
                ectl user grant-role hc hc-fleet && ectl auth enable
        } >"$T/etcdctl.log" 2>&1 || { cat "$T/etcdctl.log" >&2; exit 1; }
        (umask 077; printf '%s\n' "$pw" >"$T/pw")
        host_start s1 --ttl 3 --etcd-cacert "$T/pki/ca.crt" --etcd-cert "$T/pki/client.crt" \
                --etcd-key "$T/pki/client.key" --etcd-user hc --etcd-password-file "$T/pw"
        HEADCOUNT_DIR=${HOST_DIR[s1]} "$hc" --fleet run --max 1 benchrun -- "$true_bin" ||
                { echo "fleet-bench: the agent on the secured etcd does not serve:" >&2
                  tail -n 3 "$T/host-s1.log" >&2; exit 1; }
        HEADCOUNT_DIR=${HOST_DIR[s1]} "$driver" "$rounds" \
                etcdctl-lock-tls /usr/bin/etcdctl --endpoints "$ETCD_ENDPOINTS" "${ECTL_OPTS[@]}" \
                        --user "hc:$pw" lock benchlock-tls "$true_bin" ';;' \
                fleet-run-tls "$hc" --fleet run --max 1 benchrun -- "$true_bin" >"$T/spawn" || exit 1
        ratio "TLS+auth: run --max 1 / etcdctl lock (ms)" "$(med fleet-run-tls)" \
                "$(med etcdctl-lock-tls)" 1.0
else
        tls_note=" (no openssl: no TLS measurement)"
fi

echo
echo "| what | headcount | etcdctl | ratio | target |"
echo "|---|---|---|---|---|"
cat "$results"
echo
echo "(medians of $rounds rounds for whole processes, 15 and 3 kills; failed calls in the"
echo " throughput run: headcount $fail_fleet, etcdctl $fail_lock; fleet count left: $left)$tls_note"
