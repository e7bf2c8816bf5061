#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The installed daemon under a real systemd: boots systemd as PID 1 in a container made of
# this machine's own root file system and checks headcountd as shipped, hardening included.
#
#   1. configures and builds a tree with the distribution's directories (--prefix=/usr,
#      --sysconfdir=/etc, --localstatedir=/var, unit and tmpfiles directories from
#      pkg-config) under /var/tmp;
#   2. bind-mounts / on an empty directory and boots it with
#      systemd-nspawn --volatile=overlay -b: the container sees this machine's files,
#      the build tree included, and every write of its own lands in a tmpfs;
#   3. inside the container (nsenter into its PID 1): make install, daemon-reload,
#      systemd-tmpfiles, a D-Bus reload, then the checks below, one line each;
#   4. powers the container off and unmounts, whatever happened.
#
# Every mount of ours lives in a private mount namespace of this script (it re-executes
# itself under unshare), so none can outlive it on the host; the container gets SIGTERM
# (an orderly poweroff) if this script dies without its trap.
#
# Prints "ok ..." or "FAIL ..." per check and ends with "N passed, M failed".
# Exit status: 0 all passed, 1 some check failed, 77 skipped (not root, no systemd-nspawn),
# 99 the harness itself could not run (build, boot). HC_SYSTEMD_KEEP=1 keeps the work
# directory (build tree and logs) for a look afterwards.
set -u

top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
self="$top_srcdir/tests/systemd/run.sh"

skip() {
        echo "SKIP: $*"
        exit 77
}

[ "$(id -u)" -eq 0 ] || skip "the systemd test boots a container: run it as root"
command -v systemd-nspawn >/dev/null 2>&1 ||
        skip "systemd-nspawn is missing (Debian: apt-get install systemd-container)"
for tool in unshare nsenter setpriv mount umount mountpoint findmnt timeout pgrep; do
        command -v "$tool" >/dev/null 2>&1 || skip "$tool is missing"
done

# Our own mount namespace: the bind mount of / exists only in it.
if [ -z "${HC_SYSTEMD_PRIVATE_NS:-}" ]; then
        HC_SYSTEMD_PRIVATE_NS=1 exec unshare --mount --propagation private -- sh "$self" "$@"
fi

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
t_start=$(now_ms)

passed=0
failed=0
ok() {
        passed=$((passed + 1))
        echo "ok   $*"
}
fail() {
        failed=$((failed + 1))
        echo "FAIL $*"
}
# check DESCRIPTION COMMAND...: ok when COMMAND succeeds.
check() {
        desc=$1
        shift
        if "$@"; then ok "$desc"; else fail "$desc${detail:+: $detail}"; fi
        detail=
}
detail=
info() { echo "#    $*"; }
# running PID: the process exists and is no zombie waiting to be reaped.
running() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat"; }
header() { printf '\n--- %s ---\n' "$*"; }

work=
root=
mounted=
nspawn=
cpid=
build=
machine="headcount-test-$$"
nspawn_run=/run/systemd/nspawn
nspawn_run_existed=
[ -d "$nspawn_run" ] && nspawn_run_existed=1

