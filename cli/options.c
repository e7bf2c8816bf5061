/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * headcount(1)'s command line: its commands, the options with the commands each one
 * applies to (one row per option: the parser, 'headcount --help' marks and every
 * command's own help come from it), and the parser, which checks everything a command
 * relies on and returns: an error is one line on stderr and EXIT_USAGE, never an exit()
 * from inside (so a harness can parse many command lines in one process).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>                   /* isfinite(), a macro: no libm */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "options.h"

#define streq(a, b) (strcmp((a), (b)) == 0)

static const struct {
        const char *name;
        bool takes_name;
} commands[N_COMMANDS] = {
        [CMD_RUN]    = { "run",    true  },
        [CMD_COUNT]  = { "count",  true  },
        [CMD_LIST]   = { "list",   true  },
        [CMD_NAMES]  = { "names",  false },
        [CMD_WAIT]   = { "wait",   true  },
        [CMD_CREATE] = { "create", true  },
        [CMD_REMOVE] = { "remove", true  },
        [CMD_SEND]   = { "send",   true  },
        [CMD_PATH]   = { "path",   true  },
        [CMD_JOIN]   = { "join",   true  },
        [CMD_LEAVE]  = { "leave",  true  },
        [CMD_STATUS] = { "status", false },
        [CMD_HELP]   = { "help",   false },
        [CMD_HISTORY] = { "history", true },
};

/* The options, as rows[] lists them. */
enum {
        O_MAX, O_WAIT, O_TAG, O_CONFLICT, O_QUIET, O_JSON, O_BELOW, O_ZERO, O_TIMEOUT, O_MODE,
        O_CAPACITY, O_DATA_SIZE, O_OUTPUT, O_OUTPUT_ALL, O_NOHEADINGS, O_RAW, O_TIME_FORMAT,
        O_FD, O_PID, O_REPLACE, O_KILL_AFTER, O_RESTART, O_RESTART_SEC, O_ON_LOST, O_OWNER,
        O_USER, O_SYSTEM, O_DIR, O_FLEET, O_HELP, O_VERSION,
        N_OPTIONS,
};

#define C(x) (1u << CMD_##x)
#define TABLE (C(LIST) | C(NAMES) | C(HISTORY))
#define EVERY UINT_MAX                  /* a scope option, or --help: every command's */
#define LONG_ONLY(o) (CHAR_MAX + 1 + (o))

/* One option: its getopt_long() row, and the commands it applies to. */
static const struct option_row {
        const char *name;
        int has_arg;
        int val;                        /* the short option; LONG_ONLY() for none */
        unsigned commands;              /* 1 << CMD_*, or EVERY */
} rows[N_OPTIONS] = {
        [O_MAX]         = { "max",                required_argument, 'm', C(RUN) | C(JOIN) | C(CREATE) },
        [O_WAIT]        = { "wait",               optional_argument, 'w', C(RUN) | C(JOIN) },
        [O_TAG]         = { "tag",                required_argument, LONG_ONLY(O_TAG), C(RUN) | C(JOIN) },
        [O_CONFLICT]    = { "conflict-exit-code", required_argument, 'E', C(RUN) | C(JOIN) },
        [O_QUIET]       = { "quiet",              no_argument,       'q', C(RUN) | C(JOIN) },
        [O_JSON]        = { "json",               no_argument,       'J', TABLE },
        [O_BELOW]       = { "below",              required_argument, LONG_ONLY(O_BELOW), C(WAIT) },
        [O_ZERO]        = { "zero",               no_argument,       LONG_ONLY(O_ZERO), C(WAIT) },
        [O_TIMEOUT]     = { "timeout",            required_argument, LONG_ONLY(O_TIMEOUT), C(WAIT) | C(SEND) },
        [O_MODE]        = { "mode",               required_argument, LONG_ONLY(O_MODE), C(CREATE) | C(PATH) },
        [O_CAPACITY]    = { "capacity",           required_argument, LONG_ONLY(O_CAPACITY), C(CREATE) | C(PATH) },
        [O_DATA_SIZE]   = { "data-size",          required_argument, LONG_ONLY(O_DATA_SIZE), C(CREATE) | C(PATH) },
        [O_OUTPUT]      = { "output",             required_argument, 'o', TABLE },
        [O_OUTPUT_ALL]  = { "output-all",         no_argument,       LONG_ONLY(O_OUTPUT_ALL), TABLE },
        [O_NOHEADINGS]  = { "noheadings",         no_argument,       'n', TABLE },
        [O_RAW]         = { "raw",                no_argument,       'r', TABLE },
        [O_TIME_FORMAT] = { "time-format",        required_argument, LONG_ONLY(O_TIME_FORMAT), C(LIST) | C(HISTORY) },
        [O_FD]          = { "fd",                 required_argument, LONG_ONLY(O_FD), C(JOIN) | C(LEAVE) },
        [O_PID]         = { "pid",                required_argument, LONG_ONLY(O_PID), C(JOIN) },
        [O_REPLACE]     = { "replace",            no_argument,       LONG_ONLY(O_REPLACE), C(RUN) },
        [O_KILL_AFTER]  = { "kill-after",         required_argument, LONG_ONLY(O_KILL_AFTER), C(RUN) },
        [O_RESTART]     = { "restart",            required_argument, LONG_ONLY(O_RESTART), C(RUN) },
        [O_RESTART_SEC] = { "restart-sec",        required_argument, LONG_ONLY(O_RESTART_SEC), C(RUN) },
        [O_ON_LOST]     = { "on-lost",            required_argument, LONG_ONLY(O_ON_LOST), C(RUN) },
        [O_OWNER]       = { "owner",              required_argument, LONG_ONLY(O_OWNER), C(CREATE) },
        [O_USER]        = { "user",               no_argument,       LONG_ONLY(O_USER), EVERY },
        [O_SYSTEM]      = { "system",             no_argument,       LONG_ONLY(O_SYSTEM), EVERY },
        [O_DIR]         = { "dir",                required_argument, LONG_ONLY(O_DIR), EVERY },
        [O_FLEET]       = { "fleet",              no_argument,       LONG_ONLY(O_FLEET), EVERY },
        [O_HELP]        = { "help",               no_argument,       'h', EVERY },
        [O_VERSION]     = { "version",            no_argument,       'V', EVERY },
};

#define SHORT_OPTIONS "+:m:w::E:qo:nrJhV"

static int find_command(const char *name) {
        for (int i = 0; i < N_COMMANDS; i++)
                if (streq(commands[i].name, name))
                        return i;
        return -1;
}

bool command_takes_name(int id) {
        return id >= 0 && id < N_COMMANDS && commands[id].takes_name;
}

/* 'headcount --help'. */
static int usage(void) {
        FILE *out = stdout;

        fputs("\nUsage:\n"
              " headcount [options] <command> <name> [<argument>...]\n"
              "\nCount and limit running instances of a program.\n"
              "\nCommands:\n"
              " run <name> -- <cmd> [<arg>...]  run <cmd> while holding a seat\n"
              " count <name>                    print the exact number of live instances\n"
              " list <name>                     print one line per live instance\n"
              " history <name>                  print the last runs and how each one ended\n"
              " names                           print every region in the scope with its count\n"
              " wait <name>                     wait until the count drops below a bound\n"
              " create <name>                   create a region (--fleet: a name) ahead of use\n"
              " remove <name>                   retire a region that nobody is in\n"
              " send <name> [--] <message>...   send to the primary instance, print its reply\n"
              " path <name>                     print the file a shell opens to hold a seat\n"
              " join --fd <fd> <name>           take a seat that descriptor <fd> holds\n"
              " leave --fd <fd> <name>          give back the seat that <fd> holds\n"
              " status                          --fleet: the agent's etcd lease, in one line\n"
              " help [<command>]                print this help, or the command's own\n"
              "\nOptions:\n"
              " -m, --max <n>|ncpus|<p>%        'run', 'join', 'create': seats available\n"
              "                                   (default 1); ncpus: the CPUs we may run on;\n"
              "                                   <p>%: of them; 'create --fleet': the name's N\n"
              " -w, --wait [<secs>]             'run', 'join': wait for a free seat, at most\n"
              "                                   <secs> (a number: the next word if it is one)\n"
              "     --tag <text>                'run', 'join': text shown by 'list'\n"
              "     --fd <fd>                   'join', 'leave': the shell's descriptor\n"
              "     --pid <pid>                 'join': the holder 'list' shows (default: the\n"
              "                                   parent, the shell that runs headcount)\n"
              " -E, --conflict-exit-code <num>  'run', 'join': exit status when no seat is free\n"
              "                                   (default 75)\n"
              " -q, --quiet                     'run', 'join': say nothing when no seat is free\n"
              " -o, --output <list>             'list', 'names', 'history': the columns,\n"
              "                                   comma-separated; '+<list>' adds to the default\n"
              "     --output-all                'list', 'names', 'history': every column\n"
              " -n, --noheadings                'list', 'names', 'history': no header line\n"
              " -r, --raw                       'list', 'names', 'history': columns split by\n"
              "                                   one space, unsafe bytes as \\xhh\n"
              " -J, --json                      'list', 'names', 'history': print JSON\n"
              "     --time-format <format>      'list', 'history': times as iso, relative, raw\n"
              "                                   (default: local time)\n"
              "     --replace                   'run': stop whoever holds our seat, take it\n"
              "     --kill-after <secs>         'run': SIGKILL after SIGTERM (default 5,\n"
              "                                   or 2 for a lost fleet seat)\n"
              "     --restart <when>            'run': restart the command: always, on-failure,\n"
              "                                   on-success; the seat is held throughout\n"
              "     --restart-sec <secs>        'run': delay before a restart (default 0.1)\n"
              "     --on-lost <action>          'run', fleet scope: when the seat is lost, term\n"
              "                                   (default), kill or ignore the command\n"
              "     --below <number>            'wait': until fewer than <number> are running\n"
              "     --zero                      'wait': until nobody is running\n"
              "     --timeout <secs>            'wait', 'send': give up after <secs>\n"
              "     --mode <mode>               'create', 'path': file mode, octal (default\n"
              "                                   0600); group or other write only in the\n"
              "                                   system scope\n"
              "     --capacity <number>         'create', 'path': seats in the region (default\n"
              "                                   64)\n"
              "     --data-size <bytes>         'create', 'path': user data bytes in the region\n"
              "     --owner <user>              'create', fleet scope: the name's owner (root\n"
              "                                   only; default: the caller)\n"
              "     --user                      use the per-user scope (default)\n"
              "     --system                    use the system scope\n"
              "     --dir <dir>                 use the regions in <dir>\n"
              "     --fleet                     count across hosts, through etcd: served by the\n"
              "                                   headcountd of the scope above (default: of\n"
              "                                   the user scope, else of the system scope)\n"
              "\n"
              " -h, --help                      display this help\n"
              " -V, --version                   display version\n", out);
        fputs("\n'list':\n", out);
        list_columns_usage("list");
        fputs("'names':\n", out);
        list_columns_usage("names");
        fputs("'history':\n", out);
        list_columns_usage("history");
        fputs("\nIn 'list', a PID marked '*' is from another PID namespace, and one marked '?'\n"
              "is a claim: the region is writable by others, who may have written the record.\n"
              "\nWith --fleet, 'send' is not available; 'create' defines a name (--max N, --mode\n"
              "0600, 0644 (default) or 0666, --owner); when no headcountd serves the fleet\n"
              "scope, or it cannot reach etcd, the exit status is 69.\n"
              "'status' is only for --fleet: it exits 0 while the agent holds its lease.\n"
              "\n'headcount <command> --help' describes one command.\n"
              "For more details see headcount(1).\n", out);
        return EXIT_SUCCESS;
}


/* ---- Checked numbers: each parser returns 0, or EXIT_USAGE after usage_error() ---- */

static int parse_unsigned(const char *opt, const char *arg, unsigned min, unsigned max,
                          int base, unsigned *ret) {
        unsigned long v;
        char *end;

        errno = 0;
        /* getopt_long() sets optarg for every option that requires an argument */
        /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
        if (arg[0] < '0' || arg[0] > '9')
                return usage_error("invalid %s value '%s'", opt, arg);
        v = strtoul(arg, &end, base);
        if (errno != 0 || *end != '\0' || v < min || v > max)
                return usage_error("invalid %s value '%s'", opt, arg);
        *ret = (unsigned) v;
        return 0;
}

/* Seconds, fractions allowed, as milliseconds rounded up; never negative. */
static int parse_seconds(const char *opt, const char *arg, int *ret) {
        double v;
        char *end;

        errno = 0;
        if (!((arg[0] >= '0' && arg[0] <= '9') || arg[0] == '.'))
                return usage_error("invalid %s value '%s'", opt, arg);
        v = strtod(arg, &end);
        if (errno != 0 || *end != '\0' || !isfinite(v) || v < 0)
                return usage_error("invalid %s value '%s'", opt, arg);
        v *= 1000;
        if (v >= INT_MAX)
                *ret = INT_MAX;                 /* about 24 days: as good as forever */
        else
                *ret = (int) v + ((double) (int) v < v);        /* round up: never wait less */
        return 0;
}

/* Whether ARG reads as seconds: a non-negative decimal number, fractions allowed ("5",
 * "0.5", ".5", "5."). What follows -w or --wait is its value when it is one. */
static bool is_seconds(const char *arg) {
        size_t digits = strspn(arg, "0123456789");

        if (arg[digits] == '.')
                return (digits > 0 || arg[digits + 1] != '\0') &&
                       arg[digits + 1 + strspn(arg + digits + 1, "0123456789")] == '\0';
        return digits > 0 && arg[digits] == '\0';
}

/* The CPUs this process may run on (sched_getaffinity(2), as nproc(1) counts them; a
 * cgroup's CPU quota is not looked at). */
static unsigned cpus_allowed(void) {
        cpu_set_t set;
        long n;

        if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
                return (unsigned) CPU_COUNT(&set);
        n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (unsigned) n : 1;
}

/* --max: a number, "ncpus", or a percentage of the CPUs ("50%": rounded down, at least 1),
 * as sem -j takes them. */
static int parse_max(const char *arg, unsigned *ret) {
        size_t len = strlen(arg);
        unsigned long long n;

        if (streq(arg, "ncpus"))
                n = cpus_allowed();
        else if (len > 1 && arg[len - 1] == '%') {
                unsigned long p;
                char *end;

                errno = 0;
                p = arg[0] >= '0' && arg[0] <= '9' ? strtoul(arg, &end, 10) : 0;
                if (errno != 0 || p == 0 || p > 1000000 || end != arg + len - 1)
                        return usage_error("invalid --max value '%s'", arg);
                n = p * (unsigned long long) cpus_allowed() / 100;
                if (n < 1)
                        n = 1;
        } else
                return parse_unsigned("--max", arg, 1, HC_CAPACITY_MAX, 10, ret);
        *ret = n > HC_CAPACITY_MAX ? HC_CAPACITY_MAX : (unsigned) n;
        return 0;
}

static int parse_size(const char *opt, const char *arg, size_t *ret) {
        unsigned long long v;
        char *end;

        errno = 0;
        /* getopt_long() sets optarg for every option that requires an argument */
        /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
        if (arg[0] < '0' || arg[0] > '9')
                return usage_error("invalid %s value '%s'", opt, arg);
        v = strtoull(arg, &end, 10);
        if (errno != 0 || *end != '\0')
                return usage_error("invalid %s value '%s'", opt, arg);
        if (v > HC_DATA_SIZE_MAX)
                return usage_error("invalid %s value '%s': at most %llu bytes (1 GiB)", opt,
                                   arg, (unsigned long long) HC_DATA_SIZE_MAX);
        *ret = (size_t) v;
        return 0;
}

static int parse_time_format(const char *arg, int *ret) {
        static const char *const formats[] = {
                [TIME_FORMAT_ISO] = "iso",
                [TIME_FORMAT_RELATIVE] = "relative",
                [TIME_FORMAT_RAW] = "raw",
        };

        for (int i = TIME_FORMAT_ISO; i <= TIME_FORMAT_RAW; i++)
                /* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): required_argument */
                if (streq(arg, formats[i])) {
                        *ret = i;
                        return 0;
                }
        return usage_error("invalid --time-format value '%s' (iso, relative or raw)", arg);
}

/* One of WORDS (NULL-terminated), as its index. */
static int parse_word(const char *opt, const char *arg, const char *const words[], int *ret) {
        for (int i = 0; words[i]; i++)
                if (streq(words[i], arg)) {
                        *ret = i;
                        return 0;
                }
        return usage_error("invalid %s value '%s'", opt, arg);
}

/* As RESTART_* and ON_LOST_* number them. */
static const char *const restart_words[] = { "no", "always", "on-failure", "on-success", NULL };
static const char *const on_lost_words[] = { "term", "kill", "ignore", NULL };


/* ---- The command line ---- */

/* Prints command ID's help (help.c) with the options the rows give it, and the scope
 * options, which every command takes. */
static int usage_of(int id) {
        const char *options[N_OPTIONS + 1], *scope[N_OPTIONS + 1];
        size_t n = 0, ns = 0;

        for (int o = 0; o < N_OPTIONS; o++)
                if (rows[o].commands != EVERY && (rows[o].commands & (1u << id)))
                        options[n++] = rows[o].name;
                else if (rows[o].commands == EVERY && o != O_HELP && o != O_VERSION)
                        scope[ns++] = rows[o].name;
        options[n] = scope[ns] = NULL;
        return command_usage(commands[id].name, options, scope) ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* How run's options combine, once they are all parsed. */
static int check_run(struct cli *c, const bool given[]) {
        bool fleet = c->fleet;

        if (!c->cmd || !c->cmd[0])
                return usage_error("no command given after '%s --'", c->name);
        if (!given[O_WAIT])
                c->timeout_ms = 0;      /* without --wait a full region fails at once */
        if (c->replace && given[O_WAIT])
                return usage_error("--replace and --wait exclude each other");
        if (c->replace && fleet)
                return usage_error("--replace does not apply to the fleet scope");
        if (given[O_KILL_AFTER] && !c->replace && !fleet)
                return usage_error("--kill-after needs --replace or the fleet scope");
        if (given[O_RESTART_SEC] && c->restart == RESTART_NO)
                return usage_error("--restart-sec needs --restart");
        if (given[O_ON_LOST] && !fleet)
                return usage_error("--on-lost applies to the fleet scope only");
        if (!given[O_KILL_AFTER])
                c->kill_after_ms = c->replace ? KILL_AFTER_DEFAULT_MS : KILL_AFTER_LOST_DEFAULT_MS;
        return 0;
}

/* The fleet scope's rules, and which headcountd serves it. */
static int check_fleet(struct cli *c, const bool given[], bool scope_given) {
        static char fleet_dir[4096];

        if (c->command_id == CMD_CREATE) {
                if (given[O_CAPACITY] || given[O_DATA_SIZE])
                        return usage_error("'--%s' does not apply to a fleet name: its N is --max",
                                           rows[given[O_CAPACITY] ? O_CAPACITY : O_DATA_SIZE].name);
                if (!given[O_MAX])
                        return usage_error("'--fleet create' needs --max <n>, the name's N");
                if (!given[O_MODE])
                        c->mode = 0644;
                if ((c->mode & 0600) != 0600 || (c->mode & 0111) ||
                    ((c->mode >> 3) & 7) != (c->mode & 7))
                        return usage_error("invalid mode %04o for a fleet name: 0600, 0644 or "
                                           "0666 (the owner's rw, and the same bits for group "
                                           "and others)", c->mode);
        }
        if (c->command_id == CMD_SEND)
                return usage_error("'send' is not available in the fleet scope: the primary "
                                   "may run on another host; 'headcount --fleet list %s' "
                                   "names it, send there", c->name);
        if (c->name && strchr(c->name, '\\'))
                return usage_error("invalid name '%s': names of the fleet scope take no Local "
                                   "or Global prefix", c->name);
        /* The local scope named on the command line serves the fleet; unnamed, the
         * library looks in the user scope, then the system scope. */
        c->fleet_dir = c->dir;
        if (!c->dir && scope_given) {
                if (hc_scope_dir(HC_OPTIONS(.scope = c->scope), fleet_dir, sizeof fleet_dir) < 0)
                        return usage_error("cannot find the directory of the %s scope",
                                           c->scope == HC_SCOPE_SYSTEM ? "system" : "user");
                c->fleet_dir = fleet_dir;
        }
        return 0;
}

/* What the command needs, once every option is read. */
static int check_command(struct cli *c, const bool given[], bool scope_given) {
        int r;

        for (int o = 0; o < N_OPTIONS; o++)
                if (given[o] && !(rows[o].commands & (1u << c->command_id)))
                        return usage_error("option '--%s' does not apply to '%s'", rows[o].name,
                                           c->command);
        if (commands[c->command_id].takes_name) {
                if (!c->name)
                        return usage_error("no name given for '%s'", c->command);
                if (hc_name_valid(c->name) < 0)
                        return usage_error("invalid name '%s': a name is 1 to %d of the "
                                           "characters A-Z a-z 0-9 . _ - and does not start "
                                           "with '.'", c->name, HC_NAME_MAX);
        }
        if (c->command_id == CMD_STATUS && !c->fleet)
                return usage_error("'status' is for the fleet scope: 'headcount --fleet status'");
        if (c->command_id == CMD_CREATE && !c->fleet && (given[O_MAX] || given[O_OWNER]))
                return usage_error("'--%s' applies to 'create' only with --fleet",
                                   rows[given[O_MAX] ? O_MAX : O_OWNER].name);
        if (c->fleet) {
                r = check_fleet(c, given, scope_given);
                if (r != 0)
                        return r;
        }
        switch (c->command_id) {
        case CMD_RUN:
                return check_run(c, given);
        case CMD_JOIN:
        case CMD_LEAVE:
                if (c->fd < 0)
                        return usage_error("'%s' needs --fd <fd>, the shell's descriptor",
                                           c->command);
                if (c->max > 32)
                        return usage_error("--max is at most 32 with 'join --fd' (the seats of "
                                           "one file)");
                if (!given[O_WAIT])
                        c->timeout_ms = 0;
                return 0;
        case CMD_SEND:
                if (!c->cmd || !c->cmd[0])
                        return usage_error("no message given for '%s'", c->name);
                if (!given[O_TIMEOUT])
                        c->timeout_ms = 0;      /* the library's default */
                else if (c->timeout_ms == 0)
                        c->timeout_ms = 1;      /* --timeout 0: as short as can be */
                return 0;
        case CMD_WAIT:
                if (given[O_BELOW] && given[O_ZERO])
                        return usage_error("--below and --zero exclude each other");
                if (c->below == 0)
                        return usage_error("'wait' needs --below <number> or --zero");
                return 0;
        default:
                return 0;
        }
}

/* One option's value into C. Returns 0, a usage error's status, or -1 for --help and
 * --version, which are done then (*RET_STATUS). */
static int take_option(struct cli *c, int o, char *arg, int *ret_status) {
        unsigned u = 0;
        int r = 0;

        switch (o) {
        case O_MAX:
                return parse_max(arg, &c->max);
        case O_TAG:
                /* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): required_argument */
                if (strlen(arg) > HC_TAG_MAX)
                        return usage_error("--tag is longer than %d bytes", HC_TAG_MAX);
                c->tag = arg;
                return 0;
        case O_CONFLICT:
                r = parse_unsigned("--conflict-exit-code", arg, 0, 255, 10, &u);
                c->conflict_exit_code = (int) u;
                return r;
        case O_QUIET:
                c->quiet = true;
                return 0;
        case O_JSON:
                c->json = true;
                return 0;
        case O_OUTPUT:
                c->output = arg;
                return 0;
        case O_OUTPUT_ALL:
                c->output_all = true;
                return 0;
        case O_NOHEADINGS:
                c->noheadings = true;
                return 0;
        case O_RAW:
                c->raw = true;
                return 0;
        case O_TIME_FORMAT:
                return parse_time_format(arg, &c->time_format);
        case O_BELOW:
                return parse_unsigned("--below", arg, 1, INT_MAX, 10, &c->below);
        case O_ZERO:
                c->below = 1;
                return 0;
        case O_TIMEOUT:
                return parse_seconds("--timeout", arg, &c->timeout_ms);
        case O_MODE:
                return parse_unsigned("--mode", arg, 0, 0777, 8, &c->mode);
        case O_CAPACITY:
                return parse_unsigned("--capacity", arg, 1, HC_CAPACITY_MAX, 10, &c->capacity);
        case O_DATA_SIZE:
                return parse_size("--data-size", arg, &c->data_size);
        case O_FD:
                r = parse_unsigned("--fd", arg, 0, INT_MAX, 10, &u);
                c->fd = (int) u;
                return r;
        case O_PID:
                r = parse_unsigned("--pid", arg, 1, INT_MAX, 10, &u);
                c->pid = (pid_t) u;
                return r;
        case O_REPLACE:
                c->replace = true;
                return 0;
        case O_KILL_AFTER:
                return parse_seconds("--kill-after", arg, &c->kill_after_ms);
        case O_RESTART:
                return parse_word("--restart", arg, restart_words, &c->restart);
        case O_RESTART_SEC:
                return parse_seconds("--restart-sec", arg, &c->restart_sec_ms);
        case O_ON_LOST:
                return parse_word("--on-lost", arg, on_lost_words, &c->on_lost);
        case O_OWNER:
                if (arg[0] == '\0')
                        return usage_error("invalid --owner value ''");
                c->owner = arg;
                return 0;
        case O_USER:
        case O_SYSTEM:
                c->scope = o == O_USER ? HC_SCOPE_USER : HC_SCOPE_SYSTEM;
                c->dir = NULL;
                return 0;
        case O_FLEET:
                c->fleet = true;
                return 0;
        case O_DIR:
                /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): required_argument */
                if (arg[0] == '\0')
                        return usage_error("invalid --dir value ''");
                c->dir = arg;
                return 0;
        case O_VERSION:
                printf("headcount %s\n", PACKAGE_VERSION);
                *ret_status = EXIT_SUCCESS;
                return -1;
        default:
                return usage_error("unrecognized option");
        }
}

bool parse_argv(int argc, char *argv[], struct cli *c, int *ret_status) {
        static struct option longopts[N_OPTIONS + 1];
        const char *positional[2] = {};
        unsigned npositional = 0;
        bool given[N_OPTIONS] = {}, scope_given = false, help = false;
        int id;

        for (int o = 0; o < N_OPTIONS; o++)
                longopts[o] = (struct option) { rows[o].name, rows[o].has_arg, NULL, rows[o].val };
        *c = (struct cli) {
                .scope = HC_SCOPE_USER,
                .max = 1,
                .conflict_exit_code = EXIT_FULL,
                .timeout_ms = -1,
                .fd = -1,
                .kill_after_ms = -1,
                .restart_sec_ms = RESTART_SEC_DEFAULT_MS,
        };
        *ret_status = EXIT_USAGE;

        /* Options may come before the command, after it, and after the name; "+" stops
         * getopt at each word that is not an option, which we collect ourselves, so that
         * nothing after 'run NAME --' is ever taken for an option of ours. */
        optind = 1;
        while (optind < argc) {
                int ch, o = -1, r;

                if (streq(argv[optind], "--")) {
                        optind++;
                        if (npositional >= 1 && (streq(positional[0], "run") ||
                                                 streq(positional[0], "send"))) {
                                if (npositional < 2) {
                                        usage_error("no name given before '--'");
                                        return false;
                                }
                                c->cmd = argv + optind;
                                break;
                        }
                        while (optind < argc && npositional < 2)
                                positional[npositional++] = argv[optind++];
                        if (optind < argc) {
                                usage_error("unexpected argument '%s'", argv[optind]);
                                return false;
                        }
                        break;
                }

                ch = getopt_long(argc, argv, SHORT_OPTIONS, longopts, &o);
                if (ch == -1) {
                        const char *word = argv[optind];

                        if (npositional == 2 && streq(positional[0], "send")) {
                                c->cmd = argv + optind;     /* the message, words as given */
                                break;
                        }
                        if (npositional == 2 && streq(positional[0], "run"))
                                r = usage_error("missing '--' before the command '%s'", word);
                        else if (npositional == 2 ||
                                 (npositional == 1 && (streq(positional[0], "names") ||
                                                       streq(positional[0], "status"))))
                                r = usage_error("unexpected argument '%s'", word);
                        else if (npositional == 0 && find_command(word) < 0)
                                r = usage_error("unknown command '%s'", word);
                        else
                                r = 0;
                        if (r != 0)
                                return false;
                        positional[npositional++] = argv[optind++];
                        continue;
                }
                if (ch == ':') {
                        usage_error("option '%s' requires an argument", argv[optind - 1]);
                        return false;
                }
                if (ch == '?') {
                        if (optopt > 0 && optopt <= CHAR_MAX && argv[optind - 1][1] != '-')
                                usage_error("invalid option -- '%c'", optopt);
                        else
                                usage_error("unrecognized option '%s'", argv[optind - 1]);
                        return false;
                }
                if (o < 0)
                        for (int i = 0; i < N_OPTIONS; i++)
                                if (rows[i].val == ch)
                                        o = i;
                if (o < 0) {
                        usage_error("unrecognized option '%s'", argv[optind - 1]);
                        return false;
                }
                if (o == O_HELP) {
                        help = true;            /* after a command: that command's own */
                        break;
                }
                /* "-w 5" and "--wait 5" as flock(1) users type them: the next word is the
                 * timeout when it is a number, and a name otherwise */
                if (o == O_WAIT) {
                        char *arg = optarg;

                        if (!arg && optind < argc && is_seconds(argv[optind]))
                                arg = argv[optind++];
                        c->timeout_ms = -1;
                        if (arg && parse_seconds("--wait", arg, &c->timeout_ms) != 0)
                                return false;
                } else {
                        r = take_option(c, o, optarg, ret_status);
                        if (r < 0)
                                return false;   /* --version: done */
                        if (r > 0)
                                return false;
                }
                if (o == O_USER || o == O_SYSTEM)
                        scope_given = true;
                given[o] = true;
        }

        if (help) {
                *ret_status = npositional >= 1 && (id = find_command(positional[0])) >= 0 &&
                        id != CMD_HELP ? usage_of(id) : usage();
                return false;
        }
        if (npositional == 0) {
                usage_error("no command given");
                return false;
        }
        id = find_command(positional[0]);
        if (id < 0) {
                usage_error("unknown command '%s'", positional[0]);
                return false;
        }
        if (id == CMD_HELP) {
                int topic = npositional < 2 ? -1 : find_command(positional[1]);

                if (npositional < 2)
                        *ret_status = usage();
                else if (topic < 0 || topic == CMD_HELP)
                        usage_error("unknown command '%s'", positional[1]);
                else
                        *ret_status = usage_of(topic);
                return false;
        }
        c->command_id = id;
        c->command = commands[id].name;
        c->name = npositional >= 2 ? positional[1] : NULL;
        if (check_command(c, given, scope_given) != 0)
                return false;
        *ret_status = EXIT_SUCCESS;
        return true;
}
