#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The library exports exactly the symbols listed in lib/libheadcount.sym (as systemd checks).
set -eu
lib="${top_builddir:-.}/lib/.libs/libheadcount.so"
map="${top_srcdir:-.}/lib/libheadcount.sym"
[ -f "$lib" ] || { echo "missing $lib"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 == "T" || $2 == "D" || $2 == "B" { sub(/@.*/, "", $3); print $3 }' | sort -u >"$tmp/exported"
sed -n 's/^[[:space:]]*\(hc_[a-z0-9_]*\);.*/\1/p' "$map" | sort -u >"$tmp/listed"
# (names ending in '_' are the C++ form of HC_OPTIONS(): inline, not symbols; a name
# followed by a man section, "hc_fleet(3)", is a reference to a page)
cat "${top_srcdir:-.}/lib/headcount.h" "${top_srcdir:-.}/lib/headcount-fleet.h" |
        grep -oE 'hc_[a-z0-9_]*[a-z0-9]\(([^0-9]|$)' | sed 's/(.*//' | sort -u >"$tmp/declared"
if ! diff -u "$tmp/listed" "$tmp/exported"; then
        echo "exported symbols differ from lib/libheadcount.sym"
        exit 1
fi
if ! diff -u "$tmp/listed" "$tmp/declared"; then
        echo "functions declared in headcount.h differ from lib/libheadcount.sym"
        exit 1
fi
echo "ok: $(wc -l <"$tmp/exported") symbols, all listed and declared"
