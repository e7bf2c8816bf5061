#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Users who may only read a region: they cannot deny service with read locks (on seats, on
# the region lock, on the listener's lock, on headcountd's own lock), and they still count,
# list and wait. Root only (throwaway users); runs in a mount namespace of its own with a
# fresh tmpfs on /run, so that the host's /run and /dev/shm are never touched.
if [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: needs root (a throwaway user, a mount namespace)" >&2
        exit 77
fi
if [ -z "${HC_READERS_NS:-}" ]; then
        if ! unshare -m --propagation private true 2>/dev/null; then
                echo "SKIP: cannot make a mount namespace" >&2
                exit 77
        fi
        HC_READERS_NS=1 exec unshare -m --propagation private "$BASH" "$0" "$@"
fi
mount -t tmpfs -o mode=0755 tmpfs /run || { echo "cannot mount a tmpfs on /run" >&2; exit 99; }

. "${srcdir:-.}/tests/cli/lib.sh"
events_open

HEADCOUNTD=${HEADCOUNTD:-$top_builddir/daemon/headcountd}
LIBHEADCOUNT=${LIBHEADCOUNT:-$top_builddir/lib/.libs/libheadcount.so}
R=/run/hcrd                     # the regions: a directory every user may read
mkdir -m 0755 "$R"
mkdir -m 1777 /run/headcount    # what tmpfiles.d makes, for headcountd --system
export HEADCOUNT_DIR=$R
BASE=$((1 << 40))

rduser=
readers_cleanup() {
        [ -n "$rduser" ] && userdel -f "$rduser" >/dev/null 2>&1
        cleanup
}
trap readers_cleanup EXIT

rduser=hcrd$$
userdel -f "$rduser" >/dev/null 2>&1
if ! useradd -M -N -d / -s /bin/sh "$rduser" >/dev/null 2>&1; then
        rduser=
        echo "SKIP: cannot create a test user" >&2
        exit 77
fi

# as the reader
rd() {
        runuser -u "$rduser" -- env HEADCOUNT_DIR="$R" "$@"
}

now_ms() {
        echo $(($(date +%s%N) / 1000000))
}

# The reader's attack: open every file of region $1 read-only, and take a read lock on the
# region lock's, the listener's and the creator's bytes and on every seat byte of each;
# "opened FILE" or "denied FILE ERRNO" per file, then "ready"; then hold them.
reader_locks='
import errno, fcntl, os, signal, struct, sys
F_OFD_SETLK, BASE = 37, 1 << 40
d, name = sys.argv[1], sys.argv[2]
fds = []
def rdlock(fd, start, n=1):
    try:
        fcntl.fcntl(fd, F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_RDLCK, 0, start, n, 0))
    except OSError:
        pass
for fn in sorted(os.listdir(d)):
    if fn != name and not fn.startswith("." + name + "."):
        continue
    try:
        fd = os.open(os.path.join(d, fn), os.O_RDONLY)
    except OSError as e:
        print("denied", fn, errno.errorcode[e.errno], flush=True)
        continue
    fds.append(fd)
    print("opened", fn, flush=True)
    for off in (BASE - 3, BASE - 2, BASE - 1):
        rdlock(fd, off)
    k = int(fn.rsplit(".", 1)[1]) if fn != name and fn.rsplit(".", 1)[1].isdigit() else 0
    for i in range(64):
        rdlock(fd, BASE + 64 * k + i)
print("ready", flush=True)
while True:
    signal.pause()
'

