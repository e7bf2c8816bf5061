#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A seat handed to a command reaches nothing but itself. Root runs 'headcount run --max 8'
# on a 0644 region with a command that drops to user nobody; the command tries to lock
# every byte of every file it inherited (as F_OFD_SETLK through each descriptor). It must
# not get a second seat: the count stays 1, and another run of root's still gets one. When
# the wrapper is SIGKILLed while its command lives, the command keeps its seat (and only
# that one): the count stays 1, a --max 1 run is refused until the command ends, then
# admitted, and the seat's own file goes once it is dead.
# Root only (the command runs as another user); the regions live on a tmpfs of a private
# mount namespace.
. "${srcdir:-.}/tests/cli/lib.sh"
events_open

if [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: needs root (the command runs as another user)" >&2
        exit 77
fi
if [ -z "${HC_HANDED_NS:-}" ]; then
        if ! unshare -m true 2>/dev/null; then
                echo "SKIP: cannot make a mount namespace" >&2
                exit 77
        fi
        # again, in a mount namespace of its own (its own $T; ours goes at exit)
        HC_HANDED_NS=1 unshare -m --propagation private "$BASH" "$0"
        exit $?
fi
nobody="setpriv --reuid=nobody --regid=nogroup --clear-groups"
py=
for p in "$(command -v python3)" /usr/bin/python3; do
        if [ -n "$p" ] && $nobody "$p" -c pass 2>/dev/null; then
                py=$p
                break
        fi
done
if [ -z "$py" ]; then
        echo "SKIP: needs setpriv and a python3 that user nobody can run" >&2
        exit 77
fi

mkdir "$T/fs"
mount -t tmpfs -o mode=0755 hc-handed "$T/fs" || exit 99
dir=$T/fs/regions
mkdir -m 0755 "$dir"
hd() {
        "$HEADCOUNT" --dir "$dir" "$@"
}

# The command: as nobody, lock bytes HC_LOCK_BASE + 0..63 (every seat byte of one lock
# file, and more) through every regular file it inherited, report how many it got and
# through how many files, then hold them until released.
grab='
import fcntl, os, struct, sys
F_OFD_SETLK, F_WRLCK, BASE = 37, 1, 1 << 40
files = got = 0
for name in os.listdir("/proc/self/fd"):
    fd = int(name)
    try:
        st = os.fstat(fd)
    except OSError:
        continue
    if fd < 3 or not (st.st_mode & 0o170000 == 0o100000):
        continue
    files += 1
    for i in range(64):
        try:
            fcntl.fcntl(fd, F_OFD_SETLK, struct.pack("hh4xqqi4x", F_WRLCK, 0, BASE + i, 1, 0))
            got += 1
        except OSError:
            pass
os.write(3, ("grabbed %d files %d %d\n" % (files, got, os.getpid())).encode())
os.read(4, 3)
'
# ---- The command's descriptor reaches no other seat -------------------------------------
expect 0 hd create build --mode 0644 --capacity 8
hd run --max 8 build -- $nobody "$py" -c "$grab" 2>>"$T/run.err" &
track $!
wrapper=$!
next_event
case "$event" in
grabbed*) ;;
*) fail "the command said '$event'" ;;
esac
set -- $event
same "files the command inherited" "$2" 1
expect 0 hd count build
same "count while the command locks all it can" "$(cat "$T/out")" 1
expect 0 hd run --max 8 build -- true
same "list: one holder" "$(hd list -n -o pid build | wc -l)" 1
release 1
wait "$wrapper"
same "the wrapper's exit status" "$?" 0
expect 0 hd count build
same "count after the command" "$(cat "$T/out")" 0
same "own files left after a leave" "$(ls -A "$dir" | grep -c '\.s[0-9]*-')" 0

# ---- SIGKILL of the wrapper while its command lives --------------------------------------
expect 0 hd create solo --mode 0644 --capacity 8
hd run --max 1 solo -- $nobody "$py" -c "$grab" 2>>"$T/run.err" &
track $!
wrapper=$!
next_event
set -- $event
cmd_pid=$5
kill -KILL "$wrapper"
wait "$wrapper" 2>/dev/null
kill -0 "$cmd_pid" 2>/dev/null
same "the command outlives its wrapper" "$?" 0
own=$(ls -A "$dir" | grep '^\.solo\..*\.s0-' || true)
same "the seat's own file is there" "$(echo "$own" | grep -c .)" 1
if [ -n "$own" ]; then
        same "its mode (only root may open it, as the lock files)" "$(stat -c %a "$dir/$own")" 600
fi
expect 0 hd count solo
same "count after SIGKILL of the wrapper" "$(cat "$T/out")" 1
same "list after SIGKILL of the wrapper" "$(hd list -n -o pid solo)" "$cmd_pid"
expect 75 hd run --max 1 solo -- true
expect 0 hd run --max 2 solo -- true
expect 0 hd count solo
same "count after the others came and went" "$(cat "$T/out")" 1
release 1
wait_for 30 "the command ends" sh -c "! kill -0 $cmd_pid 2>/dev/null"
expect 0 hd run --max 1 solo -- true
expect 0 hd count solo
same "count after the command" "$(cat "$T/out")" 0
same "own files left after a reap" "$(ls -A "$dir" | grep -c '\.s[0-9]*-')" 0

# ---- An own file is one of the region's files, not a region ------------------------------
expect 0 hd create other --mode 0644
hd run other -- $nobody "$py" -c "$grab" 2>>"$T/run.err" &
track $!
wrapper=$!
next_event
expect 0 hd names
contains "$T/out" solo
same "names: no stray lines for own files" "$(grep -c '\.s' "$T/out")" 0
same "names: no warnings" "$(wc -c <"$T/err")" 0
release 1
wait "$wrapper"

finish
