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

same "long options in --help" "$(echo "$long" | wc -l)" 31
same "commands in --help" "$(echo $commands)" "run count list history names wait create remove send path join leave status help"

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
same "complete a list option" "$(complete_words headcount list --out)" "--output --output-all"
same "complete --time-format" "$(complete_words headcount list --time-format r)" "relative raw"
same "complete a column" "$(complete_words headcount list -o SEAT,CO)" "SEAT,COMMAND"
same "complete a column of names" "$(complete_words headcount names --output C)" "COUNT CAPACITY"
same "complete names after -o" "$(complete_words headcount list -o PID al)" alpha
same "complete help's commands" "$(complete_words headcount help j)" join
same "no names for create" "$(complete_words headcount create '')" ""
same "no names after the name" "$(complete_words headcount count alpha '')" ""
same "no names after the name of wait" "$(complete_words headcount wait alpha --zero '')" ""
same "-- after run NAME" "$(complete_words headcount run alpha '')" --
same "-- after run --max 2 NAME" "$(complete_words headcount run --max 2 alpha '')" --
same "-- among run NAME's options" "$(complete_words headcount run alpha --)" "--user --system --dir --fleet --help --version --max --wait --wait= --tag --conflict-exit-code --quiet --replace --kill-after --restart= --restart-sec --on-lost= --"
same "names after -w SEC" "$(complete_words headcount run -w 5 '')" "alpha beta"
same "-- after -w SEC NAME" "$(complete_words headcount run -w 5 alpha '')" --
same "names after -w" "$(complete_words headcount run -w '')" "alpha beta"
same "join's options" "$(complete_words headcount join --fd)" --fd
same "--max values" "$(complete_words headcount run --max n)" ncpus
same "nothing after --fd" "$(complete_words headcount join --fd '')" ""
same "names after --fd N" "$(complete_words headcount join --fd 9 '')" "alpha beta"

# The same with the bash-completion package's own helpers, when it is installed.
bash_completion=/usr/share/bash-completion/bash_completion
if [ -r "$bash_completion" ]; then
        complete_real() {
                bash -c '
                        . "$1"
                        headcount() { "$HEADCOUNT" "$@"; }
                        . "$2"
                        shift 2
                        COMP_WORDS=("$@")
                        COMP_CWORD=$(($# - 1))
                        COMP_LINE="$*"
                        COMP_POINT=${#COMP_LINE}
                        _headcount_module headcount "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
                        echo "${COMPREPLY[@]}"' complete "$bash_completion" "$completion" "$@"
        }
        same "real: complete a command" "$(complete_real headcount jo)" join
        same "real: names" "$(complete_real headcount count '')" "alpha beta"
        same "real: no names for create" "$(complete_real headcount create '')" ""
        same "real: no names after the name" "$(complete_real headcount list alpha '')" ""
        same "real: -- after run NAME" "$(complete_real headcount run alpha '')" --
        same "real: names after -w SEC" "$(complete_real headcount run -w 0.5 '')" "alpha beta"
else
        echo "SKIP: the completion with bash-completion's helpers (not installed)"
fi

finish
