#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# cppcheck and clang-tidy over lib/, common/, cli/ and daemon/ (the tests, in tests/,
# aside), clang-tidy over python/headcount/_fast.c, and mandoc -T lint over the manual
# pages. Usage: scripts/lint.sh BUILDDIR (for its config.h). Prints the findings and
# exits 1 when there are any. 'make lint' runs it.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-.}" && pwd)
cd "$top"
# Files still being written by others may be left out with LINT_EXCLUDE="lib/x.c ...".
files=
for f in lib/*.c common/*.c cli/*.c daemon/*.c; do
        case " ${LINT_EXCLUDE:-} " in *" $f "*) continue;; esac
        files="$files $f"
done
status=0

echo "lint: cppcheck"
cppcheck -q --std=c11 --enable=warning,portability,performance --inline-suppr \
        --error-exitcode=1 --suppressions-list=tests/lint/cppcheck.supp \
        --include=tests/lint/cppcheck.h --include="$build/config.h" \
        -D__linux__ -D__GNUC__ -Ilib -Icommon -Icli -Idaemon $files || status=1

echo "lint: clang-tidy"
flags="-include $build/config.h -Ilib -Icommon -Icli -Idaemon -pthread $(pkg-config --cflags libsystemd json-c smartcols)"
out=$(mktemp)
for f in $files; do
        clang-tidy -quiet "$f" -- $flags >>"$out" 2>&1 || status=1
done
# headcount._fast, with the Python headers configure found (cppcheck cannot read them
# without the system's own headers, so clang-tidy alone)
pyflags=$(sed -n 's/^PYTHON_CPPFLAGS = //p' "$build/Makefile" 2>/dev/null)
if [ -n "$pyflags" ]; then
        clang-tidy -quiet python/headcount/_fast.c -- -include "$build/config.h" -Ilib $pyflags >>"$out" 2>&1 ||
                status=1
fi
grep -E 'warning:|error:' "$out" || true
rm -f "$out"
echo "lint: mandoc -T lint over the manual pages"
if command -v mandoc >/dev/null 2>&1; then
        srcdir=$top sh tests/cli/test-manpages.sh || status=1
else
        echo "lint: mandoc is not installed (Debian package mandoc)"
        status=1
fi
[ $status -eq 0 ] && echo "lint: nothing found"
exit $status
