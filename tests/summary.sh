#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Prints one line "N passed, M failed" over the test logs of the given build directories:
# each Check suite counts its checks (its summary line sits in its .log under automake's
# harness), every other test counts once.
passed=0
failed=0
for dir in "$@"; do
        for trs in $(find "$dir" -name '*.trs' -not -path '*/_build/*' 2>/dev/null); do
                log="${trs%.trs}.log"
                line=$(grep -E '^[0-9]+%: Checks: [0-9]+' "$log" 2>/dev/null | tail -n 1)
                if [ -n "$line" ]; then
                        read -r n f e <<NUMBERS
$(echo "$line" | sed -E 's/.*Checks: ([0-9]+), Failures: ([0-9]+), Errors: ([0-9]+).*/\1 \2 \3/')
NUMBERS
                        passed=$((passed + n - f - e))
                        failed=$((failed + f + e))
                elif grep -q ':test-result: PASS' "$trs"; then
                        passed=$((passed + 1))
                elif grep -qE ':test-result: (FAIL|ERROR|XPASS)' "$trs"; then
                        failed=$((failed + 1))
                fi
        done
done
echo "$passed passed, $failed failed"
