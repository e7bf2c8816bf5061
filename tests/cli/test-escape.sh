#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Text that others chose never reaches the terminal raw: control characters in tags (ESC,
# DEL and the C1 controls U+0080..U+009F, which are valid UTF-8) and in the words of the
# command line that messages quote come out escaped, and JSON stays valid and escaped.
. "${srcdir:-.}/tests/cli/lib.sh"
events_open

if ! command -v python3 >/dev/null; then
        echo "SKIP: python3 is needed to check the bytes" >&2
        exit 77
fi

# ESC [ 31 m, CSI (U+009B), OSC (U+009D) ... ST (U+009C), DEL, NEL (U+0085), U+0080 and
# U+009F, a backslash, and UTF-8 that must pass (é, U+00A0, U+00FF).
tag=$'\e[31mred\xc2\x9b1m\xc2\x9d0;x\xc2\x9c\x7f\xc2\x85\xc2\x80\xc2\x9f\\\xc3\xa9\xc2\xa0\xc3\xbf'
text='\x1b[31mred\xc2\x9b1m\xc2\x9d0;x\xc2\x9c\x7f\xc2\x85\xc2\x80\xc2\x9f\\é'$'\xc2\xa0''ÿ'
"$HEADCOUNT" run --tag "$tag" web -- sh -c 'echo up >&3; read _ <"$T/gate"' &
track $!
next_event

expect 0 hc list web
no_raw_controls "$T/out"
same "escaped tag" "$(cut -f6 "$T/out")" "$text"
same "the escapes give the bytes back" "$(printf '%b' "$(cut -f6 "$T/out")" | od -An -tx1)" \
        "$(printf '%s' "$tag" | od -An -tx1)"

expect 0 hc list --json web
no_raw_controls "$T/out"
same "JSON escapes" "$(grep -o '"tag": *"[^"]*"' "$T/out" | sed 's/^"tag": *//')" \
        '"\u001b[31mred\u009b1m\u009d0;x\u009c\u007f\u0085\u0080\u009f\\é'$'\xc2\xa0''ÿ"'
same "parsed JSON tag" "$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
print(d[0]["tag"] == sys.argv[2], d[0]["verified"])' "$T/out" "$tag")" "True True"

# Every C1 control, one by one, in both formats.
for b in 80 81 85 8d 8e 8f 90 96 97 98 9a 9b 9c 9d 9e 9f; do
        c1=$(printf "a\\xc2\\x$b")
        expect 0 hc run --tag "$c1" c1 -- "$HEADCOUNT" list c1
        no_raw_controls "$T/out"
        same "text of U+00$b" "$(cut -f6 "$T/out")" "a\\xc2\\x$b"
        expect 0 hc run --tag "$c1" c1 -- "$HEADCOUNT" list --json c1
        no_raw_controls "$T/out"
        contains "$T/out" "\"a\\u00$b\""
done

# Messages that quote the command line: names, commands, options, option values,
# arguments, programs and directories. Each line is checked byte for byte.
quoted_fails() {
        usage_fails "$@"
        no_raw_controls "$T/err"
}
esc=$'\e[31mx\xc2\x9by\x7f'
shown='\x1b[31mx\xc2\x9by\x7f'
quoted_fails "invalid name '$shown'" hc count "$esc"
quoted_fails "invalid name '$shown'" hc run "$esc" -- true
quoted_fails "unknown command '$shown'" hc "$esc" web
quoted_fails "unrecognized option '--$shown'" hc count "--$esc" web
quoted_fails "invalid option -- '\\x1b'" hc count $'-\e' web
quoted_fails "invalid --max value '$shown'" hc run --max "$esc" web -- true
quoted_fails "invalid --wait value '$shown'" hc run --wait="$esc" web -- true
quoted_fails "unexpected argument '$shown'" hc count web "$esc"
quoted_fails "missing '--' before the command '$shown'" hc run web "$esc"
expect 127 hc run prog -- "$esc" && one_error_line "cannot run '$shown': No such file or directory"
no_raw_controls "$T/err"
touch "$T/$esc"
expect 1 hc --dir "$T/$esc" names && one_error_line "cannot list regions in '$T/$shown'"
no_raw_controls "$T/err"

release 1
finish
