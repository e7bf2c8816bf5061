#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds the RPM packages from the release tarball with packaging/rpm/headcount.spec, as a
# Fedora user would with 'rpmbuild -ta', and checks what they contain. On a Debian host
# the build dependencies come from Debian (--nodeps) and the systemd path macros, which
# Fedora's systemd-rpm-macros provide, are given here.
#   [RPM_NOCHECK=1] packaging/rpm-smoke.sh BUILDDIR
# RPM_NOCHECK=1 skips the spec's %check (rpmbuild --nocheck), for a CI run whose
# 'make distcheck' has already run the same suites on the same tarball.
set -eu
build=$(cd "${1:-build}" && pwd)
top=$(mktemp -d "${TMPDIR:-/tmp}/headcount-rpm.XXXXXX")
trap 'rm -rf "$top"' EXIT

command -v rpmbuild >/dev/null || { echo "rpm-smoke: rpmbuild is missing (Debian package rpm)" >&2; exit 1; }
make -C "$build" -s dist >/dev/null
tarball=$(ls "$build"/headcount-*.tar.xz | head -n 1)

rpmbuild --define "_topdir $top" \
         --define "_unitdir /usr/lib/systemd/system" \
         --define "_userunitdir /usr/lib/systemd/user" \
         --define "_tmpfilesdir /usr/lib/tmpfiles.d" \
         --nodeps ${RPM_NOCHECK:+--nocheck} -ta "$tarball" >"$top/log" 2>&1 || { tail -n 40 "$top/log"; exit 1; }

fail=0
check() {       # PACKAGE PATH-PATTERN
        if rpm -qlp "$top"/RPMS/*/"$1"-0*.rpm 2>/dev/null | grep -q -- "$2"; then
                echo "rpm-smoke: $1 has $2"
        else
                echo "rpm-smoke: $1 lacks $2"
                fail=1
        fi
}
check headcount-libs 'libheadcount\.so\.0'
check headcount-devel '/usr/include/headcount\.h'
check headcount-devel 'headcount\.pc'
check headcount '/usr/bin/headcount'
check headcount 'headcountd'
check headcount 'headcountd\.service'
check headcount 'tmpfiles\.d/headcount\.conf'
[ "$fail" = 0 ] && echo "rpm-smoke: all checks passed"
exit "$fail"
