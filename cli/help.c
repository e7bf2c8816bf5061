/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * 'headcount COMMAND --help' and 'headcount help COMMAND': one command's own usage. Its
 * options are not written here per command: the parser (options.c) passes the options
 * its table lets the command take, and each is printed from the one row below that
 * describes it, so that a command's help lists exactly what the parser accepts.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* What each command is for; its options follow, from the parser's table. */
static const struct {
        const char *name;
        const char *text;
} helps[] = {
        { "run",
          " headcount [options] run [<option>...] <name> -- <cmd> [<arg>...]\n"
          "\nRun <cmd> while holding a seat of region <name>; exit with its status.\n" },
        { "count",
          " headcount [options] count <name>\n"
          "\nPrint the exact number of live instances (0 for a region nobody made yet).\n" },
        { "list",
          " headcount [options] list [<option>...] <name>\n"
          "\nPrint a table of the live instances, one line each. A PID marked '*' is from\n"
          "another PID namespace; one marked '?' is a claim: the region is writable by\n"
          "others, who may have written the record.\n" },
        { "history",
          " headcount [options] history [<option>...] <name>\n"
          "\nPrint the last runs of region <name>, oldest first: who held a seat, when,\n"
          "for how long, and how it ended (left with its exit status or signal, died\n"
          "holding the seat, or still running). A region keeps its last 16 runs per seat.\n"
          "Needs no daemon.\n" },
        { "names",
          " headcount [options] names [<option>...]\n"
          "\nPrint every region in the scope with its count. A file that is no region is\n"
          "named in a warning and skipped.\n" },
        { "wait",
          " headcount [options] wait (--below <n> | --zero) [--timeout <secs>] <name>\n"
          "\nWait until fewer than <n> (or no) instances are running; exit 124 on timeout.\n" },
        { "create",
          " headcount [options] create [<option>...] <name>\n"
          " headcount --fleet create --max <n> [--mode <mode>] [--owner <user>] <name>\n"
          "\nCreate a region ahead of use (an existing one is left as it is); with --fleet,\n"
          "define a fleet name for good (until 'remove').\n" },
        { "remove",
          " headcount [options] remove <name>\n"
          "\nRetire and remove a region that nobody is in.\n" },
        { "send",
          " headcount [options] send [--timeout <secs>] <name> [--] <message>...\n"
          "\nSend the words to the primary instance and print its reply; exit 69 when no\n"
          "primary listens. Not with --fleet: the primary may run on another host.\n" },
        { "path",
          " headcount [options] path [<option>...] <name>\n"
          "\nPrint the file whose open descriptor can hold a seat of <name>, creating the\n"
          "region if needed. A shell script opens it, then takes the seat with 'join':\n"
          "\n  exec 9<>\"$(headcount path backup)\" || exit 1\n"
          "  headcount join --fd 9 backup || exit\n" },
        { "join",
          " headcount [options] join --fd <fd> [<option>...] <name>\n"
          "\nTake a seat of <name> that descriptor <fd> holds: the shell's own, opened on\n"
          "the file that 'path' prints. The seat stays after headcount exits, and is given\n"
          "back when the shell and every process that inherited <fd> have closed it,\n"
          "however they end, or by 'leave'. Exit 75 when no seat is free.\n" },
        { "leave",
          " headcount [options] leave --fd <fd> <name>\n"
          "\nGive back the seat of <name> that descriptor <fd> holds, and erase its record.\n" },
        { "status",
          " headcount --fleet [options] status\n"
          "\nPrint the fleet agent's health in one line: lease held, renewing late, lease\n"
          "lost, or etcd unreachable (with the reason). Exit 0 while the agent holds its\n"
          "etcd lease (on time or late), 69 when it holds none or no agent serves the scope.\n" },
};

/*
 * One row per option of the parser's table (by its long name); a row with a command is
 * that command's own wording and comes before the general one. The text is the row as
 * printed: the option in the first 33 columns, continuation lines indented.
 */