cleanup() {
        trap '' INT TERM HUP
        [ -n "$build" ] && kill -TERM -- "-$build" 2>/dev/null && wait "$build" 2>/dev/null
        if running "$nspawn"; then
                t_off=$(now_ms)
                # systemd-nspawn turns SIGTERM into SIGRTMIN+3 for the container's systemd:
                # an orderly poweroff.
                kill -TERM "$nspawn" 2>/dev/null
                i=0
                while running "$nspawn" && [ "$i" -lt 300 ]; do
                        sleep 0.1
                        i=$((i + 1))
                done
                if running "$nspawn"; then
                        echo "cleanup: the container did not power off within 30 s; killing it"
                        # Killing a PID namespace's init kills everything in it.
                        [ -n "$cpid" ] && kill -KILL "$cpid" 2>/dev/null
                        kill -KILL "$nspawn" 2>/dev/null
                fi
                wait "$nspawn" 2>/dev/null
                echo "container powered off in $(( $(now_ms) - t_off )) ms"
        fi
        if [ -n "$mounted" ]; then
                umount "$root" 2>/dev/null || umount -l "$root" ||
                        echo "cleanup: cannot unmount $root"
        fi
        # Only ever rmdir: this directory had / mounted on it.
        if [ -n "$root" ] && ! mountpoint -q "$root"; then
                rmdir "$root" 2>/dev/null
        fi
        # systemd-nspawn leaves these behind where /run is no tmpfs; only empty ones go.
        rmdir "$nspawn_run/propagate/$machine" 2>/dev/null
        if [ -z "$nspawn_run_existed" ]; then
                rmdir "$nspawn_run/propagate" "$nspawn_run/locks" "$nspawn_run" 2>/dev/null
        fi
        if [ -n "$work" ] && [ -d "$work" ]; then
                if [ -n "${HC_SYSTEMD_KEEP:-}" ]; then
                        echo "kept $work"
                elif grep -qF " $work" /proc/self/mountinfo; then
                        echo "cleanup: something is still mounted under $work; not removing it"
                else
                        rm -rf "$work"
                fi
        fi
        echo "total $(( ($(now_ms) - t_start) / 1000 )) s"
        echo "$passed passed, $failed failed"
}
trap cleanup EXIT
trap 'fail "interrupted by SIGINT"; exit 130' INT
trap 'fail "interrupted by SIGTERM"; exit 143' TERM
trap 'fail "interrupted by SIGHUP"; exit 129' HUP

# The trap powers off, cleans up and prints the totals last.
finish() {
        echo
        exit "$1"
}
# The harness itself cannot go on: one failure, status 99 (automake's ERROR).
die() {
        fail "$*"
        finish 99
}

# --- 1. a tree with the distribution's directories ---------------------------------------
[ -x "$top_srcdir/configure" ] || die "no $top_srcdir/configure: run autogen.sh first"
[ -f "$top_srcdir/config.status" ] &&
        die "$top_srcdir is configured in place; a separate build tree needs it clean (make distclean)"
# A run killed with SIGKILL had no trap: its container went down with it (--pdeathsig) and
# its mounts with its mount namespace, but its two directories stayed. Their owner is gone.
for old in /var/tmp/headcount-systemd.*; do
        [ -f "$old/owner" ] || continue
        read -r old_pid old_root <"$old/owner" || continue
        grep -qF tests/systemd/run.sh "/proc/$old_pid/cmdline" 2>/dev/null && continue
        grep -qF " $old" /proc/self/mountinfo && continue
        case $old_root in /var/tmp/headcount-systemd-root.*) rmdir "$old_root" 2>/dev/null ;; esac
        rm -rf "$old"
        echo "removed $old, left by a run that was killed"
done
work=$(mktemp -d /var/tmp/headcount-systemd.XXXXXX) || die "cannot make a work directory"
root=$(mktemp -d /var/tmp/headcount-systemd-root.XXXXXX) || die "cannot make a mount point"
echo "$$ $root" >"$work/owner"
# The container's root is an overlay on /, which shows no other mounts, and nspawn puts a
# tmpfs of its own on /tmp: the build tree and a copy of the sources live under /var/tmp,
# on the root file system itself (a checkout may well be in /tmp, or on a mount).
[ "$(findmnt -n -o TARGET -T "$work")" = / ] ||
        die "$work is not on the root file system, so the container cannot see it"
mkdir "$work/src" &&
        tar -C "$top_srcdir" --exclude=./build --exclude=./build-sanitize --exclude=./build-tsan \
                --exclude=./build-coverage --exclude=./.git --exclude=./autom4te.cache \
                -cf - . | tar -C "$work/src" -xf - ||
        die "cannot copy the sources to $work/src"

