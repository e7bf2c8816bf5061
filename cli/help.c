/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* 'headcount COMMAND --help' and 'headcount help COMMAND': one command's own usage. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
        const char *name;
        const char *text;
} helps[] = {
        { "run",
          " headcount [options] run [--max <n>] [--wait [<secs>]] [--tag <text>]\n"
          "                         [-E <num>] [--quiet] <name> -- <cmd> [<arg>...]\n"
          "\nRun <cmd> while holding a seat of region <name>; exit with its status.\n"
          "\nOptions:\n"
          " -m, --max <n>|ncpus|<p>%        seats available (default 1); ncpus: the CPUs\n"
          "                                   we may run on; <p>%: that share, at least 1\n"
          " -w, --wait [<secs>]             wait for a free seat, at most <secs> (forever\n"
          "                                   without); a number after -w is its value\n"
          "     --tag <text>                text shown by 'list'\n"
          " -E, --conflict-exit-code <num>  exit status when no seat is free (default 75)\n"
          " -q, --quiet                     say nothing when no seat is free\n" },
        { "count",
          " headcount [options] count <name>\n"
          "\nPrint the exact number of live instances (0 for a region nobody made yet).\n" },
        { "list",
          " headcount [options] list [--json] <name>\n"
          "\nPrint one line per live instance: slot, pid, uid, seq, joined, tag.\n"
          "\nOptions:\n"
          "     --json                      print JSON\n" },
        { "names",
          " headcount [options] names [--json]\n"
          "\nPrint every region in the scope with its count. A file that is no region is\n"
          "named in a warning and skipped.\n"
          "\nOptions:\n"
          "     --json                      print JSON\n" },
        { "wait",
          " headcount [options] wait (--below <n> | --zero) [--timeout <secs>] <name>\n"
          "\nWait until fewer than <n> (or no) instances are running; exit 124 on timeout.\n"
          "\nOptions:\n"
          "     --below <n>                 until fewer than <n> are running\n"
          "     --zero                      until nobody is running\n"
          "     --timeout <secs>            give up after <secs>\n" },
        { "create",
          " headcount [options] create [--mode <mode>] [--capacity <n>] [--data-size <bytes>] <name>\n"
          " headcount --fleet create --max <n> [--mode <mode>] [--owner <user>] <name>\n"
          "\nCreate a region ahead of use (an existing one is left as it is); with --fleet,\n"
          "define a fleet name for good (until 'remove').\n"
          "\nOptions:\n"
          "     --mode <mode>               file mode, octal (default 0600); group or other\n"
          "                                   write only in the system scope; fleet: 0600,\n"
          "                                   0644 (default) or 0666: others may count (4)\n"
          "                                   and join (2)\n"
          "     --capacity <n>              seats in the region (default 64, at most 4096)\n"
          "     --data-size <bytes>         user data bytes in the region (at most 1 GiB)\n"
          "     --max <n>                   fleet: seats across hosts\n"
          "     --owner <user>              fleet: the name's owner (root only; default:\n"
          "                                   the caller)\n" },
        { "remove",
          " headcount [options] remove <name>\n"
          "\nRetire and remove a region that nobody is in.\n" },
        { "send",
          " headcount [options] send [--timeout <secs>] <name> [--] <message>...\n"
          "\nSend the words to the primary instance and print its reply; exit 69 when no\n"
          "primary listens.\n"
          "\nOptions:\n"
          "     --timeout <secs>            give up after <secs>\n" },
        { "path",
          " headcount [options] path [--mode <mode>] [--capacity <n>] <name>\n"
          "\nPrint the file whose open descriptor can hold a seat of <name>, creating the\n"
          "region if needed. A shell script opens it, then takes the seat with 'join':\n"
          "\n  exec 9<>\"$(headcount path backup)\" || exit 1\n"
          "  headcount join --fd 9 backup || exit\n" },
        { "join",
          " headcount [options] join --fd <fd> [--max <n>] [--wait [<secs>]] [--tag <text>]\n"
          "                          [--pid <pid>] [-E <num>] [--quiet] <name>\n"
          "\nTake a seat of <name> that descriptor <fd> holds: the shell's own, opened on\n"
          "the file that 'path' prints. The seat stays after headcount exits, and is given\n"
          "back when the shell and every process that inherited <fd> have closed it,\n"
          "however they end, or by 'leave'. Exit 75 when no seat is free.\n"
          "\nOptions:\n"
          "     --fd <fd>                   the descriptor (open for writing)\n"
          " -m, --max <n>|ncpus|<p>%        seats available (default 1, at most 32 here)\n"
          " -w, --wait [<secs>]             wait for a free seat, at most <secs>\n"
          "     --tag <text>                text shown by 'list'\n"
          "     --pid <pid>                 the holder 'list' shows (default: our parent)\n"
          " -E, --conflict-exit-code <num>  exit status when no seat is free (default 75)\n"
          " -q, --quiet                     say nothing when no seat is free\n" },
        { "leave",
          " headcount [options] leave --fd <fd> <name>\n"
          "\nGive back the seat of <name> that descriptor <fd> holds, and erase its record.\n" },
        { "status",
          " headcount --fleet [options] status\n"
          "\nPrint the fleet agent's health in one line: lease held, renewing late, lease\n"
          "lost, or etcd unreachable (with the reason). Exit 0 while the agent holds its\n"
          "etcd lease (on time or late), 69 when it holds none or no agent serves the scope.\n" },
};

bool command_usage(const char *name) {
        for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++)
                if (strcmp(helps[i].name, name) == 0) {
                        printf("\nUsage:\n%s"
                               "\nScope options: --user (default), --system, --dir <dir>.\n"
                               "\nFor more details see headcount(1).\n", helps[i].text);
                        return true;
                }
        return false;
}
