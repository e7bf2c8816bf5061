#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Sets everything up and runs every test: the suites, the suites again under ASan+UBSan,
# the Check suite under valgrind, make distcheck, the installed daemon under systemd booted
# in a container (as root), the Debian packages built, installed and smoke-tested, and the
# RPM packages built from the tarball. Ends with one line of totals.
#
# Each suite runs once per build flavour, never once per packaging step:
#   build/           (hardened, -Werror) the demo, the fuzzers, lint, valgrind, distcheck, packages
#   build-coverage/  'make check' for coverage: this is the plain run of the suites
#   build-sanitize/  'make check' under ASan and UBSan, and the soak
#   build-tsan/      the threaded Check cases under TSan
#   distcheck        'make check' in the release tarball's own tree (it proves the tarball)
# The Debian and RPM package builds skip their own 'make check' (nocheck, rpmbuild
# --nocheck): it would be the distcheck run again, on the same sources.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc)

# build/ with Debian's hardening flags and -Werror: a warning that a package build would
# show fails CI
HEADCOUNT_HARDENED=1 sh scripts/setup.sh --enable-werror
status=0

# The end of the log of each test that OUT (a 'make check' output in BUILDDIR) says failed:
# the summary alone does not say which check of a suite failed, or why.
show_failures() {
        grep -E '^(FAIL|ERROR|XPASS): ' "$2" | while read -r _ t; do
                [ -f "$1/$t.log" ] || continue
                echo "-- the end of $1/$t.log"
                grep -vE '^[0-9]+%: Checks|^Running suite' "$1/$t.log" | grep -E ':[FE]:|FAIL|not ok|error' | head -n 20 || true
                tail -n 40 "$1/$t.log"
        done
}

echo "== the README's first command, scripts/demo.sh: exits 0 and leaves nothing running"
setsid sh scripts/demo.sh >build/demo.out 2>&1 &
demo=$!
wait "$demo" && demo_rc=0 || demo_rc=$?
left=$(pgrep -s "$demo" 2>/dev/null | tr '\n' ' ' || true)
if [ "$demo_rc" -ne 0 ] || [ -n "$left" ]; then
        status=1
        tail -n 20 build/demo.out
        echo "demo: exit status $demo_rc; left running: ${left:-nothing}"
        [ -z "$left" ] || kill $left 2>/dev/null || true
else
        echo "demo: exit status 0, nothing left running"
fi

echo "== make check, built for coverage (the plain run of the suites), and the coverage of lib/"
mkdir -p build-coverage
(cd build-coverage && { [ -f Makefile ] || ../configure -q --enable-werror --enable-coverage; } && make -s -j"$jobs" >/dev/null)
make -C build-coverage -s -j"$jobs" coverage >build-coverage/coverage.out 2>&1 || status=1
grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP):' build-coverage/coverage.out || true
if grep -qE '^(FAIL|ERROR|XPASS):' build-coverage/coverage.out || ! grep -qE '^coverage: ' build-coverage/coverage.out; then
        status=1
        tail -n 80 build-coverage/coverage.out
        show_failures build-coverage build-coverage/coverage.out
fi
grep -E '^coverage: ' build-coverage/coverage.out || true

echo "== make check under ASan and UBSan"
mkdir -p build-sanitize
(cd build-sanitize && { [ -f Makefile ] || ../configure -q --enable-sanitize; } && make -s -j"$jobs" >/dev/null)
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        make -C build-sanitize -s -j"$jobs" check >build-sanitize/check.out 2>&1 ||
        { status=1; cat build-sanitize/check.out; show_failures build-sanitize build-sanitize/check.out; }
grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP):' build-sanitize/check.out || true

echo "== the threaded tests under ThreadSanitizer (threads only: TSan cannot see memory shared between processes)"
mkdir -p build-tsan
(cd build-tsan && { [ -f Makefile ] || ../configure -q --enable-tsan; } && make -s -j"$jobs" tests/lib/check-headcount >/dev/null 2>&1)
CK_RUN_SUITE=join TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/lib/check-headcount >build-tsan/tsan.out 2>&1 || { status=1; cat build-tsan/tsan.out; }
grep -E '^[0-9]+%: Checks' build-tsan/tsan.out || true
# headcountd's two threads (the fleet agent's and the main one) and the bridge between them
(cd build-tsan && make -s -j"$jobs" daemon/headcountd tests/daemon/test-fleet-agent >/dev/null 2>&1)
(cd build-tsan && TSAN_OPTIONS="halt_on_error=1 exitcode=66" top_srcdir=.. top_builddir=. \
        tests/daemon/test-fleet-agent) >build-tsan/tsan-fleet.out 2>&1 || { status=1; cat build-tsan/tsan-fleet.out; }
grep -E '^[0-9]+%: Checks' build-tsan/tsan-fleet.out || true

echo "== fuzzing: each harness for 20 s (libFuzzer, ASan, UBSan)"
make -C build -s fuzz FUZZ_SECONDS=20 >build/fuzz.out 2>&1 || { status=1; tail -n 60 build/fuzz.out; }
grep -E '^fuzz: .*executions' build/fuzz.out || true

echo "== chaos soak, 60 s, under ASan and UBSan"
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        make -C build-sanitize -s soak SOAK_SECONDS=60 >build-sanitize/soak.out 2>&1 || { status=1; tail -n 40 build-sanitize/soak.out; }
grep -E '^soak: operations' build-sanitize/soak.out || true

echo "== lint: cppcheck and clang-tidy"
make -C build -s lint >build/lint.out 2>&1 || { status=1; cat build/lint.out; }
tail -n 1 build/lint.out

echo "== the Check suite under valgrind memcheck"
make -C build -s check-valgrind >build/valgrind.out 2>&1 || { status=1; cat build/valgrind.out; }
tail -n 1 build/valgrind.out

echo "== make distcheck"
make -C build -s distcheck >build/distcheck.out 2>&1 || {
        status=1
        tail -n 40 build/distcheck.out
        # the tarball's build, left in place on a failure (the RPM step's 'make dist' removes it)
        for d in build/headcount-*/_build/sub; do
                [ -d "$d" ] && show_failures "$d" build/distcheck.out
        done
}
grep -E 'archives ready|ready for distribution' build/distcheck.out || true

echo "== systemd as PID 1 in a container: the installed daemon under its shipped unit"
if [ "$(id -u)" -eq 0 ] && command -v systemd-nspawn >/dev/null 2>&1; then
        make -C build -s check-systemd >build/systemd.out 2>&1 || { status=1; tail -n 80 build/systemd.out; }
        grep -E '^[0-9]+ passed, [0-9]+ failed' build/systemd.out | tail -n 1 || true
else
        echo "skipped: needs root and systemd-nspawn (Debian's systemd-container)"
fi

echo "== Debian packages: build, install, smoke-test, purge"
# the suites ran above; the package build need not run them a third time
DEB_BUILD_OPTIONS=nocheck sh packaging/debian-smoke.sh >build/debian.out 2>&1 || { status=1; tail -n 40 build/debian.out; }
grep -E '^debian-smoke:' build/debian.out | tail -n 3 || true

echo "== RPM packages from the release tarball"
RPM_NOCHECK=1 sh packaging/rpm-smoke.sh build >build/rpm.out 2>&1 || { status=1; tail -n 40 build/rpm.out; }
tail -n 1 build/rpm.out

sh tests/summary.sh build-coverage build-sanitize
exit $status
