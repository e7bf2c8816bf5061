#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs every benchmark: the C programs built by 'make bench', then bench/*-bench.sh.
set -u
builddir=$(cd "${1:-.}" && pwd)
srcdir=$(cd "$(dirname "$0")/.." && pwd)
HC_BUILDDIR=$builddir
export HC_BUILDDIR
status=0
for b in "$builddir"/bench/bench-*; do
        [ -x "$b" ] && [ -f "$b" ] || continue
        case "$b" in *.o|*.c) continue ;; esac
        echo "== $(basename "$b")"
        "$b" || status=1
        echo
done
for s in "$srcdir"/bench/*-bench.sh; do
        [ -f "$s" ] || continue
        echo "== $(basename "$s")"
        sh "$s" || status=1
        echo
done
exit $status
