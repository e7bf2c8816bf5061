#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A burst of 20 'headcount run --max 3' started at once: exactly 3 run, 17 exit 75.
. "${srcdir:-.}/tests/cli/lib.sh"
events_open

for i in $(seq 20); do
        (
                hc run --max 3 burst -- sh -c 'echo started >&3; read _ <"$T/gate"' 2>/dev/null
                echo "status $?" >&3
        ) &
        track $!
done

# Before anything is released there are exactly 20 events: 3 starts and 17 refusals.
started=0
refused=0
for i in $(seq 20); do
        next_event
        case $event in
        started) started=$((started + 1)) ;;
        "status 75") refused=$((refused + 1)) ;;
        *) fail "unexpected event '$event'" ;;
        esac
done
same "commands started" "$started" 3
same "runs refused" "$refused" 17
same "count during the burst" "$(hc count burst)" 3
same "list lines during the burst" "$(hc list --noheadings burst | wc -l)" 3
same "list lines with the header" "$(hc list burst | wc -l)" 4

release 3
for i in $(seq 3); do
        next_event
        same "holder status" "$event" "status 0"
done
wait
same "count after the burst" "$(hc count burst)" 0

finish
