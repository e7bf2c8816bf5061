#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every manual page is clean under 'mandoc -T lint -W warning' (a full date in .TH among
# other things), read from a man3/ tree as man(1) would, so that the .so links resolve.
# The one warning we accept: ".so is fragile, better use ln(1)": the one-line .so pages
# are how Debian and man-pages alias a page, and they survive any installation.
# Also run by scripts/lint.sh.
set -u
srcdir=${srcdir:-.}
if ! command -v mandoc >/dev/null 2>&1; then
        echo "SKIP: mandoc is not installed (Debian package mandoc)"
        exit 77
fi
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/man1" "$tmp/man3" "$tmp/man8"
cp "$srcdir"/man/*.3 "$tmp/man3/"
cp "$srcdir"/cli/headcount.1 "$tmp/man1/"
cp "$srcdir"/daemon/headcountd.8 "$tmp/man8/"
cd "$tmp" || exit 99
out=$(mandoc -T lint -W warning man1/*.1 man3/*.3 man8/*.8 2>&1 | grep -v ': \.so is fragile, better use ln(1): ')
pages=$(ls man1 man3 man8 | grep -c '\.[138]$')
if [ -n "$out" ]; then
        echo "$out"
        echo "FAIL: mandoc -T lint found the above in $pages pages"
        exit 1
fi
# and no .TH carries a bare year
bare=$(grep -l '^\.TH [^ ]* [0-9] "[0-9]*"' man1/* man3/* man8/* 2>/dev/null)
if [ -n "$bare" ]; then
        echo "FAIL: .TH without a full date in: $bare"
        exit 1
fi
echo "PASS: $pages pages clean under mandoc -T lint"
