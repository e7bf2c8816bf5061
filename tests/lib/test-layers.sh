#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The modules of lib/ form layers: each module uses only symbols that modules listed
# before it in lib/Makemodule.am (libheadcount_sources, lowest first) define, so no two
# modules depend on each other. The same for daemon/ and cli/, in the order of the
# "# layers:" line of their Makemodule.am. Read from the built objects with nm, as the
# linker sees them. No cap on a file's length: a file is one concept, which the layers
# keep honest. Also:
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
# daemon/ and cli/: the same check on each program's objects, in the order of the
# "# layers:" line of its Makemodule.am. PROGRAM's objects are DIR/PROGRAM-MODULE.o.
program_layers() {
        local dir=$1 program=$2 m obj f owner sym layers
        layers=$(sed -n 's/^# layers: //p' "$src/$dir/Makemodule.am")
        n_layered=0
        [ -n "$layers" ] || { echo "$dir/Makemodule.am has no '# layers:' line"; status=1; return; }
        [ -f "${top_builddir:-.}/$dir/$program-$program.o" ] || return 0    # not built
        rm -f "$tmp"/p.*
        : >"$tmp/pbelow"
        for m in $layers; do
                obj="${top_builddir:-.}/$dir/$program-$m.o"
                [ -f "$obj" ] || continue      # the fleet's, not built with --disable-fleet
                nm --defined-only "$obj" | awk '$2 ~ /^[TDBR]$/ { print $3 }' | sort -u >"$tmp/p.$m.def"
                nm --undefined-only "$obj" | awk '{ print $NF }' | sort -u >"$tmp/p.$m.undef"
        done
        cat "$tmp"/p.*.def | sort -u >"$tmp/pall.defs"
        for m in $layers; do
                [ -f "$tmp/p.$m.def" ] || continue
                comm -12 "$tmp/p.$m.undef" "$tmp/pall.defs" >"$tmp/p.$m.uses"
                sort -u "$tmp/pbelow" >"$tmp/pbelow.sorted"
                comm -23 "$tmp/p.$m.uses" "$tmp/pbelow.sorted" >"$tmp/p.$m.up"
                for sym in $(cat "$tmp/p.$m.up"); do
                        owner=$(basename "$(grep -lx "$sym" "$tmp"/p.*.def | head -n 1)" .def)
                        echo "$dir/$m.c uses $sym from $dir/${owner#p.}.c, which is not below it"
                        status=1
                done
                cat "$tmp/p.$m.def" >>"$tmp/pbelow"
                n_layered=$((n_layered + 1))
        done
        for f in "$src/$dir"/*.c; do          # every module is in the list
                m=$(basename "$f" .c)
                case " $layers " in *" $m "*) ;; *) echo "$dir/$m.c is missing from the layers line of $dir/Makemodule.am"; status=1 ;; esac
        done
}
program_layers daemon headcountd
n_daemon=$n_layered
program_layers cli headcount
n_cli=$n_layered
[ "$status" -eq 0 ] && echo "ok: $(echo "$modules" | wc -l) modules of lib/, $n_daemon of daemon/ and $n_cli of cli/ in layers, one owner of the bytes"
exit $status
