#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs the Python module's pytest suite (tests/python) on this build tree: the package in
# $top_builddir/python, the library in $top_builddir/lib/.libs (HEADCOUNT_LIBRARY), the
# CLI, headcountd and the layout program beside them. Its output ends with pytest's own
# summary line. Skips (77) when no Python 3 here has pytest (Debian's python3-pytest).
set -u
: "${top_srcdir:=.}" "${top_builddir:=.}"
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=$(cd "$top_builddir" && pwd)

init=$top_builddir/python/headcount/__init__.py
[ -f "$init" ] || { echo "SKIP: the Python module is not built (--disable-python)"; exit 77; }

# configure's Python first, then the one first on PATH, then Debian's.
configured=$(sed -n 's/^PYTHON = //p' "$top_builddir/Makefile" 2>/dev/null)
py=
for p in "${PYTHON:-$configured}" python3 /usr/bin/python3; do
        [ -n "$p" ] && [ "$p" != : ] || continue
        if "$p" -c 'import pytest' 2>/dev/null; then
                py=$p
                break
        fi
done
[ -n "$py" ] || { echo "SKIP: no Python 3 with pytest here (python3-pytest)"; exit 77; }

soname=$(sed -n 's/^_SONAME = "\(.*\)"$/\1/p' "$init")
HEADCOUNT_LIBRARY=$top_builddir/lib/.libs/$soname
LD_LIBRARY_PATH=$top_builddir/lib/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
PYTHONPATH=$top_builddir/python${PYTHONPATH:+:$PYTHONPATH}
HC_TEST_CLI=$top_builddir/cli/.libs/headcount
[ -x "$HC_TEST_CLI" ] || HC_TEST_CLI=$top_builddir/cli/headcount
HC_TEST_HEADCOUNTD=$top_builddir/daemon/.libs/headcountd
[ -x "$HC_TEST_HEADCOUNTD" ] || HC_TEST_HEADCOUNTD=$top_builddir/daemon/headcountd
HC_TEST_LAYOUT=$top_builddir/tests/python/layout
# whether the build made headcount._fast (configure found Python.h): the module must load it
HC_TEST_PY_EXTENSION=no
[ -f "$top_builddir/python/headcount/_fast.abi3.so" ] && HC_TEST_PY_EXTENSION=yes
HC_TEST_ETCD_LAUNCH=$top_srcdir/tests/common/etcd-launch
# A library built with --enable-sanitize needs the sanitizers' runtimes loaded first in
# the Python process (they are not in python3); Python's own allocations at exit are no
# leak of ours.
. "$top_srcdir/tests/common/sanitize.sh"
preload=$(sanitizer_preload "$top_builddir")
if [ -n "$preload" ]; then
        LD_PRELOAD=$preload${LD_PRELOAD:+:$LD_PRELOAD}
        ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0     # the last one wins
        export LD_PRELOAD ASAN_OPTIONS
elif "$top_builddir/config.status" --config 2>/dev/null | grep -q -- "--enable-tsan"; then
        echo "SKIP: the Python module is not tested on a ThreadSanitizer build"
        exit 77
fi
# Nothing written into the source tree (read-only under distcheck).
PYTHONDONTWRITEBYTECODE=1
export HEADCOUNT_LIBRARY LD_LIBRARY_PATH PYTHONPATH HC_TEST_CLI HC_TEST_HEADCOUNTD \
        HC_TEST_LAYOUT HC_TEST_ETCD_LAUNCH HC_TEST_PY_EXTENSION PYTHONDONTWRITEBYTECODE
unset HEADCOUNT_DIR
cd "$top_builddir" || exit 99
# The tests' directories (the fleet test's etcd data among them) go with the run.
T=$(mktemp -d "${TMPDIR:-/tmp}/headcount-python.XXXXXX") || exit 99
trap 'rm -rf "$T"' EXIT
"$py" -m pytest -p no:cacheprovider -q -ra --basetemp="$T/pytest" \
        --rootdir="$top_srcdir/tests/python" "$top_srcdir/tests/python"