pc() { pkg-config --variable="$1" "$2" 2>/dev/null; }
unitdir=$(pc systemdsystemunitdir systemd); unitdir=${unitdir:-/lib/systemd/system}
userunitdir=$(pc systemduserunitdir systemd); userunitdir=${userunitdir:-/usr/lib/systemd/user}
tmpfilesdir=$(pc tmpfilesdir systemd); tmpfilesdir=${tmpfilesdir:-/usr/lib/tmpfiles.d}
dbusdatadir=$(pc datadir dbus-1); dbuspolicydir=${dbusdatadir:-/usr/share}/dbus-1/system.d
multiarch=$(${CC:-cc} -print-multiarch 2>/dev/null)
libdir=/usr/lib${multiarch:+/$multiarch}

echo "building in $work/build (prefix /usr, libdir $libdir, units in $unitdir)"
t0=$(now_ms)
mkdir "$work/build"
# Each step in a process group of its own, waited for with 'wait': a signal to this script
# runs the trap at once, and the trap stops the whole step.
build_step() {
        setsid "$@" >>"$work/build.log" 2>&1 </dev/null &
        build=$!
        wait "$build"
        rc=$?
        build=
        return "$rc"
}
cd "$work/build" &&
        build_step "$work/src/configure" -q --prefix=/usr --sysconfdir=/etc --localstatedir=/var \
                --libdir="$libdir" --disable-dependency-tracking \
                --with-systemdsystemunitdir="$unitdir" --with-systemduserunitdir="$userunitdir" \
                --with-tmpfilesdir="$tmpfilesdir" --with-dbuspolicydir="$dbuspolicydir" &&
        build_step make -s -j"$(nproc)"
rc=$?
cd /
if [ "$rc" -ne 0 ]; then
        tail -n 40 "$work/build.log"
        die "configure and make (log above)"
fi
echo "built in $(( ($(now_ms) - t0) / 1000 )) s"

# --- 2. boot ------------------------------------------------------------------------------
mount --bind / "$root" || die "mount --bind / $root"
mounted=1
t0=$(now_ms)
# --private-network: the machine's enabled services boot in the container too; none of
# them may take this machine's ports. --pdeathsig: if this script dies, nspawn gets
# SIGTERM and powers the container off.
setsid setpriv --pdeathsig TERM \
        systemd-nspawn -D "$root" -M "$machine" --volatile=overlay --register=no --keep-unit \
        --link-journal=no --console=pipe --private-network -b \
        </dev/null >"$work/console.log" 2>&1 &
nspawn=$!

i=0
while [ -z "$cpid" ]; do
        running "$nspawn" || { tail -n 30 "$work/console.log"; die "systemd-nspawn exited (console above)"; }
        [ $i -lt 300 ] || die "no systemd under systemd-nspawn after 30 s"
        for c in $(pgrep -P "$nspawn"); do
                [ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ] && cpid=$c
        done
        [ -n "$cpid" ] || { sleep 0.1; i=$((i + 1)); }
done

# ctr [-t SECS] COMMAND...: runs COMMAND in the container (all of its namespaces).
ctr() {
        secs=60
        if [ "$1" = -t ]; then secs=$2; shift 2; fi
        timeout -k 5 "$secs" nsenter -t "$cpid" -a \
                env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
                LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER=cat "$@"
}

state=
i=0
while :; do
        state=$(ctr -t 5 systemctl is-system-running 2>/dev/null)
        case $state in
        running | degraded) break ;;
        maintenance | stopping | offline) die "the container's systemd is $state" ;;
        esac
        running "$nspawn" || { tail -n 30 "$work/console.log"; die "the container stopped while booting"; }
        [ $i -lt 900 ] || die "the container's systemd is still '${state:-unreachable}' after 90 s"
        sleep 0.1
        i=$((i + 1))
done
echo "booted systemd $(ctr systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p') as PID 1 (pid $cpid here) in $(( ($(now_ms) - t0) / 1000 )) s: $state"
[ "$state" = degraded ] && info "failed units: $(ctr systemctl --failed --plain --no-legend | awk '{print $1}' | tr '\n' ' ')"

