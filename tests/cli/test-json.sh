#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 'list --json' and 'names --json' are valid JSON for any tag, as a real parser says.
. "${srcdir:-.}/tests/cli/lib.sh"
events_open

if ! command -v python3 >/dev/null; then
        echo "SKIP: python3 is needed to parse the JSON" >&2
        exit 77
fi

expect 0 hc list --json web && same "empty list" "$(python3 -c 'import json,sys; print(json.load(sys.stdin))' <"$T/out")" "[]"
expect 0 hc names --json && same "empty names" "$(python3 -c 'import json,sys; print(json.load(sys.stdin))' <"$T/out")" "[]"

# Quotes, backslashes, control bytes, a slash, valid UTF-8, and bytes that are not UTF-8:
# a lone continuation byte, a truncated sequence, an overlong '/', a surrogate, 0xff.
tag=$'q"b\\s/\x01\x1f\t\n\x7f é€😀 \x80 \xc3( \xc0\xaf \xed\xa0\x80 \xff'
"$HEADCOUNT" run --max 2 --tag "$tag" web -- sh -c 'echo up >&3; read _ <"$T/gate"' &
track $!
next_event
"$HEADCOUNT" run --max 2 web -- sh -c 'echo up >&3; read _ <"$T/gate"' &
track $!
next_event

expect 0 hc list --json web
cat >"$T/check.py" <<'PY'
import json, sys, re, os
data = json.load(open(sys.argv[1], encoding="utf-8"))
assert isinstance(data, list) and len(data) == 2, data
for i, o in enumerate(data):
    assert set(o) >= {"slot", "pid", "uid", "seq", "joined", "tag", "verified"}, o
    assert o["verified"] is True and "foreign_pid" not in o, o
    assert o["slot"] == i and o["uid"] == os.getuid(), o
    assert isinstance(o["pid"], int) and o["pid"] > 0, o
    assert isinstance(o["seq"], int), o
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", o["joined"]), o
want = ('q"b\\s/\x01\x1f\t\n\x7f é€😀 \ufffd \ufffd( \ufffd\ufffd \ufffd\ufffd\ufffd \ufffd')
assert data[0]["tag"] == want, (data[0]["tag"], want)
assert data[1]["tag"] == "", data[1]
assert data[0]["seq"] < data[1]["seq"], data
print("ok")
PY
same "parsed list" "$(python3 "$T/check.py" "$T/out" 2>&1)" ok

# -J is --json; -o picks the keys (in lower case), with "verified" after a pid.
expect 0 hc list -J web
same "-J is --json" "$(python3 "$T/check.py" "$T/out" 2>&1)" ok
expect 0 hc list -J -o TAG,pid,USER,AGE,FLAGS,COMMAND --time-format raw web
same "keys of -J -o" "$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
print(list(d[1]), d[1]["flags"], d[1]["command"], d[1]["age"] >= 0)' "$T/out")" \
        "['tag', 'pid', 'user', 'age', 'flags', 'command', 'verified'] [] sh True"
expect 0 hc list -J -o JOINED,SEQ --time-format raw web
same "raw joined is a number" "$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
print(all(isinstance(o["joined"], int) and o["joined"] > 10**15 for o in d), list(d[0]))' "$T/out")" \
        "True ['joined', 'seq']"

# The text table keeps one instance per line and the tag in its column.
expect 0 env LC_ALL=C.UTF-8 "$HEADCOUNT" list web
same "text lines" "$(wc -l <"$T/out")" 3
expect 0 env LC_ALL=C.UTF-8 "$HEADCOUNT" list -n -o TAG web
same "text tag" "$(head -1 "$T/out")" 'q"b\s/\x01\x1f\x09\x0a\x7f é€😀 \x80 \xc3( \xc0\xaf \xed\xa0\x80 \xff'

expect 0 hc create idle
expect 0 hc names --json
same "parsed names" "$(python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sorted((o["name"], o["count"]) for o in d))' <"$T/out")" "[('idle', 0), ('web', 2)]"
expect 0 hc names -J -o NAME,CAPACITY
same "names -J -o" "$(python3 -c '
import json, sys
print(json.load(sys.stdin))' <"$T/out")" "[{'name': 'idle', 'capacity': 64}, {'name': 'web', 'capacity': 64}]"

release 2
finish
