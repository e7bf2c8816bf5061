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
# The table (libsmartcols) writes "\xhh" for every byte of a control character and of
# what is no printable character of the locale; a backslash passes unless an 'x' follows.
tag=$'\e[31mred\xc2\x9b1m\xc2\x9d0;x\xc2\x9c\x7f\xc2\x85\xc2\x80\xc2\x9f\\\xc3\xa9\xc2\xa0\xc3\xbf'
text='\x1b[31mred\xc2\x9b1m\xc2\x9d0;x\xc2\x9c\x7f\xc2\x85\xc2\x80\xc2\x9f\é'$'\xc2\xa0''ÿ'
"$HEADCOUNT" run --tag "$tag" web -- sh -c 'echo up >&3; read _ <"$T/gate"' &
track $!
next_event

expect 0 env LC_ALL=C.UTF-8 "$HEADCOUNT" list web
no_raw_controls "$T/out"
expect 0 env LC_ALL=C.UTF-8 "$HEADCOUNT" list -n -o TAG web
same "escaped tag" "$(cat "$T/out")" "$text"
# -r escapes every blank, backslash and byte that is not printable ASCII: exact.
expect 0 env LC_ALL=C.UTF-8 "$HEADCOUNT" list -rn -o TAG web
same "the raw escapes give the bytes back" "$(printf '%b' "$(cat "$T/out")" | od -An -tx1)" \
        "$(printf '%s' "$tag" | od -An -tx1)"

expect 0 hc list --json web
no_raw_controls "$T/out"
same "JSON escapes" "$(grep -o '"tag": *"[^"]*"' "$T/out" | sed 's/^"tag": *//')" \
        '"\u001b[31mred\u009b1m\u009d0;x\u009c\u007f\u0085\u0080\u009f\\é'$'\xc2\xa0''ÿ"'
same "parsed JSON tag" "$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
print(d["instances"][0]["tag"] == sys.argv[2], d["instances"][0]["flags"])' "$T/out" "$tag")" "True []"

# Every C1 control, one by one, in both formats.
for b in 80 81 85 8d 8e 8f 90 96 97 98 9a 9b 9c 9d 9e 9f; do
        c1=$(printf "a\\xc2\\x$b")
        expect 0 hc run --tag "$c1" c1 -- env LC_ALL=C.UTF-8 "$HEADCOUNT" list -n -o TAG c1
        no_raw_controls "$T/out"
        same "text of U+00$b" "$(cat "$T/out")" "a\\xc2\\x$b"
        expect 0 hc run --tag "$c1" c1 -- env LC_ALL=C.UTF-8 "$HEADCOUNT" list -r c1
        no_raw_controls "$T/out"
        same "raw text of U+00$b" "$(sed -n 2p "$T/out" | awk '{ print $NF }')" "a\\xc2\\x$b"
        expect 0 hc run --tag "$c1" c1 -- "$HEADCOUNT" list --json c1
        no_raw_controls "$T/out"
        contains "$T/out" "\"a\\u00$b\""
done

# ESC, a tab, a newline and bytes that are not UTF-8, in every form and two locales: the
# bytes that come out, and JSON that parses to the tag with U+FFFD for the bad bytes.
tag=$'a\eb\tc\nd\xff\xc3(e f\\xg'
"$HEADCOUNT" run --tag "$tag" mixed -- sh -c 'echo up >&3; read _ <"$T/gate"' &
track $!
next_event
for locale in C.UTF-8 C; do
        table() {
                expect 0 env LC_ALL=$locale "$HEADCOUNT" list "$@" -o SEAT,TAG mixed
                no_raw_controls "$T/out"
        }
        table
        same "default form ($locale)" "$(tr -s ' ' <"$T/out")" \
                "$(printf '%s\n' 'SEAT TAG' ' 0 a\x1bb\x09c\x0ad\xff\xc3(e f\x5cxg')"
        table -n
        same "-n ($locale)" "$(cat "$T/out")" '   0 a\x1bb\x09c\x0ad\xff\xc3(e f\x5cxg'
        table -r
        same "-r ($locale)" "$(cat "$T/out")" \
                "$(printf '%s\n' 'SEAT TAG' '0 a\x1bb\x09c\x0ad\xff\xc3(e\x20f\x5cxg')"
        table -rn
        same "-rn ($locale)" "$(printf '%b' "$(cut -d ' ' -f2 "$T/out")" | od -An -tx1)" \
                "$(printf '%s' "$tag" | od -An -tx1)"
        for form in -J "-J -n" "-J -r"; do
                table $form
                same "$form ($locale)" "$(python3 -c '
import json, sys
print(json.load(open(sys.argv[1], encoding="utf-8")) ==
      {"instances": [{"seat": 0, "tag": "a\x1bb\tc\nd\ufffd\ufffd(e f\\xg"}]})' "$T/out")" True
                contains "$T/out" '"tag":"a\u001bb\tc\nd'
        done
done
# In a UTF-8 locale, UTF-8 passes; in the C locale every byte above 0x7f is escaped.
expect 0 env LC_ALL=C.UTF-8 "$HEADCOUNT" run --tag é utf -- "$HEADCOUNT" list -n -o TAG utf
same "é in C.UTF-8" "$(cat "$T/out")" é
expect 0 env LC_ALL=C "$HEADCOUNT" run --tag é utf -- "$HEADCOUNT" list -n -o TAG utf
same "é in C" "$(cat "$T/out")" '\xc3\xa9'

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

release 2
finish
