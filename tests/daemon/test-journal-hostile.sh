#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A hostile writer of a 0666 region in the system scope forges entries in its seats' run
# rings (with valid check words, which anyone who can read the region can compute). What
# it forges is marked as a claim ("unverified") in 'history' and in headcountd's log, is
# logged under the region's own name only, and never puts a raw control byte in the log;
# entries that fail their check are not logged at all. Needs root (a throwaway user, a
# private mount namespace with a fresh tmpfs on /run): exit 77 otherwise.
if [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: needs root" >&2
        exit 77
fi
if [ -z "${HC_PRIVATE_RUN:-}" ]; then
        if ! unshare -m true 2>/dev/null; then
                echo "SKIP: cannot make a mount namespace" >&2
                exit 77
        fi
        # a private /run: the system scope and the daemon's lock never touch the host's
        exec unshare -m env HC_PRIVATE_RUN=1 bash -c \
                'mount --make-rprivate / && mount -t tmpfs -o mode=0755 tmpfs /run &&
                 mkdir -m 1777 /run/headcount && exec bash "$0"' "$0"
fi
. "${srcdir:-.}/tests/cli/lib.sh"
unset HEADCOUNT_DIR

HEADCOUNTD=${HEADCOUNTD:-$top_builddir/daemon/headcountd}
if [ ! -x "$HEADCOUNTD" ] || ! command -v python3 >/dev/null; then
        echo "SKIP: needs headcountd and python3" >&2
        exit 77
fi
user=hcrc$$
userdel -f -r "$user" >/dev/null 2>&1
if ! useradd -M -N "$user" >/dev/null 2>&1; then
        echo "SKIP: cannot create a test user" >&2
        exit 77
fi
hostile_cleanup() {
        userdel -f -r "$user" >/dev/null 2>&1
        cleanup
}
trap hostile_cleanup EXIT
L=$T/daemon.log

expect 0 hc --system create shared --mode 0666 --capacity 4
"$HEADCOUNTD" --system --bus=none --log-target=stderr 2>"$L" &
daemon=$!
track $daemon
wait_for 30 "the daemon watches the system scope" grep -qF "Watching /run/headcount" "$L"

# A real run first: in a region others may write, its entry too is a claim.
expect 0 hc --system run shared -- true
wait_for 30 "the real run is logged" grep -qF "shared: pid" "$L"

# The forger, as another user: seat 2 gets three forged runs (the first left, with a tag
# of terminal escapes and a line that names another region; the last still "running" on a
# free seat, in its record), seat 3 one with a wrong check word, seat 1 a run number far
# in the future.
cat >"$T/forge.py" <<'PY'
import struct, sys
M64 = (1 << 64) - 1
def hash_words(seed, data):
    h = 0xcbf29ce484222325 ^ seed
    for i in range(0, len(data) - 7, 8):
        w, = struct.unpack_from("<Q", data, i)
        h = ((h ^ w) * 0x100000001b3) & M64
        h ^= h >> 29
    return h
f = open(sys.argv[1], "r+b")
hdr = f.read(64)
capacity, = struct.unpack_from("<I", hdr, 16)
table, = struct.unpack_from("<Q", hdr, 24)
region_id, = struct.unpack_from("<Q", hdr, 56)
REC = 192
runs = table + capacity * REC
def record(slot, run, tag, good=True):
    # up to the end's check word: seq, joined, pidns, boot id, pid, uid, listen id, tag, run,
    # the run's start
    body = struct.pack("<QqQ16siIQ64sQQ", 1000 * run, 1700000000000000, 0, b"\0" * 16, 1, 0, 0,
                       tag, run, 1000 * run)
    check = hash_words(region_id ^ (slot << 32), body) | 1
    if not good:
        check ^= 2
    return struct.pack("<Q", check) + body, check
def entry(slot, run, how, status, tag, good=True):
    head, check = record(slot, run, tag, good)
    ended = 2000 * run
    end = hash_words(region_id ^ (slot << 32) ^ 0x52554e5352554e53,
                     struct.pack("<QQhHI", check, ended, status, how, 0)) | 1
    f.seek(runs + (slot * 16 + run % 16) * REC)
    f.write(head + struct.pack("<QQhHI", end, ended, status, how, 0) + b"\0" * 24)
def current(slot, run, tag):
    head, check = record(slot, run, tag)
    f.seek(table + slot * REC)
    f.write(head)
def erased(slot, run):
    f.seek(table + slot * REC)
    f.write(b"\0" * 128 + struct.pack("<Q", run))
tag = b"\x1b]0;owned\x07\x1b[2J\nother: pid 1 joined, slot 0\r\xc2\x9b"
entry(2, 1, 2, 0, tag)
entry(2, 2, 2, 256 + 9, b"forged")
current(2, 3, b"forged")
entry(3, 1, 2, 0, b"bad", good=False)
erased(3, 1)
erased(1, 1 << 58)
f.close()
PY
expect 0 runuser -u "$user" -- python3 - /run/headcount/shared <"$T/forge.py"
# the next look at the region (a join and leave of our own wakes the daemon)
expect 0 hc --system run --max 1 shared -- true
wait_for 30 "the forged runs are logged" grep -qF "shared: pid 1 in another PID namespace (unverified) died holding slot 2" "$L"
contains "$L" "shared: pid 1 in another PID namespace (unverified) joined, slot 2"
contains "$L" "shared: pid 1 in another PID namespace (unverified) left, slot 2"
same "forged joins logged" "$(grep -cF "shared: pid 1 in another PID namespace (unverified) joined, slot 2" "$L")" 3
same "lines about slot 3 (a bad check word)" "$(grep -c "slot 3" "$L")" 0
same "lines that name another region" "$(grep -c "other:" "$L")" 0
same "lines that do not name the region" "$(grep "pid" "$L" | grep -vc "^<[0-9]>shared: ")" 0
same "real runs named as facts" "$(grep "shared: pid" "$L" | grep -vc "(unverified)")" 0
no_raw_controls "$L"

# 'history' shows the forged runs as claims, their tag escaped.
expect 0 hc --system history -J -o seat,pid,tag,how,exit,signal,flags shared
python3 - "$T/out" >"$T/json-check" 2>&1 <<'PY' || { checks=$((checks + 1)); fail "history: $(cat "$T/json-check")"; }
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
forged = [r for r in runs if r["seat"] == 2]
assert [r["how"] for r in forged] == ["left", "left", "died"], forged
assert forged[1]["signal"] == "KILL", forged
assert all("unverified" in r["flags"] for r in runs), runs
assert not [r for r in runs if r["seat"] == 3], runs
assert forged[0]["tag"].startswith("\x1b]0;owned"), forged[0]
PY
checks=$((checks + 1))
no_raw_controls "$T/out"
expect 0 hc --system history shared
no_raw_controls "$T/out"
contains "$T/out" '\x1b]0;owned'

kill -TERM $daemon
wait $daemon
finish