# --- 3. install -----------------------------------------------------------------------------
ctr -t 120 sh -c "cd '$work/build' && make -s install && ldconfig" >"$work/install.log" 2>&1 ||
        { tail -n 30 "$work/install.log"; die "make install in the container (log above)"; }
ctr test -x /usr/sbin/headcountd -a -f "$unitdir/headcountd.service" || die "make install left no daemon or unit"
ctr systemctl daemon-reload || die "systemctl daemon-reload"
ctr systemd-tmpfiles --create "$tmpfilesdir/headcount.conf" || die "systemd-tmpfiles --create"
ctr systemctl reload dbus.service || die "systemctl reload dbus"
echo "installed; starting the checks"
echo

# --- 4. checks ------------------------------------------------------------------------------
prop() { ctr systemctl show -P "$2" "$1" 2>/dev/null; }
mgr() { ctr busctl call org.headcount.Manager1 /org/headcount/Manager1 org.headcount.Manager1 "$@"; }
mgr_nobody() {
        ctr runuser -u nobody -- busctl call org.headcount.Manager1 /org/headcount/Manager1 \
                org.headcount.Manager1 "$@"
}
equals() {
        [ "$1" = "$2" ] && return 0
        detail="got '$1', expected '$2'"
        return 1
}
matches() {
        printf '%s\n' "$1" | grep -Eq -- "$2" && return 0
        detail="got '$1', expected to match /$2/"
        return 1
}
# events NAME [JOURNALCTL-OPTION...]: the events of one name as lines "EVENT PID", oldest first.
events() {
        name=$1
        shift
        ctr journalctl -b --no-pager -o json "$@" HEADCOUNT_NAME="$name" 2>/dev/null |
                sed -n 's/.*"HEADCOUNT_EVENT":"\([a-z]*\)".*/\1 &/p' |
                sed 's/^\([a-z]*\) .*"HEADCOUNT_PID":"\([0-9]*\)".*/\1 \2/'
}

# What has no event to wait for (a process not ours torn down, a journal line, a count
# through several processes) is polled for until it holds, for at most 30 s since t_mark:
# the bound is for a hang, not for speed (a loaded machine may take seconds); each check
# says how long it took.
within() { [ $(( $(now_ms) - t_mark )) -le 30000 ]; }
since_mark() { echo "$(( $(now_ms) - t_mark )) ms"; }

mode=$(ctr stat -c %a /run/headcount 2>&1)
check "systemd-tmpfiles creates /run/headcount with mode 1777" equals "$mode" 1777

out=$(ctr systemctl start headcountd.service 2>&1)
rc=$?
detail="exit $rc: $out"
check "systemctl start headcountd" [ "$rc" -eq 0 ]
mainpid=$(prop headcountd.service MainPID)
check "ActiveState=active SubState=running" \
        equals "$(prop headcountd.service ActiveState) $(prop headcountd.service SubState)" "active running"
check "Type=notify" equals "$(prop headcountd.service Type)" notify
status_text=$(prop headcountd.service StatusText)
check "StatusText names regions and instances ('$status_text')" \
        matches "$status_text" '[0-9]+ regions?, [0-9]+ instances?'
mode=$(ctr stat -c %a /run/headcount 2>&1)
check "/run/headcount is mode 1777 with the daemon running" equals "$mode" 1777

owner=$(ctr busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
        GetConnectionUnixProcessID s org.headcount.Manager1 2>&1)
check "org.headcount.Manager1 is owned by the service's main process (pid $mainpid)" \
        equals "$owner" "u $mainpid"

names=$(mgr_nobody ListNames 2>&1)
check "ListNames works as nobody ($names)" matches "$names" '^a\(su\) [0-9]+'
# DESIGN.md: the daemon's single-instance lock is no user-visible region.
no_lock_region() {
        case $names in *'"headcountd"'*)
                detail="ListNames lists it: $names"
                return 1 ;;
        esac
}
check "ListNames shows no region for the daemon's own single-instance lock" no_lock_region

