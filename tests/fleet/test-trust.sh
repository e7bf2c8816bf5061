#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The fleet client believes only a real agent, and no user can squat or redirect the
# agent's socket. Tried as a hostile local user (a throwaway user made here), against the
# victim's `headcount --fleet`:
#   - a fake agent in the user scope's fallback directory /dev/shm/headcount-UID, made
#     first by the hostile user (in a private mount namespace, on a fresh tmpfs): refused,
#     naming the directory and its owner; the command never runs;
#   - a fake agent's socket in the victim's own directory, served by the hostile user:
#     refused by SO_PEERCRED; the hostile user's own directory and agent: refused (the
#     directory's owner is no trusted peer);
#   - a symlink planted as DIR/.headcountd.fleet in a shared sticky directory, to a
#     socket root serves (one that would admit): never followed;
#   - a file squatting DIR/.headcountd.fleet before headcountd starts: the daemon keeps
#     running, serves the local scope, warns once, and serves the fleet once it is gone;
#   - the system scope's agent listens on /run/headcountd/fleet.sock (in a private mount
#     namespace with a fresh /run), a user reaches it (named, and by the fallback from the
#     user scope), and a fake agent planted in /run/headcount is ignored; a non-root
#     headcountd refuses to serve the system scope's fleet, in one line;
#   - answers are bounded: an endless LIST, an oversized tag, an oversized error text from
#     an agent we trust end in one line, quickly, in bounded memory.
. "${srcdir:-.}/tests/fleet/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root, for throwaway users and private mount namespaces"
for p in useradd userdel runuser unshare nsenter mount /usr/bin/time; do
        command -v "$p" >/dev/null || skip "needs $p"
done
PY=/usr/bin/python3                     # one every user can run
[ -x "$PY" ] || skip "needs $PY"

EVIL=hcb-e$$
VICTIM=hcb-v$$
NS_PID=
trust_cleanup() {
        fleet_cleanup
        [ -n "$NS_PID" ] && kill -KILL "$NS_PID" 2>/dev/null
        userdel -f "$EVIL" 2>/dev/null
        userdel -f "$VICTIM" 2>/dev/null
        rm -rf "${W:-/nonexistent}"
}
trap trust_cleanup EXIT
useradd -M -N -d /nonexistent -s /usr/sbin/nologin "$EVIL" || exit 99
useradd -M -N -d /nonexistent -s /usr/sbin/nologin "$VICTIM" || exit 99
EVIL_UID=$(id -u "$EVIL")