# As root: LOCK (r or w) on seats FIRST..LAST of region $1, each through a description of
# its own (write locks: held seats, as holders hold them); "ready", then hold them.
root_locks='
import fcntl, glob, os, signal, struct, sys
F_OFD_SETLK, BASE = 37, 1 << 40
d, name, kind, first, last = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
zero = [p for p in glob.glob(os.path.join(d, "." + name + ".*.0"))][0]
fds = []
for i in range(first, last + 1):
    path = zero[:-1] + str(i // 32)           # 32 seats a lock file (format.h)
    fd = os.open(path, os.O_RDWR)
    t = fcntl.F_WRLCK if kind == "w" else fcntl.F_RDLCK
    fcntl.fcntl(fd, F_OFD_SETLK, struct.pack("hhqqi", t, 0, BASE + i, 1, 0))
    fds.append(fd)
print("ready", flush=True)
while True:
    signal.pause()
'

# start_locker OUT CMD...: runs CMD in the background with its output in $T/OUT, and waits
# for its "ready"
start_locker() {
        local out=$T/$1
        shift
        "$@" >"$out" 2>&1 &
        track $!
        wait_for 10 "$out: ready" grep -qxs ready "$out"
}

stop_job() {
        kill -KILL -- "-$1" 2>/dev/null
        wait "$1" 2>/dev/null
}

# ---- Lock files carry no bit for a class that may not write the region ----
for m in 0644:600 0664:660 0666:666 0600:600; do
        expect 0 hc create "m${m%%:*}" --mode "${m%%:*}"
        same "lock file mode of a ${m%%:*} region" "$(stat -c %a "$R"/.m"${m%%:*}".*.0)" "${m##*:}"
done

# a lock file found with other bits (the region's mode was changed since) is put right by
# its owner's next join
chmod 0644 "$R"/.m0644.*.0
expect 0 hc run m0644 -- true
same "lock file mode put right by its owner" "$(stat -c %a "$R"/.m0644.*.0)" 600

# ---- A reader's read locks on region rd ----
expect 0 hc create rd --mode 0644
start_locker reader.out rd python3 -c "$reader_locks" "$R" rd
contains "$T/reader.out" "opened rd"
checks=$((checks + 1))
grep -q '^denied \.rd\..*\.0 EACCES$' "$T/reader.out" ||
        fail "the reader opened a lock file: $(tr '\n' ' ' <"$T/reader.out")"

# run --max 1 gets its seat at once, and its holder may listen as the primary
expect 0 hc run --max 1 rd -- true
expect 0 python3_lib -c '
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
slot, listener = ctypes.c_void_p(), ctypes.c_void_p()
r = lib.hc_join(b"rd", None, ctypes.byref(slot))
if r < 0:
    sys.exit("hc_join: %d" % r)
r = lib.hc_listen(b"rd", None, slot, ctypes.byref(listener))
if r < 0:
    sys.exit("hc_listen: %d" % r)
' "$LIBHEADCOUNT"
expect 0 hc count rd
same "count with nobody in it" "$(cat "$T/out")" 0

# a holder: counted by root, and by the reader (through /proc/locks)
hc run --max 1 rd -- sh -c 'echo $$ >"$T/holder.pid"; read _ <"$T/gate"' >"$T/holder.out" 2>&1 &
holder=$!
track $holder
wait_for 10 "the holder got its seat" test -s "$T/holder.pid"
expect 0 hc count rd
same "count with one holder" "$(cat "$T/out")" 1
expect 0 rd "$HEADCOUNT" count rd
same "the reader's count with one holder" "$(cat "$T/out")" 1
expect 0 rd "$HEADCOUNT" list -n -o PID rd
same "the reader's list" "$(tr -d ' ' <"$T/out")" "$(cat "$T/holder.pid" 2>/dev/null || echo none)"

# the reader's wait wakes when the holder leaves, and not before
rd sh -c '"$HEADCOUNT"'" wait rd --below 1 --timeout 20; echo \$? \$((\$(date +%s%N) / 1000000))" \
        >"$T/wait.out" 2>&1 &
waiter=$!
track $waiter
# waiting: the reader's headcount sleeps on its inotify instance
waiting() {
        local p
        for p in $(pgrep -u "$rduser" -x headcount); do
                ls -l "/proc/$p/fd" 2>/dev/null | grep -q 'anon_inode:inotify' && return 0
        done
        return 1
}
wait_for 10 "the reader's wait is waiting while the seat is held" waiting
t0=$(now_ms)
release 1
wait_for 10 "the holder left" sh -c "! kill -0 $holder 2>/dev/null"
wait_for 10 "the reader's wait woke" sh -c "! kill -0 $waiter 2>/dev/null"
read -r wait_status wait_end <"$T/wait.out"
same "the reader's wait status" "$wait_status" 0
checks=$((checks + 1))
[ "${wait_end:-0}" -ge "$t0" ] || fail "the reader's wait returned while the seat was held"
[ "${wait_end:-0}" -lt $((t0 + 2000)) ] || fail "the reader's wait took $((wait_end - t0)) ms to wake"

# root's remove is prompt
t0=$(now_ms)
expect 0 hc remove rd
checks=$((checks + 1))
[ $(($(now_ms) - t0)) -lt 2000 ] || fail "remove took $(($(now_ms) - t0)) ms"
for p in $bg_pids; do
        stop_job "$p"
done
bg_pids=

# ---- Joins past seat 63, and the region lock, under a reader's read locks ----
expect 0 hc create big --mode 0644 --capacity 128 --data-size 4096
# seats 0-31 (lock file 0), then a join that tries past them (it raises the region's seat_hwm
# over lock file 1, as every joiner does), then seats 32-63: held as joiners would hold them
start_locker root32.out python3 -c "$root_locks" "$R" big w 0 31
expect 0 hc run --max 64 big -- true
start_locker root64.out python3 -c "$root_locks" "$R" big w 32 63
expect 0 hc count big
same "64 seats held" "$(cat "$T/out")" 64
start_locker reader2.out rd python3 -c "$reader_locks" "$R" big
t0=$(now_ms)
expect 0 hc run --max 65 big -- true
checks=$((checks + 1))
# a bound that only tells a join at once from one after the library's 5 s lock wait
[ $(($(now_ms) - t0)) -lt 4500 ] || fail "a join past seat 63 took $(($(now_ms) - t0)) ms"
expect 0 python3_lib -c '
import ctypes, sys, time
lib = ctypes.CDLL(sys.argv[1])
rg = ctypes.c_void_p()
r = lib.hc_region_open(b"big", None, ctypes.byref(rg))
if r < 0:
    sys.exit("hc_region_open: %d" % r)
t = time.monotonic()
r = lib.hc_region_lock(rg, 3000)
dt = time.monotonic() - t
if r < 0:
    sys.exit("hc_region_lock: %d after %.3f s" % (r, dt))
lib.hc_region_unlock(rg)
' "$LIBHEADCOUNT"
expect 0 rd "$HEADCOUNT" count big
same "the reader's count of 64 holders" "$(cat "$T/out")" 64
# ... and while 300 locks elsewhere are taken and dropped without pause, which moves the
# entries of /proc/locks between the reader's reads of it
start_locker churn.out python3 -c '
import fcntl, os, struct, sys
path = sys.argv[1]
fds = []
for i in range(300):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.fcntl(fd, 37, struct.pack("hhqqi", fcntl.F_WRLCK, 0, i, 1, 0))
    fds.append(fd)
print("ready", flush=True)
while True:
    for i, fd in enumerate(fds):
        fcntl.fcntl(fd, 37, struct.pack("hhqqi", fcntl.F_UNLCK, 0, i, 1, 0))
        fcntl.fcntl(fd, 37, struct.pack("hhqqi", fcntl.F_WRLCK, 0, i, 1, 0))
' /run/hcrd-churn
counts=$(for i in $(seq 40); do rd "$HEADCOUNT" count big; done | sort | uniq -c | awk '{ printf "%s%sx%s", sep, $1, $2; sep = " " }')
same "the reader's 40 counts of 64 holders under churn" "$counts" "40x64"
for p in $bg_pids; do
        stop_job "$p"
done
bg_pids=

# ---- A seat that is only read-locked is never counted, and the count says so ----
expect 0 hc create rl --mode 0644
start_locker rootrl.out python3 -c "$root_locks" "$R" rl r 1 1
expect 0 hc count rl
same "count with a read-locked seat" "$(cat "$T/out")" 0
contains "$T/err" "1 seat read-locked by someone else"
expect 0 rd "$HEADCOUNT" count rl
same "the reader's count with a read-locked seat" "$(cat "$T/out")" 0
contains "$T/err" "1 seat read-locked by someone else"
expect 0 hc list rl
contains "$T/err" "1 seat read-locked by someone else"
for p in $bg_pids; do
        stop_job "$p"
done
bg_pids=

# ---- A damaged region is removed promptly under a reader's read locks ----
expect 0 hc create dmg --mode 0644
printf '\377' | dd of="$R/dmg" bs=1 seek=8 conv=notrunc status=none     # its fingerprint
start_locker readerd.out rd python3 -c "$reader_locks" "$R" dmg
contains "$T/readerd.out" "opened dmg"
t0=$(now_ms)
expect 0 hc remove dmg
checks=$((checks + 1))
[ $(($(now_ms) - t0)) -lt 2000 ] || fail "removing a damaged region took $(($(now_ms) - t0)) ms"
for p in $bg_pids; do
        stop_job "$p"
done
bg_pids=

# ---- headcountd's own lock ----
if [ ! -x "$HEADCOUNTD" ]; then
        echo "SKIP: no headcountd at $HEADCOUNTD" >&2
else
        # an old lock file with the mode of earlier builds is put right
        mkdir -p -m 0700 /run/headcountd/lock
        echo 1 >/run/headcountd/lock/system.lock
        chmod 0644 /run/headcountd/lock/system.lock
        # and the files of daemons that were killed, or of earlier versions, are swept
        echo 1 >/run/headcountd/dir-1-2.lock
        echo 1 >/run/headcountd/lock/dir-3-4.lock
        "$HEADCOUNTD" --system --bus none --log-target stderr >"$T/d1.log" 2>&1 &
        d1=$!
        track $d1
        wait_for 10 "headcountd --system started" grep -qs "Watching /run/headcount" "$T/d1.log"
        same "stale daemon locks left" "$(cd /run/headcountd && ls dir-1-2.lock lock/dir-3-4.lock 2>/dev/null)" ""
        same "headcountd's lock directory mode" "$(stat -c %a /run/headcountd/lock 2>&1)" 700
        same "headcountd's lock mode" "$(stat -c %a /run/headcountd/lock/system.lock 2>&1)" 600
        for p in /run/headcountd/system.lock /run/headcountd/lock/system.lock; do
                expect 66 rd flock -s -n "$p" true
                contains "$T/err" "Permission denied"
        done
        kill -TERM "$d1"
        wait_for 10 "headcountd stopped" sh -c "! kill -0 $d1 2>/dev/null"
        checks=$((checks + 1))
        left=$(find /run/headcountd -name '*.lock')
        [ -z "$left" ] || fail "headcountd left its lock behind: $left"

        # a reader's shared flock on every path the lock may have cannot keep it out
        for p in /run/headcountd/system.lock /run/headcountd/lock/system.lock; do
                rd flock -s "$p" sleep 600 >/dev/null 2>&1 &
                track $!
        done
        "$HEADCOUNTD" --system --bus none --log-target stderr >"$T/d2.log" 2>&1 &
        d2=$!
        track $d2
        wait_for 10 "headcountd --system started under a reader's flock -s" \
                grep -qs "Watching /run/headcount" "$T/d2.log"
        kill -TERM "$d2" 2>/dev/null
        wait_for 10 "headcountd stopped" sh -c "! kill -0 $d2 2>/dev/null"

        # a --dir daemon leaves no dir-*.lock behind
        "$HEADCOUNTD" --dir "$R" --bus none --log-target stderr >"$T/d3.log" 2>&1 &
        d3=$!
        track $d3
        wait_for 10 "headcountd --dir started" grep -qs "Watching $R" "$T/d3.log"
        kill -TERM "$d3" 2>/dev/null
        wait_for 10 "headcountd --dir stopped" sh -c "! kill -0 $d3 2>/dev/null"
        checks=$((checks + 1))
        left=$(find /run/headcountd -name 'dir-*.lock')
        [ -z "$left" ] || fail "headcountd --dir left its lock behind: $left"
fi

finish
