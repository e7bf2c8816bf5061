#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Options the way their users type them: '-w 5' and '--wait 5' as flock(1) takes them,
# --max ncpus and --max 50% as sem -j takes them, and 'headcount CMD --help' for one
# command's own usage.
. "${srcdir:-.}/tests/cli/lib.sh"
events_open

# -w SEC and --wait SEC: the number after them is the timeout, not the region's name.
expect 0 hc run -w 5 web -- true
expect 0 hc run --wait 5 web -- true
expect 0 hc run -w 0.5 web -- true
expect 0 hc run --wait .5 web -- true
expect 0 hc run --wait=5 web -- true
expect 0 hc run -w5 web -- true
expect 0 hc run -w web -- true
expect 0 hc run --wait web -- true
same "regions made by -w SEC NAME" "$(ls "$D")" web

# A region whose name is a number comes before -w, or takes --wait=SEC.
expect 0 hc run 5 -w 1 -- true
same "regions after 'run 5 -w 1'" "$(ls "$D" | tr '\n' ' ')" "5 web "
usage_fails "no name given before '--'" hc run -w 5 -- true

# With the seat held, -w SEC waits that long and then gives up with 75.
hc run web -- sh -c 'echo held >"$T/events"; read -r _ <"$T/gate"' &
track $!
next_event
expect 75 hc run -w 0.2 web -- true
one_error_line "no free seat in region 'web' within the timeout"
expect 75 hc run --wait 0.2 web -- true
expect 75 bash -c 'exec 9<>"$("$HEADCOUNT" path web)"; "$HEADCOUNT" join --fd 9 -w 0.2 web'
# ... and a plain -w waits for the seat: it comes when the holder ends.
hc run -w web -- sh -c 'echo second >"$T/events"' &
waiter=$!
track "$waiter"
release 1
next_event
same "the waiter ran once the seat was free" "$event" second
wait "$waiter"
same "the waiter's status" "$?" 0
usage_fails "invalid --wait value '-1'" hc run --wait=-1 web -- true

# --max ncpus and --max P%: the CPUs of our affinity mask, as nproc(1) counts them.
cpu_case() {           # cpu_case CPULIST MAX SEATS: with MAX, SEATS holders fit, not one more
        local cpus=$1 max=$2 seats=$3 i
        for i in $(seq "$seats"); do
                taskset -c "$cpus" "$HEADCOUNT" run --max "$max" cpu -- sh -c \
                        'echo in >"$T/events"; read -r _ <"$T/gate"' &
                track $!
                next_event
        done
        expect 75 taskset -c "$cpus" "$HEADCOUNT" run --max "$max" cpu -- true &&
                contains "$T/err" "no free seat in region 'cpu'"
        release "$seats"
        expect 0 hc wait cpu --zero --timeout 60
}
if command -v taskset >/dev/null && taskset -c 0 true 2>/dev/null; then
        cpu_case 0 ncpus 1
        cpu_case 0 50% 1          # rounded down, but at least 1
        cpu_case 0 250% 2
        if taskset -c 0,1 true 2>/dev/null; then
                cpu_case 0,1 ncpus 2
                cpu_case 0,1 50% 1
                cpu_case 0,1 100% 2
        else
                echo "SKIP: --max with two CPUs (only one CPU may be used here)"
        fi
else
        echo "SKIP: --max ncpus (no taskset(1), or it may not set the affinity)"
fi
for bad in 0% % x% ncpu -5% 1.5%; do
        usage_fails "invalid --max value '$bad'" hc run --max "$bad" web -- true
done

# One command's own usage: 'CMD --help' and 'help CMD', on stdout, exit 0.
for cmd in run count list names wait create remove send path join leave; do
        expect 0 hc "$cmd" --help && contains "$T/out" " headcount [options] $cmd " &&
                same "'$cmd --help' is not the global help" "$(grep -c '^Commands:' "$T/out")" 0
        expect 0 hc help "$cmd" && contains "$T/out" " headcount [options] $cmd "
done
expect 0 hc run --help && contains "$T/out" "Run <cmd> while holding a seat of region <name>"
expect 0 hc join --fd 9 --help && contains "$T/out" "Take a seat of <name> that descriptor <fd> holds"
expect 0 hc help && contains "$T/out" "Commands:"
expect 0 hc --help run && contains "$T/out" "Commands:"
expect 0 hc --help && contains "$T/out" "'headcount <command> --help' describes one command."
usage_fails "unknown command 'frob'" hc help frob
usage_fails "unexpected argument 'x'" hc help run x

finish
