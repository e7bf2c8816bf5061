#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The help agrees with the parser. Which options each command takes is asked of the
# parser itself ("option '--X' does not apply to 'C'" or not), for every command and
# option that 'headcount --help' names; then:
#   - 'headcount C --help' (and 'headcount help C') has a row for exactly those options,
#     and the scope options, --fleet among them;
#   - 'headcount --help' marks each option that not every command takes with exactly
#     the commands that take it;
#   - headcount(1)'s OPTIONS does the same.
. "${srcdir:-.}/tests/cli/lib.sh"

if ! command -v python3 >/dev/null; then
        echo "SKIP: python3 is needed" >&2
        exit 77
fi

checks=$((checks + 1))
python3 - "$HEADCOUNT" "$D" "$top_srcdir/cli/headcount.1" <<'PY' || fail "help and parser disagree (above)"
import re, subprocess, sys

hc, d, manpage = sys.argv[1:4]
errors = []

def run(*args):
    p = subprocess.run([hc, *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr

# What 'headcount --help' names: the commands and the options.
rc, top, _ = run("--help")
assert rc == 0
section = lambda text, title: text.split("\n" + title + ":\n", 1)[1].split("\n\n", 1)[0]
commands = [l.split()[0] for l in section(top, "Commands").splitlines()]
commands.remove("help")
ROW = re.compile(r"^ (?:-\w, |    )--([a-z-]+)")
top_rows = {}                   # option -> its row's first line in 'headcount --help'
for line in section(top, "Options").splitlines():
    m = ROW.match(line)
    if m:
        top_rows[m.group(1)] = line
options = [o for o in top_rows if o not in ("help", "version")]
assert len(commands) >= 12 and len(options) >= 25, (commands, options)

# A value the parser takes for each option with one.
values = {"max": "2", "wait": "1", "tag": "t", "conflict-exit-code": "3", "below": "1",
          "timeout": "1", "mode": "0600", "capacity": "4", "data-size": "0", "output": "NAME",
          "time-format": "iso", "fd": "9", "pid": "1", "kill-after": "1", "restart": "always",
          "restart-sec": "1", "on-lost": "term", "owner": "root", "dir": d}
takes_arg = lambda o: re.search(r"--%s[ =]\[?<" % o, top_rows[o]) is not None

# The parser says which commands take each option. No name is given: a command that
# takes the option stops at a usage error of another kind, touching nothing.
accepted = {o: set() for o in options}
for o in options:
    if takes_arg(o) and o not in values:
        errors.append("no test value for --%s: add one to values" % o)
        continue
    for c in commands:
        arg = "--%s=%s" % (o, values[o]) if takes_arg(o) else "--" + o
        rc, _, err = run(c, arg)
        if "does not apply to '%s'" % c not in err:
            accepted[o].add(c)
every = {o for o in options if accepted[o] == set(commands)}
for o in ("user", "system", "dir", "fleet"):
    if o not in every:
        errors.append("scope option --%s is not taken by every command: %s" % (o, sorted(accepted[o])))
for o in ("replace", "kill-after", "restart", "restart-sec", "on-lost"):
    if "run" not in accepted.get(o, ()):
        errors.append("'run' does not take --%s" % o)

# Each command's own help: a row for exactly the options it takes.
for c in commands:
    rc, own, err = run(c, "--help")
    rc2, own2, _ = run("help", c)
    if rc != 0 or rc2 != 0 or own != own2:
        errors.append("'%s --help' and 'help %s' differ or fail: %d %d %s" % (c, c, rc, rc2, err))
    rows = {ROW.match(l).group(1) for l in own.splitlines() if ROW.match(l)}
    want = {o for o in options if c in accepted[o]}
    if rows != want:
        errors.append("'%s --help' lists %s; the parser takes %s (missing %s, extra %s)" %
                      (c, sorted(rows), sorted(want), sorted(want - rows), sorted(rows - want)))
    if "--fleet" not in own:
        errors.append("'%s --help' does not mention --fleet" % c)

# 'headcount --help': an option that not every command takes names exactly those that do.
for o in options:
    if o in every:
        continue
    desc = top_rows[o][33:]
    marks = set(re.findall(r"'([a-z]+)'", desc.split(":", 1)[0])) if ":" in desc else set()
    if marks != accepted[o]:
        errors.append("'headcount --help' marks --%s for %s; the parser takes it for %s" %
                      (o, sorted(marks), sorted(accepted[o])))

# headcount(1)'s OPTIONS: the line after each option's label names its commands.
man = open(manpage, encoding="utf-8").read()
man = "\n" + man.split("\n.SH OPTIONS\n", 1)[1].split("\n.SH ", 1)[0]
man_marks = {}
for item in man.split("\n.TP\n")[1:]:
    label, _, rest = item.partition("\n")
    for o in re.findall(r"\\-\\-([a-z\\-]+)", label):
        o = o.replace("\\-", "-")
        first = rest.split("\n", 1)[0]
        man_marks[o] = (set(re.findall(r"\b([a-z]+)\b", first.split(":", 1)[0]))
                        if first.startswith(".B") and ":" in first else set())
for o in options:
    if o not in man_marks:
        errors.append("headcount(1) has no entry for --%s under OPTIONS" % o)
    elif o not in every and man_marks[o] - {"BR", "B"} != accepted[o]:
        errors.append("headcount(1) marks --%s for %s; the parser takes it for %s" %
                      (o, sorted(man_marks[o] - {"BR", "B"}), sorted(accepted[o])))

for e in errors:
    print("FAIL:", e, file=sys.stderr)
print("%d commands, %d options" % (len(commands), len(options)))
sys.exit(1 if errors else 0)
PY
finish
