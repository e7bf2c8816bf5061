#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds the RPM packages from the release tarball with packaging/rpm/headcount.spec, as a
# Fedora user would with 'rpmbuild -ta', and checks what they contain. On a Debian host
# the build dependencies come from Debian (--nodeps) and the systemd path macros, which
# Fedora's systemd-rpm-macros provide, are given here, as are the Python macros that
# python3-devel provides (Debian's python3 stands in). The library and the Python module
# are unpacked (rpm2cpio, cpio) and the module imported from there.
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

sitearch=$(python3 -c 'import sysconfig; print(sysconfig.get_path("platlib", "posix_prefix", vars={"platbase": "/usr"}))')
rpmbuild --define "_topdir $top" \
         --define "python3 $(command -v python3)" \
         --define "python3_sitearch $sitearch" \
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
check python3-headcount 'headcount/__init__\.py'
check python3-headcount 'headcount/py\.typed'
check python3-headcount 'headcount/_fast\.abi3\.so'

# The module, unpacked with the library, loads it by its soname and holds a seat.
mkdir "$top/root" "$top/scope"
chmod 0700 "$top/scope"
for p in "$top"/RPMS/*/headcount-libs-0*.rpm "$top"/RPMS/*/python3-headcount-0*.rpm; do
        (cd "$top/root" && rpm2cpio "$p" | cpio -idm --quiet) || fail=1
done
if (cd / && LD_LIBRARY_PATH=$(dirname "$(find "$top/root" -name 'libheadcount.so.0' | head -n 1)") \
        PYTHONPATH=$top/root$sitearch python3 -c '
import sys, headcount
with headcount.join("rpmsmoke", dir=sys.argv[1]):
    assert headcount.count("rpmsmoke", dir=sys.argv[1]) == 1
assert headcount.__file__.startswith(sys.argv[2]), headcount.__file__
assert headcount._fast is not None, "headcount._fast does not load"
' "$top/scope" "$top/root"); then
        echo "rpm-smoke: python3-headcount imports, loads headcount._fast and holds a seat"
else
        echo "rpm-smoke: python3-headcount does not work"
        fail=1
fi
[ "$fail" = 0 ] && echo "rpm-smoke: all checks passed"
exit "$fail"
