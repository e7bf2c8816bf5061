#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Damaged regions through the command line: another user who may write root's 0666 region
# in the system scope lengthens it (no damage) or changes a byte of its header (damage);
# root can then remove it or make it again, never while a seat is held; the other user is
# told whom to ask; 'names' stays short however many files are planted. Runs as root with
# a throwaway user, in a private mount namespace with a fresh tmpfs on /run/headcount, so
# that the host's system scope is never touched. A replacer killed half-way is
# tests/lib/test-damaged.c's (it needs the library's test hooks).
if [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: needs root (another user, and a mount namespace of its own)" >&2
        exit 77
fi
if [ -z "${HC_DAMAGED_NS:-}" ]; then
        if ! unshare -m --propagation private true 2>/dev/null; then
                echo "SKIP: cannot make a mount namespace" >&2
                exit 77
        fi
        HC_DAMAGED_NS=1 exec unshare -m --propagation private "$BASH" "$0" "$@"
fi
# Our own /run/headcount: over the host's when there is one, else in a tmpfs over /run.
if [ -d /run/headcount ]; then
        mount -t tmpfs -o mode=1777 headcount-test /run/headcount || exit 99
else
        mount -t tmpfs -o mode=0755 headcount-test /run || exit 99
        mkdir -m 1777 /run/headcount || exit 99
fi
S=/run/headcount

. "${srcdir:-.}/tests/cli/lib.sh"
events_open

user=hcdm$$
user_uid=
user_gid=
damaged_cleanup() {
        userdel -f "$user" >/dev/null 2>&1
        cleanup
}
trap damaged_cleanup EXIT
userdel -f "$user" >/dev/null 2>&1
if ! useradd -M -N "$user" >/dev/null 2>&1; then
        echo "SKIP: cannot create a test user" >&2
        exit 77
fi
user_uid=$(id -u "$user")
user_gid=$(id -g "$user")

as_user() {
        setpriv --reuid="$user_uid" --regid="$user_gid" --clear-groups \
                env -u XDG_RUNTIME_DIR -u HEADCOUNT_DIR "$@"
}
if ! as_user "$HEADCOUNT" --help >/dev/null 2>&1; then
        echo "SKIP: the test user cannot run $HEADCOUNT from this build tree" >&2
        exit 77
fi

# flip FILE OFFSET: the other user changes the byte at OFFSET of FILE, and leaves.
flip() {
        local b
        b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
        as_user sh -c 'printf "$(printf "\\%03o" "$1")" | dd of="$2" bs=1 seek="$3" conv=notrunc status=none' \
                sh $(((b ^ 16) & 255)) "$1" "$2"
}
# The header: magic at 0, format version at 4, capacity at 16, region id at 56..63.
OFF_VERSION=4
OFF_CAPACITY=16
OFF_ID=60

# lock_files NAME: the lock files (and any other .NAME.* file) in the system scope.
lock_files() {
        (cd "$S" && ls -A | grep -F ".$1." || true)
}

# ---- A file longer than its header says is no damage -------------------------------------
expect 0 hc --system create web --mode 0666 --capacity 4
as_user truncate -s +1 "$S/web"
expect 0 hc --system count web && same "count of a longer region" "$(cat "$T/out")" 0
expect 0 as_user "$HEADCOUNT" --system run web -- true
expect 0 hc --system run web -- true
same "nothing replaced a longer region" "$(cat "$T/err")" ""
as_user truncate -s +4096 "$S/web"
expect 0 hc --system list web

# ---- One changed byte: root removes it, and nothing of it is left ------------------------
expect 0 hc --system create gone --mode 0666 --capacity 4
flip "$S/gone" $OFF_ID
expect 1 hc --system count gone && contains "$T/err" "is not a headcount region"
expect 0 hc --system remove gone
same "files of 'gone' after its removal" "$(ls -A "$S" | grep -c gone)" 0
expect 0 hc --system create gone --mode 0666 --capacity 4
same "stderr of a plain create" "$(cat "$T/err")" ""
expect 0 as_user "$HEADCOUNT" --system run gone -- true

# ---- The other user cannot remove root's damaged region, and is told whom to ask ---------
expect 0 hc --system create other --mode 0666 --capacity 4
flip "$S/other" $OFF_CAPACITY
ino=$(stat -c %i "$S/other")
expect 1 as_user "$HEADCOUNT" --system remove other &&
        one_error_line "cannot remove region 'other': '$S/other' is not a headcount region (another program's file, a damaged region, or one from an incompatible build); ask its owner, 'root' (uid 0), to run 'headcount --system remove other', or use another name"
expect 1 as_user "$HEADCOUNT" --system run other -- true &&
        contains "$T/err" "ask its owner, 'root' (uid 0), to run 'headcount --system remove other'"
expect 1 as_user "$HEADCOUNT" --system create other &&
        contains "$T/err" "ask its owner, 'root' (uid 0)"
same "inode after the other user's tries" "$(stat -c %i "$S/other")" "$ino"
same "lock files after the other user's tries" "$(lock_files other | wc -l)" 1
expect 0 hc --system remove other
same "files of 'other' after root removed it" "$(ls -A "$S" | grep -c other)" 0

# ---- Nobody holds a seat: root's run replaces it, and says so ---------------------------
expect 0 hc --system create free --mode 0666 --capacity 4
flip "$S/free" $OFF_CAPACITY
ino=$(stat -c %i "$S/free")
expect 0 hc --system run free -- true &&
        one_error_line "replaced a damaged region 'free' in '$S' (nobody held a seat in it)"
checks=$((checks + 1))
[ "$(stat -c %i "$S/free")" != "$ino" ] || fail "run did not replace the damaged region"
same "lock files after the replacement" "$(lock_files free | wc -l)" 2   # 64 seats, 32 a file
same "mode of the new region, as the old one" "$(stat -c %a "$S/free")" 666
expect 0 as_user "$HEADCOUNT" --system run free -- true
# ... and a region that an earlier release made (its header names another format) is
# replaced in the same way, with the format named
expect 0 hc --system create older --capacity 4
printf '\003' | dd of="$S/older" bs=1 seek=$OFF_VERSION conv=notrunc status=none
expect 1 hc --system count older && contains "$T/err" "is not a headcount region"
expect 0 hc --system run older -- true &&
        one_error_line "replaced the region 'older' in '$S', made in format 3 by an earlier release (this build's is format 4; nobody held a seat in it)"
expect 0 hc --system count older && same "count of the region made again" "$(cat "$T/out")" 0
expect 0 hc --system remove older
# ... and so does create, with what it asks for
flip "$S/free" 0
expect 0 hc --system create free --mode 0644 --capacity 4 &&
        one_error_line "replaced a damaged region 'free'"
same "mode of the created region" "$(stat -c %a "$S/free")" 644
# ... and 'path', the first step of the flock(1) pattern
chmod 0666 "$S/free"
flip "$S/free" $OFF_ID
expect 0 hc --system path free && one_error_line "replaced a damaged region 'free'"
same "the path printed" "$(cat "$T/out")" "$S/$(lock_files free | grep '\.0$')"

# ---- A seat is held: nothing is replaced or removed, and the error is clear --------------
expect 0 hc --system create held --mode 0666 --capacity 4
"$HEADCOUNT" --system run held -- sh -c 'echo held >&3; read _ <"$T/gate"' &
holder=$!
track $holder
next_event
same "holder" "$event" held
held_files=$(lock_files held)
flip "$S/held" $OFF_ID
ino=$(stat -c %i "$S/held")
expect 1 hc --system run held -- true &&
        one_error_line "cannot join region 'held': '$S/held' is not a headcount region (another program's file, a damaged region, or one from an incompatible build); remove it with 'headcount --system remove held' when nobody is in it, or use another name"
expect 1 hc --system create held --mode 0666 && contains "$T/err" "is not a headcount region"
expect 1 hc --system remove held && one_error_line "cannot remove region 'held': Device or resource busy"
# a sweep ('names', a creation) keeps the lock file a seat is held in, whatever its id
expect 0 hc --system names
same "lock files while the seat is held" "$(lock_files held)" "$held_files"
same "inode while the seat is held" "$(stat -c %i "$S/held")" "$ino"
release 1
wait $holder
expect 0 hc --system run held -- true && contains "$T/err" "replaced a damaged region 'held'"
same "lock files after the holder left" "$(lock_files held | wc -l)" 2

# ---- 5,000 planted names give a few lines, not 5,000 ------------------------------------
as_user sh -c 'cd "$1" && i=0; while [ $i -lt 5000 ]; do : >"junk$i"; i=$((i + 1)); done' sh "$S"
expect 0 hc --system names -n -o NAME
same "names listed among the junk" "$(cat "$T/out" | tr '\n' ' ')" "free gone held web "
checks=$((checks + 1))
lines=$(wc -l <"$T/err")
[ "$lines" -le 4 ] || fail "'names' printed $lines lines for 5000 planted files"
contains "$T/err" "... and 4997 more files that are not regions"
expect 0 hc --system names --json
same "JSON entries among the junk" "$(grep -o '"name"' "$T/out" | wc -l)" 5004

finish
