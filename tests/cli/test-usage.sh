#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Usage errors exit 64 with one line and the --help hint; --help and --version exit 0.
. "${srcdir:-.}/tests/cli/lib.sh"

expect 0 hc --help && contains "$T/out" "Usage:" && same "--help stderr" "$(cat "$T/err")" ""
expect 0 hc -h && contains "$T/out" "For more details see headcount(1)."
expect 0 hc --version && same "--version" "$(cat "$T/out")" "headcount 0.1.0"
expect 0 hc -V && same "-V" "$(cat "$T/out")" "headcount 0.1.0"
expect 0 hc count web --help

usage_fails "no command given" hc
usage_fails "no command given" hc --dir "$D"
usage_fails "unknown command 'frob'" hc frob web
usage_fails "unknown command 'frobnicate'" hc frobnicate web hello
usage_fails "unrecognized option '--bogus'" hc count --bogus web
usage_fails "unrecognized option '--bogus'" hc --bogus count web
usage_fails "invalid option -- 'x'" hc -x count web
usage_fails "option '--dir' requires an argument" hc count web --dir
usage_fails "option '--json' does not apply to 'count'" hc count --json web
usage_fails "option '--max' does not apply to 'list'" hc list --max 2 web
usage_fails "option '--wait' does not apply to 'wait'" hc wait --wait web --zero
usage_fails "option '--below' does not apply to 'run'" hc run --below 2 web -- true
usage_fails "unrecognized option '--json=1'" hc list --json=1 web
usage_fails "option '--output' does not apply to 'count'" hc count -o PID web
usage_fails "option '--raw' does not apply to 'wait'" hc wait -r web --zero
usage_fails "option '--time-format' does not apply to 'names'" hc names --time-format iso
usage_fails "option '-o' requires an argument" hc list web -o

# Columns and time formats: one line that names the valid ones.
list_columns="SEAT, PID, UID, USER, COMMAND, JOINED, AGE, SEQ, TAG, FLAGS"
usage_fails "unknown column 'FOO' for 'list'; valid columns: $list_columns" hc list -o PID,FOO web
usage_fails "unknown column 'HOST' for 'list'; valid columns: $list_columns" hc list -o HOST web
usage_fails "unknown column '' for 'list'; valid columns: $list_columns" hc list -o PID,,TAG web
usage_fails "unknown column 'PID' for 'names'; valid columns: NAME, COUNT, CAPACITY" hc names -J -o PID
usage_fails "invalid --time-format value 'utc' (iso, relative or raw)" hc list --time-format utc web

# Names: checked before anything touches the disk. A message shows a backslash as "\\".
for name in "" .hidden "a/b" "a b" "é" "$(printf 'x%.0s' $(seq 201))" "Local\\" "Global\\.x" "../x"; do
        usage_fails "invalid name '${name//\\/\\\\}'" hc count "$name"
        usage_fails "invalid name '${name//\\/\\\\}'" hc run "$name" -- true
done
expect 0 hc count "$(printf 'x%.0s' $(seq 200))"
expect 0 hc count "Local\\web"
same "regions created by bad names" "$(ls -A "$D")" ""

# Missing pieces.
usage_fails "no name given for 'count'" hc count
usage_fails "unexpected argument 'extra'" hc count web extra
usage_fails "unexpected argument 'extra'" hc names extra
usage_fails "missing '--' before the command 'true'" hc run web true
usage_fails "no command given after 'web --'" hc run web --
usage_fails "no name given before '--'" hc run -- true
usage_fails "'wait' needs --below <number> or --zero" hc wait web
usage_fails "--below and --zero exclude each other" hc wait web --below 2 --zero

# Numbers and durations.
for bad in 0 abc -1 1x "" 4097 " 1" 99999999999999999999; do
        usage_fails "invalid --max value '$bad'" hc run --max "$bad" web -- true
done
for bad in -1 abc "" 1s -0.5 nan inf 0x; do
        usage_fails "invalid --wait value '$bad'" hc run --wait="$bad" web -- true
        usage_fails "invalid --timeout value '$bad'" hc wait web --zero --timeout "$bad"
done
usage_fails "invalid --below value '0'" hc wait web --below 0
usage_fails "invalid --below value 'x'" hc wait web --below x
usage_fails "invalid --conflict-exit-code value '256'" hc run -E 256 web -- true
usage_fails "invalid --conflict-exit-code value '-1'" hc run -E -1 web -- true
usage_fails "invalid --mode value '0999'" hc create web --mode 0999
usage_fails "invalid --mode value '01777'" hc create web --mode 01777
usage_fails "invalid --capacity value '0'" hc create web --capacity 0
usage_fails "invalid --capacity value '4097'" hc create web --capacity 4097
usage_fails "invalid --data-size value 'big'" hc create web --data-size big
usage_fails "--tag is longer than 64 bytes" hc run --tag "$(printf 't%.0s' $(seq 65))" web -- true
usage_fails "invalid --dir value ''" hc count web --dir ""
same "regions created by bad options" "$(ls -A "$D")" ""

# Valid durations: fractions, and 0 (do not wait).
expect 0 hc wait web --zero --timeout 0
expect 0 hc wait web --zero --timeout .5
expect 0 hc run --wait=0 web -- true
expect 0 hc run --wait=1.25 web -- true

finish
