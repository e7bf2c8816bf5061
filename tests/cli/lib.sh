# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the shell tests of headcount(1) and of the examples: where the programs are,
# a private directory per test (removed at exit), and the checks.
#
# Tests run in the build directory (automake's harness) or wherever HEADCOUNT points to
# the program. They synchronise on events (fifos, 'headcount wait'), never on sleeps; what
# has no event is polled for with wait_for, whose bound is for a hang, not for speed.

set -u
# A shell that starts with SIGINT or SIGQUIT ignored (a background job of a shell without
# job control, as a CI runner may start us) hands that on to every command it runs, and
# no 'trap' in those commands can undo it: start again with the defaults.
if [ -z "${HC_TEST_SIGNALS_RESET-}" ] && [ -r /proc/$$/status ] &&
   [ $((0x$(awk '/^SigIgn:/ { print $2 }' /proc/$$/status) & 6)) -ne 0 ]; then
        HC_TEST_SIGNALS_RESET=1 exec env --default-signal=INT,QUIT "${BASH:-sh}" "$0" "$@"
fi
set -m          # background jobs get their own process group and keep SIGINT and SIGQUIT

: "${srcdir:=.}"
top_builddir=${top_builddir:-$PWD}
HEADCOUNT=${HEADCOUNT:-$top_builddir/cli/headcount}
export HEADCOUNT
if [ ! -x "$HEADCOUNT" ]; then
        echo "SKIP: no headcount program at $HEADCOUNT" >&2
        exit 77
fi

. "$srcdir/tests/common/sanitize.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/headcount-test.XXXXXX") || exit 99
chmod 0700 "$T"
export T
D=$T/regions
mkdir -m 0700 "$D"
export HEADCOUNT_DIR=$D
unset XDG_RUNTIME_DIR

checks=0
failures=0
bg_pids=

# Every background job we start is remembered, and its process group (set -m gives each
# job its own) is killed at exit if still running: the wrapper and CMD alike. Start the
# jobs that get signals as "$HEADCOUNT" ... &, not through hc(), so that $! is headcount.
track() {
        bg_pids="$bg_pids $1"
}

cleanup() {
        for p in $bg_pids; do
                kill -KILL -- "-$p" 2>/dev/null         # its process group, when it leads one
                kill -KILL "$p" 2>/dev/null
        done
        exec 3>&- 4>&- 2>/dev/null
        rm -rf "$T"
}
trap cleanup EXIT

# python3_lib ARG...: python3 for a script that loads libheadcount with ctypes: a library
# built with --enable-sanitize needs the sanitizers' runtimes loaded first (python3 has
# none), and Python's own allocations at exit are no leak of ours (the last of several
# detect_leaks wins).
python3_lib() {
        local preload
        preload=$(sanitizer_preload "$top_builddir")
        if [ -n "$preload" ]; then
                LD_PRELOAD=$preload${LD_PRELOAD:+:$LD_PRELOAD} \
                        ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 python3 "$@"
                return
        fi
        python3 "$@"
}

hc() {
        "$HEADCOUNT" "$@"
}

fail() {
        failures=$((failures + 1))
        echo "FAIL: $*" >&2
        if [ -s "$T/err" ]; then
                sed 's/^/  stderr: /' "$T/err" >&2
        fi
}

# wait_for SECS WHAT CMD...: runs CMD every 20 ms until it succeeds, for at most SECS
# seconds of the clock (however slowly each try runs); fails the test, naming WHAT, when it
# never does.
wait_for() {
        local secs=$1 what=$2 deadline
        shift 2
        deadline=$(($(date +%s%N) + secs * 1000000000))
        until "$@"; do
                if [ "$(date +%s%N)" -gt "$deadline" ]; then
                        checks=$((checks + 1))
                        fail "not within ${secs} s: $what"
                        return 1
                fi
                sleep 0.02
        done
        return 0
}

# expect STATUS CMD [ARG...]: runs CMD with stdout in $T/out and stderr in $T/err.
expect() {
        local want=$1 got
        shift
        "$@" >"$T/out" 2>"$T/err"
        got=$?
        checks=$((checks + 1))
        if [ "$got" != "$want" ]; then
                fail "'$*' exited $got, expected $want"
                return 1
        fi
        return 0
}

# same WHAT GOT WANT
same() {
        checks=$((checks + 1))
        if [ "$2" != "$3" ]; then
                fail "$1: got '$2', expected '$3'"
                return 1
        fi
        return 0
}

# contains FILE TEXT: FILE has a line containing TEXT (a fixed string).
contains() {
        checks=$((checks + 1))
        if ! grep -qF -- "$2" "$1"; then
                fail "$(basename "$1") does not contain '$2': $(head -c 300 "$1")"
                return 1
        fi
        return 0
}

# no_raw_controls FILE: FILE is valid UTF-8 and holds no control character but tab and
# newline, byte for byte: no C0 control (ESC among them), no DEL, and no C1 control
# (U+0080 to U+009F, "\xc2\x80" to "\xc2\x9f", which a terminal may take as CSI, OSC...).
no_raw_controls() {
        local why
        checks=$((checks + 1))
        if ! why=$(python3 - "$1" 2>&1 <<'PY'
import re, sys
data = open(sys.argv[1], "rb").read()
data.decode("utf-8")
bad = re.search(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]", data)
if bad:
    sys.exit("raw %r at byte %d" % (bad.group(), bad.start()))
PY
        ); then
                fail "$(basename "$1") carries control characters: $(echo "$why" | tail -1)"
                return 1
        fi
        return 0
}

# One line of error, in the fixed format, and nothing on stdout.
one_error_line() {
        same "stderr lines" "$(wc -l <"$T/err")" 1
        contains "$T/err" "headcount: $1"
}

# A usage error: the message, then the hint, exit 64.
usage_fails() {
        local msg=$1
        shift
        expect 64 "$@" || return
        same "usage error lines of '$*'" "$(wc -l <"$T/err")" 2
        contains "$T/err" "headcount: $msg"
        contains "$T/err" "Try 'headcount --help' for more information."
}

# The event pipe: background commands write lines to $T/events, the test reads them from
# fd 3 (opened read-write, so writers never block and never see EOF).
events_open() {
        mkfifo "$T/events" "$T/gate"
        exec 3<>"$T/events"
        exec 4<>"$T/gate"
}

# next_event: reads one line from the event pipe into $event (fails after 60 s: a hang).
next_event() {
        if ! IFS= read -r -t 60 event <&3; then
                fail "no event within 60 s"
                exit 1
        fi
}

# release N: lets N commands blocked in 'read _ <$T/gate' go on.
release() {
        local i
        for i in $(seq "$1"); do
                echo go >&4
        done
}

finish() {
        if [ "$failures" -ne 0 ]; then
                echo "$failures of $checks checks failed" >&2
                exit 1
        fi
        echo "PASS: $checks checks"
        exit 0
}
