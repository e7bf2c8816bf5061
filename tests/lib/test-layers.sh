#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The modules of lib/ form layers: each module uses only symbols that modules listed
# before it in lib/Makemodule.am (libheadcount_sources, lowest first) define, so no two
# modules depend on each other. The same for daemon/, in the order of the "# layers:" line
# of daemon/Makemodule.am. Read from the built objects with nm, as the linker sees them.
# No cap on a file's length: a file is one concept, which the layers keep honest. Also:
# only region.c (of the .c files) touches a mapping of the region, fleet.c (the fleet
# scope's client, which only talks to the local headcountd) uses no region code, and
# nothing in lib/ calls libcurl or json-c.
set -eu
src="${top_srcdir:-.}"
objdir="${top_builddir:-.}/lib/.libs"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

modules=$(sed -n '/^libheadcount_sources = /,/^$/p' "$src/lib/Makemodule.am" |
          grep -o 'lib/[a-z]*\.c' | sed 's|lib/||; s|\.c$||')
[ -n "$modules" ] || { echo "no modules found in lib/Makemodule.am"; exit 1; }

status=0
: >"$tmp/below"
for m in $modules; do
        obj="$objdir/libheadcount_la-$m.o"
        [ -f "$obj" ] || { echo "missing $obj"; exit 1; }
        nm --defined-only "$obj" | awk '$2 ~ /^[TDBR]$/ { print $3 }' | sort -u >"$tmp/$m.def"
        nm --undefined-only "$obj" | awk '{ print $NF }' | sort -u >"$tmp/$m.undef"
done
for m in $modules; do
        # what M uses from the library: undefined in M, defined by some module
        cat "$tmp"/*.def | sort -u >"$tmp/all.defs"
        comm -12 "$tmp/$m.undef" "$tmp/all.defs" >"$tmp/$m.uses"
        sort -u "$tmp/below" >"$tmp/below.sorted"
        comm -23 "$tmp/$m.uses" "$tmp/below.sorted" >"$tmp/$m.up"
        if [ -s "$tmp/$m.up" ]; then
                for sym in $(cat "$tmp/$m.up"); do
                        owner=$(grep -lx "$sym" "$tmp"/*.def | head -n 1)
                        echo "lib/$m.c uses $sym from lib/$(basename "$owner" .def).c, which is not below it"
                done
                status=1
        fi
        cat "$tmp/$m.def" >>"$tmp/below"
done

for f in "$src"/lib/*.c; do
        case "$f" in */region.c) continue ;; esac
        if grep -n -e '->map\b' -e '->hdr\b' "$f"; then
                echo "$f: touches the region's mapping; only region.c may"
                status=1
        fi
done
if [ -f "$tmp/fleet.uses" ] && grep -E '^(region|handle|seat|count|wait|mutex|create)_' "$tmp/fleet.uses"; then
        echo "lib/fleet.c uses the region code above; the fleet scope has no region"
        status=1
fi
if cat "$tmp"/*.undef | grep -E '^(curl|json)_'; then
        echo "lib/ calls libcurl or json-c; only headcountd and the CLI may"
        status=1
fi
# daemon/: the same check on headcountd's objects, in the order its Makemodule.am gives
dmodules=$(sed -n 's/^# layers: //p' "$src/daemon/Makemodule.am")
ddir="${top_builddir:-.}/daemon"
n_daemon=0
if [ -n "$dmodules" ] && [ -f "$ddir/headcountd-headcountd.o" ]; then
        : >"$tmp/dbelow"
        for m in $dmodules; do
                obj="$ddir/headcountd-$m.o"
                [ -f "$obj" ] || continue      # the fleet's, built without --disable-fleet only
                nm --defined-only "$obj" | awk '$2 ~ /^[TDBR]$/ { print $3 }' | sort -u >"$tmp/d.$m.def"
                nm --undefined-only "$obj" | awk '{ print $NF }' | sort -u >"$tmp/d.$m.undef"
        done
        cat "$tmp"/d.*.def | sort -u >"$tmp/dall.defs"
        for m in $dmodules; do
                [ -f "$tmp/d.$m.def" ] || continue
                comm -12 "$tmp/d.$m.undef" "$tmp/dall.defs" >"$tmp/d.$m.uses"
                sort -u "$tmp/dbelow" >"$tmp/dbelow.sorted"
                comm -23 "$tmp/d.$m.uses" "$tmp/dbelow.sorted" >"$tmp/d.$m.up"
                for sym in $(cat "$tmp/d.$m.up"); do
                        owner=$(grep -lx "$sym" "$tmp"/d.*.def | head -n 1)
                        owner=$(basename "$owner" .def)
                        echo "daemon/$m.c uses $sym from daemon/${owner#d.}.c, which is not below it"
                        status=1
                done
                cat "$tmp/d.$m.def" >>"$tmp/dbelow"
                n_daemon=$((n_daemon + 1))
        done
        # every module of the daemon is in the list
        for f in "$src"/daemon/*.c; do
                m=$(basename "$f" .c)
                case " $dmodules " in *" $m "*) ;; *) echo "daemon/$m.c is missing from the layers line of daemon/Makemodule.am"; status=1 ;; esac
        done
fi
[ "$status" -eq 0 ] && echo "ok: $(echo "$modules" | wc -l) modules of lib/ and $n_daemon of daemon/ in layers, one owner of the bytes"
exit $status