# A normal run: join and leave for one pid, no death.
header "a normal run: headcount --system run job -- true"
out=$(ctr headcount --system run job -- true 2>&1)
rc=$?
detail="exit $rc: $out"
check "headcount --system run job -- true exits 0" [ "$rc" -eq 0 ]
t_mark=$(now_ms)
while ! events job | grep -q '^leave ' && within; do sleep 0.1; done
ev=$(events job)
ctr journalctl -b -q --no-pager -o short-precise HEADCOUNT_NAME=job
echo "(fields: $(echo "$ev" | tr '\n' ',' | sed 's/,$//; s/,/; /g'))"
join_pids=$(echo "$ev" | sed -n 's/^join //p' | sort -u)
leave_pids=$(echo "$ev" | sed -n 's/^leave //p' | sort -u)
same=
for p in $join_pids; do
        echo "$leave_pids" | grep -qx "$p" && same=$p
done
detail="events: $(echo "$ev" | tr '\n' ';')"
check "the journal has join and leave for the same HEADCOUNT_PID${same:+ ($same)}" [ -n "$same" ]
detail="events: $(echo "$ev" | tr '\n' ';')"
no_died() { [ -n "$ev" ] && ! echo "$ev" | grep -q '^died '; }
check "the journal has no died event for a normal run" no_died
echo

# Short runs are not sampled: three more runs of true, one after another, are three more
# joins and three more leaves.
header "three runs of true: headcount --system run job -- true, three times"
for i in 1 2 3; do
        ctr headcount --system run job -- true >/dev/null 2>&1 || fail "run $i of job"
done
t_mark=$(now_ms)
while [ "$(events job | grep -c '^leave ')" -lt 4 ] && within; do sleep 0.1; done
ev=$(events job)
detail="events: $(echo "$ev" | tr '\n' ';')"
check "the journal has 4 joins of job in all" equals "$(echo "$ev" | grep -c '^join ')" 4
check "the journal has 4 leaves of job in all" equals "$(echo "$ev" | grep -c '^leave ')" 4
check "and no death" no_died
echo

# Every run is in the journal, not only in the stderr log target: 200 runs of true one
# after another, and 100 at once, are exactly as many joins and leaves, and no death.
header "200 runs of true in a row, and 100 at once, under the shipped unit"
ctr sh -c 'for i in $(seq 200); do headcount --system run row -- true || exit 1; done' >/dev/null 2>&1 ||
        fail "200 runs of row"
ctr sh -c 'for i in $(seq 100); do headcount --system run --max 100 burst -- true & done; wait' \
        >/dev/null 2>&1 || fail "100 runs of burst"
t_mark=$(now_ms)
while { [ "$(events row | grep -c '^leave ')" -lt 200 ] ||
        [ "$(events burst | grep -c '^leave ')" -lt 100 ]; } && within; do sleep 0.2; done
for n in row:200 burst:100; do
        ev=$(events "${n%:*}")
        check "the journal has ${n#*:} joins of ${n%:*}" equals "$(echo "$ev" | grep -c '^join ')" "${n#*:}"
        check "the journal has ${n#*:} leaves of ${n%:*}" equals "$(echo "$ev" | grep -c '^leave ')" "${n#*:}"
        check "and no death of ${n%:*}" equals "$(echo "$ev" | grep -c '^died ')" 0
done
echo

out=$(mgr_nobody Count s job 2>&1)
check "Count(\"job\") works as nobody" equals "$out" "u 0"
out=$(ctr runuser -u nobody -- busctl call org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus RequestName su org.headcount.Manager1 4 2>&1)
rc=$?
detail="exit $rc: $out"
denied() { [ "$rc" -ne 0 ] && printf '%s\n' "$out" | grep -qi 'access denied'; }
check "nobody may not take the name org.headcount.Manager1" denied

