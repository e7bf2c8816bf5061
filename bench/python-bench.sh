#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The Python module against Python's own ways (bench/python-bench.py): run by 'make bench'
# with HC_BUILDDIR set, on the build tree's module and library. Needs a Python 3 with
# filelock for that row (Debian's python3-filelock); says so and leaves the row out when
# there is none.
set -u
builddir=$(cd "${HC_BUILDDIR:-.}" && pwd)
srcdir=$(cd "$(dirname "$0")/.." && pwd)
init=$builddir/python/headcount/__init__.py
if [ ! -f "$init" ]; then
        echo "python-bench: the Python module is not built (--disable-python): skipped"
        exit 0
fi
py=
for p in python3 /usr/bin/python3; do        # one with filelock first
        command -v "$p" >/dev/null 2>&1 || continue
        [ -z "$py" ] && py=$p
        if "$p" -c 'import filelock' 2>/dev/null; then
                py=$p
                break
        fi
done
[ -n "$py" ] || { echo "python-bench: no python3: skipped"; exit 0; }
hc=$builddir/cli/.libs/headcount
[ -x "$hc" ] || hc=$builddir/cli/headcount
soname=$(sed -n 's/^_SONAME = "\(.*\)"$/\1/p' "$init")
HEADCOUNT_LIBRARY=$builddir/lib/.libs/$soname
LD_LIBRARY_PATH=$builddir/lib/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
PYTHONPATH=$builddir/python${PYTHONPATH:+:$PYTHONPATH}
export HEADCOUNT_LIBRARY LD_LIBRARY_PATH PYTHONPATH
exec "$py" "$srcdir/bench/python-bench.py" "$hc" "$@"
