#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 'list --json' and 'names --json' are valid JSON for any tag, as a real parser says, and
# shaped as util-linux's: {"instances": [...]}, {"regions": [...]}, keys = the columns.
. "${srcdir:-.}/tests/cli/lib.sh"
events_open

if ! command -v python3 >/dev/null; then
        echo "SKIP: python3 is needed to parse the JSON" >&2
        exit 77
fi

# As util-linux's -J: one object, the rows under the table's name.
py() {
        python3 -c "import json, sys; d = json.load(open(sys.argv[1], encoding='utf-8')); $1" "$T/out"
}
expect 0 hc list --json web && same "empty list" "$(py 'print(d)')" "{'instances': []}"
expect 0 hc names --json && same "empty names" "$(py 'print(d)')" "{'regions': []}"

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
assert isinstance(data, dict) and list(data) == ["instances"], data
data = data["instances"]
assert isinstance(data, list) and len(data) == 2, data
for i, o in enumerate(data):
    assert list(o) == ["seat", "pid", "user", "command", "joined", "tag", "flags"], o
    assert o["seat"] == i and o["flags"] == [] and o["command"] == "sh", o
    assert isinstance(o["pid"], int) and o["pid"] > 0, o
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", o["joined"]), o
want = ('q"b\\s/\x01\x1f\t\n\x7f é€😀 \ufffd \ufffd( \ufffd\ufffd \ufffd\ufffd\ufffd \ufffd')
assert data[0]["tag"] == want, (data[0]["tag"], want)
assert data[1]["tag"] == "", data[1]
print("ok")
PY
same "parsed list" "$(python3 "$T/check.py" "$T/out" 2>&1)" ok
cp "$T/out" "$T/long"

# -J is --json; the default keys are the table's default columns in lower case, and
# "flags" (a JSON pid has no room for the table's '?' or '*').
expect 0 hc list -J web
same "-J is --json" "$(cmp "$T/out" "$T/long" && python3 "$T/check.py" "$T/out" 2>&1)" ok
expect 0 hc list web
same "default keys" "$(head -1 "$T/out" | tr 'A-Z' 'a-z' | xargs) flags" \
        "seat pid user command joined tag flags"

# -o gives exactly the keys it names, in its order; --output-all every column's.
expect 0 hc list -J -o TAG,pid,USER,AGE,FLAGS,COMMAND --time-format raw web
same "keys of -J -o" "$(py '
o = d["instances"][1]
print(list(d), list(o), o["flags"], o["command"], o["age"] >= 0)')" \
        "['instances'] ['tag', 'pid', 'user', 'age', 'flags', 'command'] [] sh True"
expect 0 hc list -J -o JOINED,SEQ --time-format raw web
same "raw joined is a number" "$(py '
d = d["instances"]
print(all(isinstance(o["joined"], int) and o["joined"] > 10**15 for o in d), list(d[0]))')" \
        "True ['joined', 'seq']"
expect 0 hc list -J -o +UID web
same "keys of -J -o +UID" "$(py 'print(*d["instances"][0])')" "seat pid user command joined tag flags uid"
expect 0 hc list --output-all web
all=$(head -1 "$T/out" | tr 'A-Z' 'a-z' | xargs)
same "columns of --output-all" "$all" "seat pid uid user command joined age seq tag flags"
expect 0 hc list --output-all --json web
same "keys of --output-all" "$(py 'print(*d["instances"][0])')" "$all"
same "uid and seq of --output-all" "$(py '
d = d["instances"]
print(d[0]["uid"] == __import__("os").getuid(), d[0]["seq"] < d[1]["seq"])')" \
        "True True"

# The text table keeps one instance per line and the tag in its column.
expect 0 env LC_ALL=C.UTF-8 "$HEADCOUNT" list web
same "text lines" "$(wc -l <"$T/out")" 3
expect 0 env LC_ALL=C.UTF-8 "$HEADCOUNT" list -n -o TAG web
same "text tag" "$(head -1 "$T/out")" 'q"b\s/\x01\x1f\x09\x0a\x7f é€😀 \x80 \xc3( \xc0\xaf \xed\xa0\x80 \xff'

# names: {"regions": [...]}, with the capacity the table shows.
expect 0 hc create --capacity 8 idle
expect 0 hc names
same "names columns" "$(head -1 "$T/out" | tr 'A-Z' 'a-z' | xargs)" "name count capacity"
expect 0 hc names --json
same "parsed names" "$(py 'print(list(d), [list(o.values()) for o in d["regions"]], [list(o) for o in d["regions"]][0])')" \
        "['regions'] [['idle', 0, 8], ['web', 2, 64]] ['name', 'count', 'capacity']"
expect 0 hc names -J
same "names -J is --json" "$(py 'print(d["regions"][0])')" "{'name': 'idle', 'count': 0, 'capacity': 8}"
expect 0 hc names -J -o NAME,CAPACITY
same "names -J -o" "$(py 'print(d)')" \
        "{'regions': [{'name': 'idle', 'capacity': 8}, {'name': 'web', 'capacity': 64}]}"
expect 0 hc names --output-all -J -o COUNT
same "names --output-all" "$(py 'print(*d["regions"][1])')" "name count capacity"

release 2
finish
