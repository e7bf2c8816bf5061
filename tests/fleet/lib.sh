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

declare -A HOST_DIR=() HOST_PID=() HOST_ARGS=() HOST_HOLDERS=()

# Every pid started here; killed (with its process group when it leads one) at exit.
started_pids=

# the cluster (etcd_start & co.): the tests' one etcd launcher
. "${srcdir:-.}/tests/common/etcd.sh"

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

# seat_keys NAME: how many seat keys NAME has in etcd (held seats and waiters' keys).
seat_keys() {
        ectl get --prefix --keys-only --limit 1 -w json "${FLEET_PREFIX}$1/s/" |
                python3 -c 'import json,sys; print(json.load(sys.stdin).get("count", 0))'
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

# running P: process P exists and one of its threads is not a zombie. The leader of a
# process with threads (headcountd --etcd) is a zombie as soon as it has exited, while
# another thread may still be on its way out, holding every descriptor of the process.
running() {
        local s
        [ -d "/proc/$1" ] || return 1
        for s in /proc/"$1"/task/*/status; do
                grep -q '^State:.*[ZX]' "$s" 2>/dev/null && continue
                [ -e "$s" ] && return 0
        done
        return 1
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

# cpu_ticks PID: the CPU time PID (all its threads) has used, utime + stime, in clock
# ticks (HZ a second). What a process does costs the same ticks on a loaded machine,
# where wall time does not: the tests bound work in ticks, never in wall time.
cpu_ticks() {
        awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
HZ=$(getconf CLK_TCK)

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
