#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# <headcount.h> compiles alone, as C99 and as C++, with no warnings (as libbsd checks).
set -eu
inc="${top_srcdir:-.}/lib"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/t.c" <<'SRC'
#include <headcount.h>
int main(void) {
        hc_slot *s = 0;
        const hc_options *o = HC_OPTIONS(.max = 2, .timeout_ms = -1);
        (void) o;
        return hc_leave(s) != 0;
}
SRC
cat >"$tmp/t.cc" <<'SRC'
#include <headcount.h>
int main() {
        hc_slot *s = nullptr;
        hc_options o = {};
        o.size = sizeof o;
        (void) o;
        return hc_leave(s) != nullptr;
}
SRC
# A C++ program passes options with HC_OPTIONS() too (designated initializers: C++20).
cat >"$tmp/t20.cc" <<'SRC'
#include <headcount.h>
static size_t size_of(const hc_options *o) {
        return o->size + o->max + (size_t) o->timeout_ms;
}
int main() {
        return size_of(HC_OPTIONS(.max = 2, .timeout_ms = -1)) != sizeof(hc_options) + 1 ||
               HC_OPTIONS(.flags = HC_NO_CREATE)->flags != HC_NO_CREATE;
}
SRC
${CC:-cc} -std=c99 -pedantic -Wall -Wextra -Werror -I"$inc" -c "$tmp/t.c" -o "$tmp/t.o"
${CC:-cc} -std=c11 -Wall -Wextra -Werror -I"$inc" -c "$tmp/t.c" -o "$tmp/t.o"
${CXX:-c++} -std=c++11 -Wall -Wextra -Werror -I"$inc" -c "$tmp/t.cc" -o "$tmp/t2.o"
${CXX:-c++} -std=c++20 -Wall -Wextra -Werror -pedantic -I"$inc" "$tmp/t20.cc" -o "$tmp/t20"
"$tmp/t20"
echo "ok: headcount.h compiles alone as C99, C11, C++11 and C++20, and HC_OPTIONS() works in C++"
