#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# headcountd --metrics-file: the file parses as Prometheus' text format (every sample
# after its HELP and TYPE, names and labels as the format allows), follows the regions'
# counts and the joins, leaves and deaths, is replaced whole (never seen half-written),
# and is gone once the daemon stops; a file in a missing directory is refused at start.
# With etcd installed, the fleet agent adds its lease and a fleet name's count.
. "${srcdir:-.}/tests/cli/lib.sh"

HEADCOUNTD=${HEADCOUNTD:-$top_builddir/daemon/headcountd}
if [ ! -x "$HEADCOUNTD" ] || ! command -v python3 >/dev/null; then
        echo "SKIP: needs headcountd and python3" >&2
        exit 77
fi
M=$T/metrics/hc.prom
mkdir "$T/metrics"

# metric NAME [LABEL]: the value of sample NAME (with name="LABEL"), after checking the
# whole file; "absent" when there is no such sample, "invalid" when the file is not valid.
metric() {
        python3 - "$M" "$1" "${2-}" <<'PY' 2>>"$T/parse-errors" || echo invalid
import re, sys
path, want, label = sys.argv[1:4]
try:
    text = open(path).read()
except FileNotFoundError:
    print("absent"); sys.exit(0)
assert text.endswith("\n"), "the file does not end with a newline"
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{name="((?:[^"\\\n]|\\[\\"n])*)"\})? (-?[0-9]+(\.[0-9]+)?)$')
typed, helped, values = {}, set(), {}
for line in text.splitlines():
    if line.startswith("# HELP "):
        helped.add(line.split()[2]); continue
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ", 3)
        assert kind in ("gauge", "counter"), line
        assert name not in typed, "TYPE twice: " + line
        typed[name] = kind; continue
    m = sample.match(line)
    assert m, "not a sample: %r" % line
    name = m.group(1)
    assert name in typed and name in helped, "no TYPE or HELP before " + line
    assert (typed[name] == "counter") == name.endswith("_total"), line
    key = (name, m.group(3) or "")
    assert key not in values, "twice: " + line
    values[key] = m.group(4)
print(values.get((want, label), "absent"))
PY
}

is() {                  # is VALUE NAME [LABEL]
        [ "$(metric "$2" "${3-}")" = "$1" ]
}

"$HEADCOUNTD" --dir "$D" --bus=none --log-target=stderr --metrics-file "$M" 2>"$T/daemon.log" &
daemon=$!
track $daemon
wait_for 30 "the metrics file is written at start" test -f "$M"
checks=$((checks + 1))
is 0 headcount_joins_total || fail "joins_total at start: $(metric headcount_joins_total)"

mkfifo "$T/end1"
"$HEADCOUNT" run --max 4 web -- sh -c 'read x <"$1"' sh "$T/end1" &
h1=$!
track $h1
"$HEADCOUNT" run --max 4 web -- sleep 600 &
h2=$!
track $h2
wait_for 30 "two instances of web" is 2 headcount_instances web
checks=$((checks + 1))
is 64 headcount_capacity web || fail "capacity of web: $(metric headcount_capacity web)"
wait_for 30 "two joins" is 2 headcount_joins_total

# A leave: the command ends on its own (its wrapper gives the seat back).
echo >"$T/end1"
wait $h1
wait_for 30 "one leave" is 1 headcount_leaves_total
wait_for 30 "one instance of web" is 1 headcount_instances web

# A death: the wrapper and its command are killed at once, the seat goes with them.
kill -KILL -- -$h2
wait $h2 2>/dev/null
wait_for 30 "one death" is 1 headcount_deaths_total
wait_for 30 "no instance of web" is 0 headcount_instances web
checks=$((checks + 1))
is 2 headcount_joins_total || fail "joins_total: $(metric headcount_joins_total)"
checks=$((checks + 1))
[ ! -s "$T/parse-errors" ] || { fail "the file did not parse:"; cat "$T/parse-errors" >&2; }
checks=$((checks + 1))
[ -z "$(find "$T/metrics" -name 'hc.prom.*')" ] || fail "a temporary file is left beside it"

kill -TERM $daemon
wait $daemon
checks=$((checks + 1))
[ ! -e "$M" ] || fail "the file is still there after the daemon stopped"

expect 1 "$HEADCOUNTD" --dir "$D" --bus=none --log-target=stderr --metrics-file "$T/nowhere/hc.prom"
contains "$T/err" "Cannot write the metrics file $T/nowhere/hc.prom"
expect 64 "$HEADCOUNTD" --dir "$D" --bus=none --log-target=stderr --metrics-file "$T/metrics/"

# The fleet agent: its lease, and the count of a fleet name a local holder uses.
if [ -x /usr/bin/etcd ] && [ -x /usr/bin/etcdctl ] && "$HEADCOUNTD" --help | grep -q -- --etcd; then
        ETCD_TOP=$T/etcd
        mkdir -m 0700 "$ETCD_TOP"
        . "${srcdir:-.}/tests/common/etcd.sh"
        etcd_start 1
        for p in $started_pids; do
                track "$p"
        done
        mkdir -m 0700 "$T/host"
        "$HEADCOUNTD" --dir "$T/host" --bus=none --log-target=stderr --etcd "$ETCD_ENDPOINTS" \
                --host h1 --metrics-file "$M" 2>"$T/agent.log" &
        agent=$!
        track $agent
        wait_for 60 "the lease is up" is 1 headcount_fleet_lease_up
        HEADCOUNT_DIR=$T/host "$HEADCOUNT" --fleet run --max 3 build -- sleep 600 &
        track $!
        wait_for 60 "a fleet name's count" is 1 headcount_fleet_instances build
        kill -TERM $agent
        wait $agent
fi
finish