# Holders of 'pool', each a transient service in the container: 'headcount run' (the
# service's main process) and its sleep.
# hold UNIT COUNT: starts UNIT, waits until 'count pool' says COUNT; sets wrapper and victim
# (the sleep's pid).
hold() {
        ctr systemd-run --quiet --collect --unit="$1" \
                headcount --system run --max 2 pool -- sleep 100 ||
                fail "systemd-run $1"
        victim=
        t_mark=$(now_ms)
        while within; do
                n=$(ctr headcount --system count pool 2>/dev/null)
                wrapper=$(prop "$1" MainPID)
                victim=$(ctr pgrep -P "${wrapper:-0}" -x sleep 2>/dev/null | head -n 1)
                [ "$n" = "$2" ] && [ -n "$victim" ] && return 0
                sleep 0.1
        done
}
died_victim() { echo "$ev" | grep -qx "died $victim"; }
left_victim() { echo "$ev" | grep -qx "leave $victim"; }
after_kill() {
        while n=$(ctr headcount --system count pool 2>&1); [ "$n" != 1 ] && within; do sleep 0.05; done
        check "$1: headcount --system count pool prints 1 ($(since_mark))" equals "$n" 1
        while out=$(mgr Count s pool 2>&1); [ "$out" != "u 1" ] && within; do sleep 0.05; done
        check "$1: D-Bus Count(\"pool\") returns 1 ($(since_mark))" equals "$out" "u 1"
        # a command killed under a live wrapper is a leave (with signal KILL: the wrapper
        # records it); a wrapper killed with it is a death
        while ev=$(events pool); ! $2 && within; do sleep 0.05; done
        detail="events for pool: $(echo "$ev" | tr '\n' ';')"
        check "$1: the journal has HEADCOUNT_EVENT=$3 HEADCOUNT_PID=$victim ($(since_mark))" $2
}

header "a SIGKILLed command: two of 'headcount --system run --max 2 pool -- sleep 100', one sleep killed (a leave with signal KILL)"
hold headcount-pool-a.service 1
hold headcount-pool-b.service 2
check "two holders: headcount --system count pool prints 2" equals "$n" 2
t_mark=$(now_ms)
while out=$(mgr Count s pool 2>&1); [ "$out" != "u 2" ] && within; do sleep 0.05; done
check "two holders: D-Bus Count(\"pool\") returns 2 ($(since_mark))" equals "$out" "u 2"
wrapper=$(prop headcount-pool-a.service MainPID)
victim=$(ctr pgrep -P "${wrapper:-0}" -x sleep | head -n 1)
[ -n "$victim" ] || die "no sleep under headcount-pool-a (wrapper pid ${wrapper:-none})"
ctr headcount --system list pool | sed 's/^/#    /'
info "SIGKILL to pid $victim (sleep, child of 'headcount run' pid $wrapper)"
t_mark=$(now_ms)
ctr kill -KILL "$victim"
after_kill "sleep killed" left_victim leave
sleep 0.2
ctr journalctl -b -q --no-pager -o short-precise HEADCOUNT_NAME=pool
echo "(fields: $(events pool | tr '\n' ',' | sed 's/,$//; s/,/; /g'))"

# The seat freed by the kernel alone: nobody is left to give it back.
header "a holder SIGKILLed whole: systemctl kill -s KILL on a third holder's service (headcount run and its sleep)"
hold headcount-pool-c.service 2
check "a second pair of holders: headcount --system count pool prints 2" equals "$n" 2
info "SIGKILL to every process of headcount-pool-c.service: pids $wrapper (headcount run) and $victim (sleep)"
cursor=$(ctr journalctl -b -q -n 1 -o export HEADCOUNT_NAME=pool | sed -n 's/^__CURSOR=//p')
t_mark=$(now_ms)
ctr systemctl kill -s KILL headcount-pool-c.service
after_kill "whole holder killed" died_victim died
sleep 0.2
ctr journalctl -b -q --no-pager -o short-precise --after-cursor="$cursor" HEADCOUNT_NAME=pool
echo "(fields: $(events pool --after-cursor="$cursor" | tr '\n' ',' | sed 's/,$//; s/,/; /g'))"
echo

header "a region that a user makes in /run/headcount: root's daemon counts and reports it"
ctr systemd-run --quiet --collect --uid=nobody --unit=headcount-user.service \
        headcount --system run userjob -- sleep 100 || fail "systemd-run headcount-user.service"
