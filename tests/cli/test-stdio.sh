#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Started with standard input, output or error closed, headcount opens /dev/null there
# first: no region or lock descriptor can take the number, so neither headcount's own
# output nor its command's can go into a region, and the command reads EOF, not a region.
. "${srcdir:-.}/tests/cli/lib.sh"

# In the build tree $HEADCOUNT is libtool's wrapper script. bash, as its interpreter, would
# open the script on a closed descriptor 2 and leave it there for headcount to inherit;
# dash moves it above 9 first. So a script is run with sh, a program as it is.
if [ "$(head -c 2 "$HEADCOUNT")" = '#!' ]; then
        launch=(sh "$HEADCOUNT")
else
        launch=("$HEADCOUNT")
fi

# closed FDS ARG...: runs headcount with the standard descriptors FDS (0, 1, 2, 012) closed.
closed() {
        local fds=$1
        shift
        case $fds in
        0) "${launch[@]}" "$@" <&- ;;
        1) "${launch[@]}" "$@" >&- ;;
        2) "${launch[@]}" "$@" 2>&- ;;
        012) "${launch[@]}" "$@" <&- >&- 2>&- ;;
        esac
}

# What the commands write, to stdout, stderr and stdin: words long enough that the random
# bytes of a region (ids, check words, clocks) never spell them by chance, as a two-letter
# word can.
OUT=headcount-stdio-test-stdout
ERR=headcount-stdio-test-stderr
IN=headcount-stdio-test-stdin

# intact NAME: the region still works (it counts, lists and takes a seat), and nothing
# that a command wrote is in any file of the scope.
intact() {
        expect 0 hc count "$1" && same "count of $1" "$(cat "$T/out")" 0
        expect 0 hc list "$1" && same "list of $1" "$(cat "$T/out")" ""
        expect 0 hc run "$1" -- true
        checks=$((checks + 1))
        if grep -rlq -e $OUT -e $ERR -e $IN "$D"; then
                fail "output went into $(grep -rl -e $OUT -e $ERR -e $IN "$D" | tr '\n' ' ')"
        fi
}

# Closed stdout: the command's output goes nowhere.
expect 0 closed 1 run out -- sh -c "echo $OUT"
intact out
expect 0 closed 1 run --max 2 out2 -- sh -c "echo $OUT; echo $OUT >&1"
intact out2

# Closed stdin: the command reads EOF, and what it writes to descriptor 0 goes nowhere.
expect 0 closed 0 run in -- sh -c "cat; echo $IN >&0"
same "what the command read" "$(od -An -c "$T/out")" ""
intact in

# Closed stderr: the command's errors go nowhere.
expect 0 closed 2 run err -- sh -c "echo $ERR >&2"
intact err

# All three, on a region that exists already.
expect 0 hc create all
expect 0 closed 012 run all -- sh -c "cat; echo $OUT; echo $ERR >&2; echo $IN >&0"
intact all

# The queries print into nothing.
expect 0 closed 1 count out
expect 0 closed 1 list --json out
expect 0 closed 0 count out
intact out

finish
