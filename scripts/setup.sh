#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Installs the Debian packages listed in .ci/packages, then configures and builds in build/.
# Usage: [HEADCOUNT_HARDENED=1] scripts/setup.sh [configure options...]
# HEADCOUNT_HARDENED=1 configures with Debian's hardening flags (dpkg-buildflags).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [ "$(id -u)" -eq 0 ]; then
        as_root=
elif command -v sudo >/dev/null 2>&1; then
        as_root=sudo
else
        echo "setup: run as root, or install sudo, to install packages" >&2
        exit 1
fi
packages=$(grep -v '^[[:space:]]*#' .ci/packages | tr '\n' ' ')
missing=
for p in $packages; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
        echo "setup: installing$missing"
        DEBIAN_FRONTEND=noninteractive $as_root apt-get update -qq </dev/null
        DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends $missing </dev/null >/dev/null
fi

[ -x configure ] || ./autogen.sh >/dev/null 2>&1
mkdir -p build
cd build
if [ ! -f Makefile ] || [ "$#" -gt 0 ]; then
        if [ "${HEADCOUNT_HARDENED:-0}" = 1 ]; then
                # the flags Debian builds its packages with (dpkg-buildflags: -O2,
                # _FORTIFY_SOURCE, the stack protector, format checks, relro)
                CFLAGS=$(dpkg-buildflags --get CFLAGS) CPPFLAGS=$(dpkg-buildflags --get CPPFLAGS) \
                        LDFLAGS=$(dpkg-buildflags --get LDFLAGS) ../configure -q "$@"
        else
                ../configure -q "$@"
        fi
fi
make -s -j"$(nproc)" >/dev/null
echo "setup: built in $top/build"