t_mark=$(now_ms)
while out=$(mgr Count s userjob 2>&1); [ "$out" != "u 1" ] && within; do sleep 0.05; done
check "D-Bus Count(\"userjob\") of nobody's region returns 1 ($(since_mark))" \
        equals "$out" "u 1"
owner=$(ctr stat -c %U /run/headcount/userjob 2>&1)
check "the region is nobody's ($owner)" equals "$owner" nobody
joined_userjob() { events userjob | grep -q '^join '; }
while ! joined_userjob && within; do sleep 0.05; done
check "the journal has a join for nobody's region" joined_userjob
ctr systemctl stop headcount-user.service
ctr journalctl -b -q --no-pager -o short-precise HEADCOUNT_NAME=userjob
echo

# A second daemon by hand.
out=$(ctr -t 10 headcountd --system --bus=none 2>&1)
rc=$?
detail="exit $rc: $out"
# 124: timeout stopped it, so it ran.
refused() { [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; }
check "a second headcountd --system --bus=none is refused (exit $rc)" refused
detail="$out"
names_running() { printf '%s\n' "$out" | grep -Eq "(^|[^0-9])$mainpid([^0-9]|$)"; }
check "its message names the running one (pid $mainpid)" names_running
check "the service still runs after the refused start" \
        equals "$(prop headcountd.service ActiveState) $(prop headcountd.service MainPID)" "active $mainpid"

header "headcountd's own journal"
ctr journalctl -b -q --no-pager -o short-precise -u headcountd.service
echo

out=$(ctr systemctl stop headcountd.service 2>&1)
rc=$?
detail="exit $rc: $out"
check "systemctl stop headcountd" [ "$rc" -eq 0 ]
check "after the stop: Result=success, inactive" \
        equals "$(prop headcountd.service Result) $(prop headcountd.service ActiveState)" "success inactive"

# The fleet agent as docs/fleet.md's "Production setup" has it: the shipped drop-in
# (headcountd-fleet.conf) on the system unit, an etcd with authentication and a user whose
# role has the prefix alone, the password from the systemd credential. etcd runs in the
# container, on its own loopback (--private-network): its ports are nobody else's.
header "the fleet agent under the shipped drop-in"
check "the plain unit opens AF_UNIX sockets only" \
        equals "$(prop headcountd.service RestrictAddressFamilies)" AF_UNIX
ep=http://127.0.0.1:2379
ectl() { ctr -t 20 etcdctl --endpoints "$ep" "$@"; }
ctr systemd-run --quiet --collect --unit=hc-etcd.service /usr/bin/etcd --name hc \
        --data-dir /var/lib/hc-etcd --listen-client-urls "$ep" --advertise-client-urls "$ep" \
        --listen-peer-urls http://127.0.0.1:2380 --log-level error ||
        fail "systemd-run etcd in the container"
t_mark=$(now_ms)
while ! ectl endpoint health >/dev/null 2>&1 && within; do sleep 0.1; done
fleet_pw=hc-$$-$(now_ms)
setup_auth() {
        ectl user add root:root-$fleet_pw && ectl user grant-role root root &&
        ectl role add headcount && ectl role grant-permission headcount --prefix=true readwrite /headcount/ &&
        ectl user add "headcount:$fleet_pw" && ectl user grant-role headcount headcount &&
        ectl auth enable
}
setup_auth >"$work/etcd-setup.log" 2>&1
rc=$?
detail=$(tail -n 3 "$work/etcd-setup.log")
check "etcd runs in the container, with users, a role limited to /headcount/ and auth on" [ "$rc" -eq 0 ]
dropin=/etc/systemd/system/headcountd.service.d
ctr sh -c "mkdir -p /etc/headcount '$dropin' && umask 077 && printf '%s\n' '$fleet_pw' >/etc/headcount/etcd-password &&
        sed -e 's|--etcd https://[^ ]*|--etcd $ep|' -e '/--etcd-cacert/d' -e '/--etcd-cert /d' \
        /usr/share/headcount/headcountd-fleet.conf >'$dropin/fleet.conf'" ||
        fail "install the drop-in"
ctr systemctl daemon-reload
check "with the drop-in the unit may open IP sockets too" \
        matches "$(prop headcountd.service RestrictAddressFamilies)" 'AF_INET.*AF_INET6'
out=$(ctr systemctl start headcountd.service 2>&1)
rc=$?
detail="exit $rc: $out"
check "systemctl start headcountd with the fleet drop-in" [ "$rc" -eq 0 ]
status_text=$(prop headcountd.service StatusText)
check "READY=1 came with the lease: StatusText says so ('$status_text')" \
        matches "$status_text" 'fleet: lease held'
out=$(ctr busctl get-property org.headcount.Manager1 /org/headcount/Manager1 org.headcount.Manager1 FleetState 2>&1)
check "the FleetState property says the lease is held ($out)" equals "$out" 's "lease held"'
out=$(ctr runuser -u nobody -- headcount --system --fleet status 2>&1)
rc=$?
detail="exit $rc: $out"
check "headcount --system --fleet status as nobody: 'lease held', exit 0" \
        equals "$rc $out" "0 lease held"
out=$(ctr runuser -u nobody -- headcount --system --fleet run --max 1 fleetjob -- \
        sh -c 'echo "fence $HEADCOUNT_FENCE"' 2>&1)
rc=$?
detail="exit $rc: $out"
check "a fleet run as nobody through /run/headcountd/fleet.sock ($out)" \
        matches "$rc $out" '^0 fence [0-9]+$'
ctr systemd-run --quiet --collect --uid=nobody --unit=hc-fleet-holder.service \
        headcount --system --fleet run --max 1 held -- sleep 100 || fail "systemd-run a fleet holder"
t_mark=$(now_ms)
while out=$(ctr runuser -u nobody -- headcount --system --fleet count held 2>&1); [ "$out" != 1 ] && within; do
        sleep 0.1
done
check "nobody's fleet holder is counted ($(since_mark))" equals "$out" 1
fleetpid=$(prop headcountd.service MainPID)
pw_nowhere() {
        ! ctr journalctl -b --no-pager -u headcountd.service | grep -qF "$fleet_pw" &&
        ! ctr cat "/proc/$fleetpid/cmdline" "/proc/$fleetpid/environ" | tr '\0' ' ' | grep -qF "$fleet_pw"
}
detail="it is there"
check "the etcd password is in no log line, argument or environment of the agent" pw_nowhere
out=$(ctr systemctl stop headcountd.service 2>&1)
rc=$?
detail="exit $rc: $out"
check "systemctl stop headcountd (the agent revokes its lease)" [ "$rc" -eq 0 ]
keys=$(ectl --user "root:root-$fleet_pw" get --prefix /headcount/held/s/ --keys-only 2>&1)
check "the holder's seat key went with the lease ('$keys')" equals "$keys" ""
ctr systemctl stop hc-fleet-holder.service 2>/dev/null
ctr journalctl -b -q --no-pager -o short-precise -u headcountd.service | tail -n 8
ctr rm -rf "$dropin" /etc/headcount
ctr systemctl daemon-reload
ctr systemctl stop hc-etcd.service 2>/dev/null
echo

out=$(ctr systemd-analyze verify "$unitdir/headcountd.service" 2>&1)
rc=$?
detail="exit $rc: $out"
clean() { [ "$rc" -eq 0 ] && [ -z "$out" ]; }
check "systemd-analyze verify headcountd.service is clean" clean
out=$(ctr sh -c 'd=$(mktemp -d) && XDG_RUNTIME_DIR=$d systemd-analyze --user verify "$1"; r=$?; rm -rf "$d"; exit $r' \
        sh "$userunitdir/headcountd.service" 2>&1)
rc=$?
detail="exit $rc: $out"
check "systemd-analyze --user verify on the user unit is clean" clean

[ "$failed" -eq 0 ] && finish 0
finish 1