static const struct {
        const char *option;
        const char *command;    /* NULL: every command that takes it */
        const char *text;
} rows[] = {
        { "max", "create",
          " -m, --max <n>                   with --fleet: the name's N, seats across hosts\n" },
        { "max", "join",
          " -m, --max <n>|ncpus|<p>%        seats available (default 1, at most 32 here)\n" },
        { "max", NULL,
          " -m, --max <n>|ncpus|<p>%        seats available (default 1); ncpus: the CPUs\n"
          "                                   we may run on; <p>%: that share, at least 1\n" },
        { "wait", NULL,
          " -w, --wait [<secs>]             wait for a free seat, at most <secs> (forever\n"
          "                                   without); a number after -w is its value\n" },
        { "tag", NULL,
          "     --tag <text>                text shown by 'list'\n" },
        { "conflict-exit-code", NULL,
          " -E, --conflict-exit-code <num>  exit status when no seat is free (default 75)\n" },
        { "quiet", NULL,
          " -q, --quiet                     say nothing when no seat is free\n" },
        { "json", "list",
          " -J, --json                      print JSON: {\"instances\": [...]}, one object\n"
          "                                   per instance, keys the columns in lower case\n"
          "                                   (default: those of the table, and flags)\n" },
        { "json", "history",
          " -J, --json                      print JSON: {\"runs\": [...]}, one object\n"
          "                                   per run, keys the columns in lower case\n"
          "                                   (default: those of the table, and flags)\n" },
        { "json", "names",
          " -J, --json                      print JSON: {\"regions\": [...]}, one object\n"
          "                                   per region, keys the columns in lower case\n" },
        { "below", NULL,
          "     --below <n>                 until fewer than <n> are running\n" },
        { "zero", NULL,
          "     --zero                      until nobody is running\n" },
        { "timeout", NULL,
          "     --timeout <secs>            give up after <secs>\n" },
        { "mode", "create",
          "     --mode <mode>               file mode, octal (default 0600); group or other\n"
          "                                   write only in the system scope; fleet: 0600,\n"
          "                                   0644 (default) or 0666: others may count (4)\n"
          "                                   and join (2)\n" },
        { "mode", NULL,
          "     --mode <mode>               file mode of a region made here, octal\n"
          "                                   (default 0600)\n" },
        { "capacity", NULL,
          "     --capacity <n>              seats in the region (default 64, at most 4096)\n" },
        { "data-size", NULL,
          "     --data-size <bytes>         user data bytes in the region (at most 1 GiB)\n" },
        { "output", NULL,
          " -o, --output <list>             the columns to print, comma-separated;\n"
          "                                   '+<list>' adds to the default\n" },
        { "output-all", NULL,
          "     --output-all                print every column\n" },
        { "noheadings", NULL,
          " -n, --noheadings                no header line\n" },
        { "raw", NULL,
          " -r, --raw                       columns split by one space, blanks and other\n"
          "                                   unsafe bytes as \\xhh\n" },
        { "time-format", "history",
          "     --time-format <format>      STARTED and ENDED as iso, relative or raw\n"
          "                                   (default: local time)\n" },
        { "time-format", NULL,
          "     --time-format <format>      JOINED as iso, relative or raw (default: local\n"
          "                                   time)\n" },
        { "fd", NULL,
          "     --fd <fd>                   the descriptor (open for writing)\n" },
        { "pid", NULL,
          "     --pid <pid>                 the holder 'list' shows (default: our parent)\n" },
        { "replace", NULL,
          "     --replace                   stop whoever holds our seat, take it (not with\n"
          "                                   --wait, nor --fleet)\n" },
        { "kill-after", NULL,
          "     --kill-after <secs>         SIGKILL after SIGTERM, for --replace (default 5)\n"
          "                                   and a lost fleet seat (default 2)\n" },
        { "restart", NULL,
          "     --restart <when>            run <cmd> again when it ends: always,\n"
          "                                   on-failure, on-success or no (default); the\n"
          "                                   seat is held throughout\n" },
        { "restart-sec", NULL,
          "     --restart-sec <secs>        delay before a restart (default 0.1)\n" },
        { "on-lost", NULL,
          "     --on-lost <action>          --fleet: when the seat is lost, term (default),\n"
          "                                   kill or ignore <cmd>\n" },
        { "owner", NULL,
          "     --owner <user>              with --fleet: the name's owner (root only;\n"
          "                                   default: the caller)\n" },
        { "user", NULL,
          "     --user                      the per-user scope (default)\n" },
        { "system", NULL,
          "     --system                    the system scope\n" },
        { "dir", NULL,
          "     --dir <dir>                 the regions in <dir>\n" },
        { "fleet", "send",
          "     --fleet                     not for 'send': the primary may be elsewhere\n" },
        { "fleet", "status",
          "     --fleet                     needed: the agent of the fleet scope\n" },
        { "fleet", NULL,
          "     --fleet                     count across hosts, through etcd: served by the\n"
          "                                   headcountd of the scope above (default: of\n"
          "                                   the user scope, else of the system scope)\n" },
};

/* The row of OPTION for COMMAND; a bare one when none is written (the help test fails
 * then, but the option is still named). */
static void print_option(const char *command, const char *option) {
        for (size_t pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
                        if (strcmp(rows[i].option, option) == 0 &&
                            (pass == 0 ? rows[i].command && strcmp(rows[i].command, command) == 0
                                       : !rows[i].command)) {
                                fputs(rows[i].text, stdout);
                                return;
                        }
        printf("     --%s\n", option);
}

bool command_usage(const char *name, const char *const *options, const char *const *scope) {
        for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
                if (strcmp(helps[i].name, name) != 0)
                        continue;
                printf("\nUsage:\n%s", helps[i].text);
                if (options[0]) {
                        fputs("\nOptions:\n", stdout);
                        for (size_t j = 0; options[j]; j++)
                                print_option(name, options[j]);
                }
                if (strcmp(name, "list") == 0 || strcmp(name, "names") == 0 ||
                    strcmp(name, "history") == 0) {
                        putchar('\n');
                        list_columns_usage(name);
                }
                fputs("\nScope options:\n", stdout);
                for (size_t j = 0; scope[j]; j++)
                        print_option(name, scope[j]);
                fputs("\nFor more details see headcount(1).\n", stdout);
                return true;
        }
        return false;
}
