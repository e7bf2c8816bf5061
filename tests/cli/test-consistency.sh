#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# --help, headcount(1) and the bash completion tell the same story: every command and
# option in --help is in the manual and the completion, and the completion completes.
. "${srcdir:-.}/tests/cli/lib.sh"

man=$srcdir/cli/headcount.1
completion=$srcdir/cli/headcount.bash-completion

expect 0 hc --help
cp "$T/out" "$T/help"
long=$(grep -o -- '--[a-z][a-z-]*' "$T/help" | sort -u)
short=$(grep -oE -- '^ -[a-zA-Z],' "$T/help" | tr -d ' ,' | sort -u)
commands=$(sed -n '/^Commands:/,/^$/p' "$T/help" | awk 'NR > 1 && NF { print $1 }')

same "long options in --help" "$(echo "$long" | wc -l)" 23
same "commands in --help" "$(echo $commands)" "run count list names wait create remove send"

for opt in $long; do
        roff=$(printf '%s' "$opt" | sed 's/-/\\\\-/g')
        checks=$((checks + 1))
        grep -q -- "$roff" "$man" || fail "$opt is not in headcount.1"
        checks=$((checks + 1))
        grep -q -- "$opt\\b" "$completion" || fail "$opt is not in the completion"
done
for opt in $short; do
        checks=$((checks + 1))
        grep -q -- "\\\\$opt\\b" "$man" || fail "$opt is not in headcount.1"
done
for cmd in $commands; do
        checks=$((checks + 1))
        grep -qE -- "^\\.BI? \"?$cmd\\b" "$man" || fail "command $cmd is not in headcount.1"
        checks=$((checks + 1))
        grep -q -- "commands=.*\\b$cmd\\b" "$completion" || fail "command $cmd is not in the completion"
done
# and nothing in the completion that --help does not know
for opt in $(grep -o -- '--[a-z][a-z-]*' "$completion" | sort -u); do
        checks=$((checks + 1))
        echo "$long" | grep -qx -- "$opt" || fail "the completion offers $opt, which --help does not list"
done

# Every exit status of the manual's EXIT STATUS section.
for status in 0 1 64 75 124 126 127; do
        checks=$((checks + 1))
        sed -n '/^\.SH EXIT STATUS/,/^\.SH ENV/p' "$man" | grep -qx "\\.B $status" ||
                fail "exit status $status is not in headcount.1"
done

# The pages format without warnings.
if command -v groff >/dev/null; then
        for page in "$man" "$srcdir"/man/*.3; do
                [ -e "$page" ] || continue
                checks=$((checks + 1))
                if grep -q '^\.so ' "$page"; then
                        continue
                fi
                warnings=$(groff -man -ww -z "$page" 2>&1)
                [ -z "$warnings" ] || fail "$(basename "$page"): $warnings"
        done
fi

# The completion completes commands, options and region names (with stand-ins for the
# helpers of the bash-completion package, which need not be installed here).
expect 0 hc create alpha
expect 0 hc create beta
complete_words() {
        bash -c '
                _init_completion() {
                        cur=${COMP_WORDS[COMP_CWORD]}
                        prev=${COMP_WORDS[COMP_CWORD-1]}
                        words=("${COMP_WORDS[@]}")
                        cword=$COMP_CWORD
                }
                _filedir() { COMPREPLY=(DIRS); }
                _command_offset() { COMPREPLY=(COMMAND-AT-$1); }
                compopt() { :; }
                headcount() { "$HEADCOUNT" "$@"; }
                . "$1"
                shift
                COMP_WORDS=("$@")
                COMP_CWORD=$(($# - 1))
                _headcount_module
                echo "${COMPREPLY[@]}"' complete "$completion" "$@"
}
same "complete a command" "$(complete_words headcount ru)" run
same "complete an option" "$(complete_words headcount run --ma)" --max
same "complete a wait option" "$(complete_words headcount wait web --ze)" --zero
same "complete a scope option" "$(complete_words headcount --sy)" --system
same "complete names" "$(complete_words headcount count '')" "alpha beta"
same "complete names in --dir" "$(complete_words headcount --dir "$T" count '')" ""
same "complete --dir" "$(complete_words headcount --dir '')" DIRS
same "complete the command after --" "$(complete_words headcount run web -- '')" COMMAND-AT-4

finish
