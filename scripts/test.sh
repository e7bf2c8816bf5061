#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Sets everything up and runs every test: the suites, the suites again under ASan+UBSan,
# the Check suite under valgrind, make distcheck, the Debian packages built, installed
# and smoke-tested, and the RPM packages built from the tarball. Ends with one line of totals.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc)

sh scripts/setup.sh --enable-werror
status=0

echo "== make check"
make -C build -s -j"$jobs" check >build/check.out 2>&1 || { status=1; cat build/check.out; }
grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP):' build/check.out || true

echo "== make check under ASan and UBSan"
mkdir -p build-sanitize
(cd build-sanitize && { [ -f Makefile ] || ../configure -q --enable-sanitize; } && make -s -j"$jobs" >/dev/null)
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        make -C build-sanitize -s -j"$jobs" check >build-sanitize/check.out 2>&1 || { status=1; cat build-sanitize/check.out; }
grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP):' build-sanitize/check.out || true

echo "== the Check suite under valgrind memcheck"
make -C build -s check-valgrind >build/valgrind.out 2>&1 || { status=1; cat build/valgrind.out; }
tail -n 1 build/valgrind.out

echo "== make distcheck"
make -C build -s distcheck >build/distcheck.out 2>&1 || { status=1; tail -n 40 build/distcheck.out; }
grep -E 'archives ready|ready for distribution' build/distcheck.out || true

echo "== Debian packages: build, install, smoke-test, purge"
# the suites ran above; the package build need not run them a third time
DEB_BUILD_OPTIONS=nocheck sh packaging/debian-smoke.sh >build/debian.out 2>&1 || { status=1; tail -n 40 build/debian.out; }
grep -E '^debian-smoke:' build/debian.out | tail -n 3 || true

echo "== RPM packages from the release tarball"
sh packaging/rpm-smoke.sh build >build/rpm.out 2>&1 || { status=1; tail -n 40 build/rpm.out; }
tail -n 1 build/rpm.out

sh tests/summary.sh build build-sanitize
exit $status
