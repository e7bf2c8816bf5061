#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds the Debian packages from a copy of the tree, installs them, and checks that
# what a user gets works: the CLI, the daemon, pkg-config, a program compiled against
# the installed header, and the Python module imported by Debian's python3. Run as root (CI) or with sudo available.
#
#   packaging/debian-smoke.sh            build, install, test, then purge the packages
#   KEEP=1 packaging/debian-smoke.sh     leave them installed
#   DEB_OUT=DIR                          also copy the .deb files to DIR
#   DEB_BUILD_OPTIONS=nocheck            skip 'make check' inside the package build
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/headcount-deb.XXXXXX")
packages="headcount libheadcount-dev libheadcount0 python3-headcount"
installed=no

sudo=
if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { echo "debian-smoke: run as root or install sudo" >&2; exit 1; }
        sudo=sudo
fi

cleanup() {
        if [ "$installed" = yes ] && [ "${KEEP:-0}" != 1 ]; then
                $sudo env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q $packages >/dev/null 2>&1 || :
        fi
        rm -rf "$work"
}
trap cleanup EXIT

step() {
        echo "debian-smoke: $*"
}

# A clean copy of the sources: tracked and new files, no build trees.
src="$work/headcount-0.1.0"
mkdir -p "$src"
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$top" && git ls-files -z --cached --others --exclude-standard |
                xargs -0 -I{} sh -c 'test -e "$1" && cp -P --parents "$1" "$2"' - {} "$src")
else
        (cd "$top" && tar -cf - --exclude=./.git --exclude='./build*' .) | (cd "$src" && tar -xf -)
fi
# dpkg-buildpackage wants debian/ at the top; autoreconf makes configure afresh.
rm -rf "$src/debian"
cp -r "$top/packaging/debian" "$src/debian"
chmod +x "$src/debian/rules"

step "building (dpkg-buildpackage -us -uc -b)"
(cd "$src" && dpkg-buildpackage -us -uc -b) > "$work/build.log" 2>&1 || {
        cp "$work/build.log" "${TMPDIR:-/tmp}/headcount-deb-build.log"
        find "$src" -name '*.log' -path '*/tests/*' -exec tail -n 40 {} + >&2 2>/dev/null || :
        tail -n 60 "$work/build.log" >&2
        echo "debian-smoke: dpkg-buildpackage failed; log in ${TMPDIR:-/tmp}/headcount-deb-build.log" >&2
        exit 1
}
ls "$work"/*.deb
if [ -n "${DEB_OUT:-}" ]; then
        mkdir -p "$DEB_OUT"
        cp "$work"/*.deb "$DEB_OUT"/
fi

step "installing"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "$work"/headcount_*.deb "$work"/libheadcount0_*.deb "$work"/libheadcount-dev_*.deb \
        "$work"/python3-headcount_*.deb
installed=yes

for f in /usr/include/headcount.h /usr/sbin/headcountd /usr/lib/tmpfiles.d/headcount.conf \
         /usr/share/dbus-1/system.d/org.headcount.Manager1.conf \
         /usr/share/dbus-1/system-services/org.headcount.Manager1.service \
         /usr/share/headcount/headcountd-fleet.conf; do
        test -e "$f" || { echo "debian-smoke: $f is missing" >&2; exit 1; }
done
dpkg -L headcount | grep -q '/systemd/system/headcountd.service$' ||
        { echo "debian-smoke: the system unit is missing" >&2; exit 1; }
dpkg -L headcount | grep -q '/systemd/user/headcountd.service$' ||
        { echo "debian-smoke: the user unit is missing" >&2; exit 1; }

scope="$work/scope"
mkdir -m 0700 "$scope"

if [ -x /usr/bin/headcount ]; then
        step "headcount run"
        out=$(headcount --dir "$scope" run --max 1 smoke -- headcount --dir "$scope" count smoke)
        test "$out" = 1 || { echo "debian-smoke: 'headcount run' saw count '$out', not 1" >&2; exit 1; }
        headcount --version
else
        step "skipping 'headcount run': the package has no /usr/bin/headcount"
fi

step "headcountd"
headcountd --version
# A second daemon on a scope that the first one holds must be refused.
headcountd --dir "$scope" --bus=none --log-target=stderr 2>"$work/daemon.log" &
daemon=$!
for _ in $(seq 1 100); do
        grep -q Watching "$work/daemon.log" 2>/dev/null && break
        sleep 0.1
done
if headcountd --dir "$scope" --bus=none --log-target=stderr 2>/dev/null; then
        echo "debian-smoke: a second headcountd was not refused" >&2
        exit 1
fi
kill -TERM "$daemon"
wait "$daemon"

step "pkg-config"
libs=$(pkg-config --libs headcount)
echo "pkg-config --libs headcount: $libs"
case "$libs" in
*-lheadcount*) ;;
*) echo "debian-smoke: pkg-config gives no -lheadcount" >&2; exit 1 ;;
esac

step "compiling against the installed header"
cat > "$work/smoke.c" <<'EOF'
#include <errno.h>
#include <headcount.h>
#include <stdio.h>

int main(int argc, char *argv[]) {
        hc_slot *slot = NULL;
        int n;

        if (hc_join("smoke", HC_OPTIONS(.dir = argv[1], .max = 1), &slot) < 0)
                return 1;
        n = hc_count("smoke", HC_OPTIONS(.dir = argv[1]));
        if (hc_join("smoke", HC_OPTIONS(.dir = argv[1], .max = 1), &(hc_slot *) { NULL }) != -EBUSY)
                return 2;                               /* the one seat is taken */
        slot = hc_leave(slot);
        printf("count %d\n", n);
        return n == 1 ? 0 : 3;
}
EOF
cc -o "$work/smoke" "$work/smoke.c" $(pkg-config --cflags --libs headcount)
"$work/smoke" "$scope"

step "the Python module (/usr/bin/python3)"
dpkg -L python3-headcount | grep -q '/usr/lib/python3/dist-packages/headcount/py.typed$' ||
        { echo "debian-smoke: python3-headcount has no py.typed" >&2; exit 1; }
dpkg -L python3-headcount | grep -q '/usr/lib/python3/dist-packages/headcount/_fast.abi3.so$' ||
        { echo "debian-smoke: python3-headcount has no headcount/_fast.abi3.so" >&2; exit 1; }
(cd / && env -u PYTHONPATH -u HEADCOUNT_LIBRARY /usr/bin/python3 - "$scope" <<'EOF'
import sys
import headcount

d = sys.argv[1]
assert headcount.__file__.startswith("/usr/lib/python3/dist-packages/"), headcount.__file__
assert headcount._fast is not None, "headcount._fast does not load"
with headcount.join("pysmoke", max=1, dir=d) as seat:
    assert headcount.count("pysmoke", dir=d) == 1
    try:
        headcount.join("pysmoke", max=1, dir=d)
        sys.exit("a second seat was given")
    except headcount.Busy:
        pass
print("python3: headcount", headcount.__version__, "seat", seat.index, "through headcount._fast")
EOF
)

echo "debian-smoke: all checks passed"
