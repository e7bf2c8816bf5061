#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# 'configure --prefix=DIR && make install' writes nothing outside DIR: units, tmpfiles.d,
# the D-Bus policy and activation file, the bash completion, the pkg-config file, the
# manuals and pkgdatadir all go under DIR; and with --prefix set to the prefix that
# pkg-config reports (a distribution's /usr), their directories are pkg-config's.
#
# Cheap enough for 'make check': two configure runs (sharing a cache) in a scratch build
# directory and 'make install-data' there, which builds nothing; the programs and the
# library come from this build tree's own 'make install-exec', with DESTDIR.
set -u
: "${top_srcdir:=.}" "${top_builddir:=.}"
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=$(cd "$top_builddir" && pwd)
MAKE=${MAKE:-make}
failures=0

fail() {
        echo "FAIL: $*" >&2
        failures=$((failures + 1))
}

T=$(mktemp -d "${TMPDIR:-/tmp}/headcount-install.XXXXXX") || exit 99
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
prefix=$T/x                     # as a user's $HOME/x: no pkg-config file has it
root=$T/root                    # DESTDIR: what lands outside $root$prefix is the bug

# Files under $1 that are not under $1$2, one per line.
outside() {
        (cd "$1" && find . ! -type d) | sed 's|^\.||' | while IFS= read -r f; do
                case $f in
                "$2"/*) ;;
                *) echo "$f" ;;
                esac
        done
}

# The daemon and its units when the build tree has them (--disable-daemon builds none).
daemon_flag=
"$top_builddir/config.status" --config | grep -q -- "--disable-daemon" && daemon_flag=--disable-daemon
# The Python module when the build tree has it (--disable-python, or no Python 3: none).
python_flag=
grep -q '^PYTHON = :\{0,1\}$' "$top_builddir/Makefile" && python_flag=--disable-python

mkdir "$T/build"
cd "$T/build" || exit 99
if ! "$top_srcdir/configure" -q --cache-file="$T/cache" --prefix="$prefix" $daemon_flag $python_flag \
        >"$T/configure.out" 2>&1; then
        cat "$T/configure.out" >&2
        echo "FAIL: configure --prefix=$prefix" >&2
        exit 1
fi
if ! $MAKE -s install-data DESTDIR="$root" >"$T/install.out" 2>&1; then
        cat "$T/install.out" >&2
        echo "FAIL: make install-data DESTDIR=$root" >&2
        exit 1
fi
bad=$(outside "$root" "$prefix")
[ -z "$bad" ] || fail "make install-data with --prefix=$prefix wrote outside it: $bad"

# What must be there, under the prefix (with the daemon: its units and D-Bus files too).
want="share/bash-completion/completions/headcount lib/tmpfiles.d/headcount.conf
share/man/man1/headcount.1 include/headcount.h"
[ -z "$daemon_flag" ] && want="$want lib/systemd/system/headcountd.service
lib/systemd/user/headcountd.service share/dbus-1/system.d/org.headcount.Manager1.conf
share/dbus-1/system-services/org.headcount.Manager1.service share/headcount/headcountd-fleet.conf"
for f in $want; do
        [ -f "$root$prefix/$f" ] || fail "--prefix=$prefix: $f is not installed under it"
done
[ -n "$(find "$root$prefix" -name headcount.pc)" ] || fail "--prefix=$prefix: no headcount.pc"

# The Python module: in the site directory sysconfig gives for the prefix, importable
# from there (with the build tree's library), its type information beside it.
if [ -z "$python_flag" ]; then
        pydir=$(sed -n 's/^pythondir = //p' "$T/build/Makefile" | sed "s|\${prefix}|$prefix|")
        py=$(sed -n 's/^PYTHON = //p' "$T/build/Makefile")
        case $pydir in
        "$prefix"/*) ;;
        *) fail "--prefix=$prefix: the Python module goes to $pydir, outside it" ;;
        esac
        for f in headcount/__init__.py headcount/py.typed; do
                [ -f "$root$pydir/$f" ] || fail "--prefix=$prefix: no $pydir/$f"
        done
        soname=$(sed -n 's/^_SONAME = "\(.*\)"$/\1/p' "$root$pydir/headcount/__init__.py")
        # a library built with --enable-sanitize needs the sanitizers' runtimes first
        . "$top_srcdir/tests/common/sanitize.sh"
        preload=$(sanitizer_preload "$top_builddir")
        # headcount._fast beside it when configure found Python's headers, loaded from there
        fast=None
        if [ -n "$(sed -n 's/^PYTHON_CPPFLAGS = //p' "$T/build/Makefile")" ]; then
                [ -f "$root$pydir/headcount/_fast.abi3.so" ] ||
                        fail "--prefix=$prefix: no $pydir/headcount/_fast.abi3.so"
                fast=$root$pydir/headcount/_fast.abi3.so
        fi
        got=$(cd / && PYTHONPATH=$root$pydir HEADCOUNT_LIBRARY=$top_builddir/lib/.libs/$soname \
                LD_PRELOAD=$preload ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
                "$py" -c 'import headcount; print(headcount.__file__, headcount._fast and headcount._fast.__file__)' 2>&1)
        [ "$got" = "$root$pydir/headcount/__init__.py $fast" ] ||
                fail "the installed Python module does not import from $root$pydir: $got"
fi

# configure says where the D-Bus policy belongs when it is not installed there.
if [ -z "$daemon_flag" ] && ! grep -q 'dbus-daemon does not look.*/etc/dbus-1/system.d' \
        "$T/configure.out"; then
        fail "configure does not say where the D-Bus policy belongs: $(cat "$T/configure.out")"
fi

# The library and the programs, from this build tree (its own prefix, whatever it is).
build_prefix=$(sed -n 's/^prefix = //p' "$top_builddir/Makefile")
if ! $MAKE -s -C "$top_builddir" install-exec DESTDIR="$T/exec" >"$T/exec.out" 2>&1; then
        cat "$T/exec.out" >&2
        fail "make install-exec DESTDIR=$T/exec"
fi
bad=$(outside "$T/exec" "$build_prefix")
[ -z "$bad" ] || fail "make install-exec wrote outside $build_prefix: $bad"
[ -x "$T/exec$build_prefix/bin/headcount" ] || fail "install-exec: no $build_prefix/bin/headcount"

# With pkg-config's own prefix, the directories are pkg-config's (a distribution's
# layout: /lib/systemd/system on bookworm, whatever systemd.pc says elsewhere).
check_pc() {            # VARIABLE MODULE PC-VARIABLE [SUFFIX]
        pc_prefix=$(pkg-config --variable=prefix "$2" 2>/dev/null) || return 0
        [ -n "$pc_prefix" ] || return 0
        (cd "$T/build" && "$top_srcdir/configure" -q --cache-file="$T/cache" \
                --prefix="$pc_prefix" $daemon_flag $python_flag >/dev/null 2>&1) ||
                { fail "configure --prefix=$pc_prefix"; return 0; }
        got=$(sed -n "s/^$1 = //p" "$T/build/Makefile")
        want=$(pkg-config --variable="$3" "$2")${4:-}
        [ "$got" = "$want" ] || fail "--prefix=$pc_prefix: $1 is '$got', not $2.pc's '$want'"
}
if command -v pkg-config >/dev/null; then
        check_pc systemdsystemunitdir systemd systemdsystemunitdir
        check_pc tmpfilesdir systemd tmpfilesdir
        check_pc bashcompletiondir bash-completion completionsdir
        check_pc dbuspolicydir dbus-1 datadir /dbus-1/system.d
fi

if [ "$failures" -gt 0 ]; then
        echo "$failures check(s) failed" >&2
        exit 1
fi
echo "install paths: all under --prefix=$prefix${python_flag:+ (no Python module)}; pkg-config's under its own prefix"