# A directory every user can read, beside $T (same filesystem: sockets move by rename).
W=$(mktemp -d "$(dirname "$T")/hcb-trust.XXXXXX") || exit 99
chmod 0755 "$W"
# absolute paths: nsenter and runuser may start elsewhere
HEADCOUNT=$(realpath "$HEADCOUNT")
HEADCOUNTD=$(realpath "$HEADCOUNTD")
LIBS=
for p in ${LD_LIBRARY_PATH//:/ }; do
        LIBS=$LIBS${LIBS:+:}$(realpath "$p")
done
export LD_LIBRARY_PATH=$LIBS
# A build for coverage writes its counts at exit, where only root may: the other users'
# programs write theirs here instead, so that no "profiling:" line mixes with their stderr.
GCOV_OTHER=$W/gcov
mkdir -m 1777 "$GCOV_OTHER"

# one_line TEXT: stderr is one line that contains TEXT.
one_line() {
        same "stderr lines" "$(wc -l <"$T/err")" 1
        contains "$T/err" "$1"
}

# as USER CMD...: CMD as USER, with this build's library.
as() {
        local user=$1
        shift
        runuser -u "$user" -- env LD_LIBRARY_PATH="$LIBS" GCOV_PREFIX="$GCOV_OTHER" "$@"
}

# A fake agent: fake PATH MODE serves SOCK_SEQPACKET on PATH; MODE is the answer to every
# request (fields separated by spaces), or "endless" (a LIST that never ends), "bigtag"
# (a LIST entry with a 200-byte tag), "longerr" (an ERR with a 2000-byte text).
cat >"$W/fake.py" <<'PY'
import os, socket, sys, threading
path, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
# bound under another name and listening before it gets PATH, which the test waits for:
# a socket file that is bound but not yet listening refuses connections
s.bind(path + ".new")
os.chmod(path + ".new", 0o666)
s.listen(64)
os.rename(path + ".new", path)

def fields(*a):
    return b"\0".join(str(x).encode() for x in a)

def serve(c):
    with c:
        try:
            while c.recv(8192):
                if mode == "endless":
                    n = 0
                    while True:
                        c.send(fields("I", n, n + 1, "h", 1, 0, 0, ""))
                        n += 1
                elif mode == "bigtag":
                    c.send(fields("I", 0, 1, "h", 1, 0, 0, "t" * 200))
                    c.send(fields("END", 1))
                elif mode == "longerr":
                    c.send(fields("ERR", 5, "e" * 2000))
                else:
                    c.send(fields(*mode.split()))
        except OSError:
            pass

while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
chmod 0644 "$W/fake.py"

# fake_start USER PATH MODE: a fake agent as USER, ready when this returns.
fake_start() {
        local user=$1 path=$2 mode=$3
        runuser -u "$user" -- "$PY" "$W/fake.py" "$path" "$mode" 2>>"$T/fake.log" &
        started_pids="$started_pids $!"
        FAKE_PID=$!
        wait_for 10 "fake agent on $path" test -S "${NS_ROOT:-}$path"
}

fake_stop() {
        kill_tree KILL "$1"
        wait "$1" 2>/dev/null
}

# ---- A private mount namespace: fresh tmpfs on /dev/shm and on /run ----
unshare -m --propagation private sleep 3600 &
NS_PID=$!
ns_ready() {
        [ "$(readlink "/proc/$NS_PID/ns/mnt")" != "$(readlink /proc/$$/ns/mnt)" ]
}
wait_for 10 "the private mount namespace" ns_ready
in_ns() {
        nsenter -t "$NS_PID" -m -- "$@"
}
in_ns mount -t tmpfs -o mode=1777,size=64m tmpfs /dev/shm || exit 99
in_ns mount -t tmpfs -o mode=0755,size=16m tmpfs /run || exit 99
in_ns mkdir -m 1777 /run/headcount || exit 99
in_ns chmod 1777 /run/headcount
NS_ROOT=/proc/$NS_PID/root

# ---- 1. Impersonation through /dev/shm: root's user scope, squatted by the hostile user ----
in_ns runuser -u "$EVIL" -- mkdir -m 0755 /dev/shm/headcount-0
in_ns runuser -u "$EVIL" -- "$PY" "$W/fake.py" /dev/shm/headcount-0/.headcountd.fleet "OK 1 0" \
        2>>"$T/fake.log" &
FAKE_PID=$!
started_pids="$started_pids $FAKE_PID"
wait_for 10 "the fake agent in /dev/shm/headcount-0" test -S "$NS_ROOT/dev/shm/headcount-0/.headcountd.fleet"
expect 1 in_ns env -u HEADCOUNT_DIR -u XDG_RUNTIME_DIR "$HEADCOUNT" --fleet run x -- touch "$T/ran-1" &&
        one_line "in the fleet scope: not trusting the fleet scope's directory /dev/shm/headcount-0: it is owned by uid $EVIL_UID ($EVIL)"
check "the command did not run under an impostor" [ ! -e "$T/ran-1" ]
# the same for a query: nothing is read from the impostor
expect 1 in_ns env -u HEADCOUNT_DIR -u XDG_RUNTIME_DIR "$HEADCOUNT" --fleet count x &&
        contains "$T/err" "/dev/shm/headcount-0"
fake_stop "$FAKE_PID"

# ---- 2. The victim's own directory, a socket served by another uid ----
mkdir -m 0700 "$T/own"
mkdir -m 0700 "$W/evil" && chown "$EVIL" "$W/evil"
fake_start "$EVIL" "$W/evil/sock" "OK 1 0"
mv "$W/evil/sock" "$T/own/.headcountd.fleet" && chown root "$T/own/.headcountd.fleet"
expect 1 "$HEADCOUNT" --dir "$T/own" --fleet run x -- touch "$T/ran-2" &&
        one_line "not trusting the agent on $T/own/.headcountd.fleet: it runs as uid $EVIL_UID ($EVIL)"
check "the command did not run under another uid's agent" [ ! -e "$T/ran-2" ]
fake_stop "$FAKE_PID"

# ... and a directory of the hostile user's, with its owner's agent: the directory's owner
# is no trusted peer, and the directory fails the local scopes' checks
mkdir -m 0755 "$W/theirs" && chown "$EVIL" "$W/theirs"
fake_start "$EVIL" "$W/theirs/.headcountd.fleet" "OK 1 0"
expect 1 "$HEADCOUNT" --dir "$W/theirs" --fleet run x -- touch "$T/ran-2b" &&
        one_line "not trusting the fleet scope's directory $W/theirs: it is owned by uid $EVIL_UID ($EVIL), mode 0755"
check "the command did not run under the directory owner's agent" [ ! -e "$T/ran-2b" ]
fake_stop "$FAKE_PID"

# ---- 3. A planted symlink in a shared sticky directory, to a socket root serves ----
mkdir -m 1777 "$W/shared" && chmod 1777 "$W/shared"
mkdir -m 0755 "$W/root"
fake_start root "$W/root/service" "OK 1 0"
as "$EVIL" ln -s "$W/root/service" "$W/shared/.headcountd.fleet"
expect 1 as "$VICTIM" "$HEADCOUNT" --dir "$W/shared" --fleet run x -- touch "$W/shared/ran-3" &&
        one_line "not trusting $W/shared/.headcountd.fleet: it is a symlink owned by uid $EVIL_UID ($EVIL)"
check "the command did not run through a planted symlink" [ ! -e "$W/shared/ran-3" ]
expect 1 "$HEADCOUNT" --dir "$W/shared" --fleet count x && contains "$T/err" "a symlink"
fake_stop "$FAKE_PID"

# ---- 4. The squat: a file in the agent's place before headcountd starts ----
etcd_start 1
mkdir -m 1777 "$W/squat" && chmod 1777 "$W/squat"
as "$EVIL" touch "$W/squat/.headcountd.fleet"
"$HEADCOUNTD" --dir "$W/squat" --bus=none --log-target stderr --host sq \
        --etcd "$ETCD_ENDPOINTS" --etcd-prefix "$FLEET_PREFIX" >"$T/squat.log" 2>&1 &
SQUAT_PID=$!
started_pids="$started_pids $SQUAT_PID"
wait_for 10 "the squat warning" grep -q "Cannot serve the fleet on $W/squat/.headcountd.fleet yet" "$T/squat.log"
contains "$T/squat.log" "a file owned by uid $EVIL_UID ($EVIL)"
# a local seat held until the daemon has logged it
"$HEADCOUNT" --dir "$W/squat" run x -- sleep 60 &
HOLDER=$!
started_pids="$started_pids $HOLDER"
wait_for 10 "the local join in the log" grep -q "x: .* joined" "$T/squat.log" ||
        sed "s/^/  squat.log: /" "$T/squat.log" >&2
kill -TERM "$HOLDER"
wait "$HOLDER" 2>/dev/null
check "headcountd runs beside the squatter" running "$SQUAT_PID"
check "no fleet socket while the name is taken" [ ! -S "$W/squat/.headcountd.fleet" ]
rm -f "$W/squat/.headcountd.fleet"
wait_for 10 "the fleet socket once the name is free" test -S "$W/squat/.headcountd.fleet"
expect 0 "$HEADCOUNT" --dir "$W/squat" --fleet count x && same "fleet count" "$(cat "$T/out")" 0
same "squat warnings" "$(grep -c "Cannot serve the fleet" "$T/squat.log")" 1
contains "$T/squat.log" "Serving the fleet on $W/squat/.headcountd.fleet now"
# it stops cleanly, and takes its socket with it
kill -TERM "$SQUAT_PID"
wait "$SQUAT_PID"
same "headcountd's exit status" "$?" 0
check "the socket is gone with its agent" [ ! -e "$W/squat/.headcountd.fleet" ]

# ---- 5. The system scope's socket: root's, at a fixed path ----
# a user cannot serve it: one line, exit 1
expect 1 in_ns runuser -u "$VICTIM" -- env -u XDG_RUNTIME_DIR LD_LIBRARY_PATH="$LIBS" GCOV_PREFIX="$GCOV_OTHER" \
        timeout 20 "$HEADCOUNTD" --system --bus=none --log-target stderr --host u --etcd "$ETCD_ENDPOINTS"
same "the refusal's lines" "$(wc -l <"$T/err")" 1
contains "$T/err" "only root may, on /run/headcountd/fleet.sock"
nsenter -t "$NS_PID" -m -- "$HEADCOUNTD" --system --bus=none --log-target stderr --host sys \
        --etcd "$ETCD_ENDPOINTS" --etcd-prefix "$FLEET_PREFIX" >"$T/system.log" 2>&1 &
SYS_PID=$!                              # headcountd: nsenter execs it
started_pids="$started_pids $SYS_PID"
wait_for 15 "the system scope's fleet socket" test -S "$NS_ROOT/run/headcountd/fleet.sock"
same "its owner and mode" "$(stat -c '%U %a' "$NS_ROOT/run/headcountd/fleet.sock")" "root 666"
check "nothing of the agent's in /run/headcount" [ ! -e "$NS_ROOT/run/headcount/.headcountd.fleet" ]
# a fake agent in the scope's directory (1777), which the old clients looked at
in_ns runuser -u "$EVIL" -- "$PY" "$W/fake.py" /run/headcount/.headcountd.fleet "OK 7" 2>>"$T/fake.log" &
FAKE_PID=$!
started_pids="$started_pids $FAKE_PID"
wait_for 10 "the planted agent in /run/headcount" test -S "$NS_ROOT/run/headcount/.headcountd.fleet"
expect 0 in_ns runuser -u "$VICTIM" -- env LD_LIBRARY_PATH="$LIBS" GCOV_PREFIX="$GCOV_OTHER" \
        "$HEADCOUNT" --system --fleet count x && same "system fleet count" "$(cat "$T/out")" 0
# no agent of the user's own: the fallback finds the system's
expect 0 in_ns runuser -u "$VICTIM" -- env -u HEADCOUNT_DIR -u XDG_RUNTIME_DIR LD_LIBRARY_PATH="$LIBS" GCOV_PREFIX="$GCOV_OTHER" \
        "$HEADCOUNT" --fleet count x && same "fallback fleet count" "$(cat "$T/out")" 0
expect 0 in_ns runuser -u "$VICTIM" -- env -u HEADCOUNT_DIR -u XDG_RUNTIME_DIR LD_LIBRARY_PATH="$LIBS" GCOV_PREFIX="$GCOV_OTHER" \
        "$HEADCOUNT" --fleet run --max 1 x -- true
fake_stop "$FAKE_PID"
kill -TERM "$SYS_PID"
wait "$SYS_PID"
same "the system headcountd's exit status" "$?" 0
check "the system socket is gone with its agent" [ ! -e "$NS_ROOT/run/headcountd/fleet.sock" ]

# ---- 6. Bounds on every answer, from an agent we trust (ours) ----
mkdir -m 0700 "$T/bounds"
# list_bounded MODE TEXT: 'list' fails in one line naming TEXT, within 10 s, under 100 MB
# (at most 500 MB of address space: the old unbounded reading stops there)
list_bounded() {
        local start end
        fake_start root "$T/bounds/.headcountd.fleet" "$1"
        start=$(now_ms)
        # no ulimit -v: a sanitizer's shadow memory takes terabytes of address space; the
        # bound is the timeout, and the check is the RSS below
        expect 1 bash -c 'exec /usr/bin/time -f %M -o "$1" timeout 15 "$2" --dir "$3" --fleet list x' \
                _ "$T/rss" "$HEADCOUNT" "$T/bounds" && one_line "$2"
        end=$(now_ms)
        check "$1: within 10 s ($((end - start)) ms)" [ $((end - start)) -lt 10000 ]
        check "$1: under 100 MB ($(tail -n 1 "$T/rss") KB)" [ "$(tail -n 1 "$T/rss")" -lt 100000 ]
        echo "list against '$1': $((end - start)) ms, max RSS $(tail -n 1 "$T/rss") KB"
        fake_stop "$FAKE_PID"
        rm -f "$T/bounds/.headcountd.fleet"
}
list_bounded endless "headcountd sent a malformed answer: a listing of more than 100000 entries"
list_bounded bigtag "headcountd sent a malformed answer: entry 0 of a listing has a tag longer than 64 bytes"
list_bounded longerr "headcountd sent a malformed answer: an error text longer than 1023 bytes"

finish
