/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * headcount(1): the command line, its checks, and the commands small enough to need no
 * file of their own (count, wait, create, remove). 'run' lives in run.c, the listings in
 * list.c. Everything goes through the public API in headcount.h.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>                   /* isfinite(), a macro: no libm */
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "escape.h"
#include "stdio-fds.h"

#define streq(a, b) (strcmp((a), (b)) == 0)

enum {
        OPT_TAG = CHAR_MAX + 1,
        OPT_BELOW,
        OPT_ZERO,
        OPT_TIMEOUT,
        OPT_MODE,
        OPT_CAPACITY,
        OPT_DATA_SIZE,
        OPT_FD,
        OPT_PID,
        OPT_USER,
        OPT_SYSTEM,
        OPT_DIR,
        OPT_FLEET,
        OPT_OUTPUT_ALL,
        OPT_TIME_FORMAT,
        OPT_REPLACE,
        OPT_KILL_AFTER,
        OPT_RESTART,
        OPT_RESTART_SEC,
        OPT_ON_LOST,
        OPT_OWNER,
};

/* Which options each command takes, as bits of (1 << option index in the table below). */
static const struct option longopts[] = {
        { "max",                required_argument, NULL, 'm'           },
        { "wait",               optional_argument, NULL, 'w'           },
        { "tag",                required_argument, NULL, OPT_TAG       },
        { "conflict-exit-code", required_argument, NULL, 'E'           },
        { "quiet",              no_argument,       NULL, 'q'           },
        { "json",               no_argument,       NULL, 'J'           },
        { "below",              required_argument, NULL, OPT_BELOW     },
        { "zero",               no_argument,       NULL, OPT_ZERO      },
        { "timeout",            required_argument, NULL, OPT_TIMEOUT   },
        { "mode",               required_argument, NULL, OPT_MODE      },
        { "capacity",           required_argument, NULL, OPT_CAPACITY  },
        { "data-size",          required_argument, NULL, OPT_DATA_SIZE },
        { "output",             required_argument, NULL, 'o'           },
        { "output-all",         no_argument,       NULL, OPT_OUTPUT_ALL },
        { "noheadings",         no_argument,       NULL, 'n'           },
        { "raw",                no_argument,       NULL, 'r'           },
        { "time-format",        required_argument, NULL, OPT_TIME_FORMAT },
        { "fd",                 required_argument, NULL, OPT_FD        },
        { "pid",                required_argument, NULL, OPT_PID       },
        { "replace",            no_argument,       NULL, OPT_REPLACE   },
        { "kill-after",         required_argument, NULL, OPT_KILL_AFTER },
        { "restart",            required_argument, NULL, OPT_RESTART   },
        { "restart-sec",        required_argument, NULL, OPT_RESTART_SEC },
        { "on-lost",            required_argument, NULL, OPT_ON_LOST   },
        { "owner",              required_argument, NULL, OPT_OWNER     },
        { "user",               no_argument,       NULL, OPT_USER      },
        { "system",             no_argument,       NULL, OPT_SYSTEM    },
        { "dir",                required_argument, NULL, OPT_DIR       },
        { "fleet",              no_argument,       NULL, OPT_FLEET     },
        { "help",               no_argument,       NULL, 'h'           },
        { "version",            no_argument,       NULL, 'V'           },
        { NULL,                 0,                 NULL, 0             },
};

enum {
        F_MAX = 1 << 0,
        F_WAIT = 1 << 1,
        F_TAG = 1 << 2,
        F_CONFLICT = 1 << 3,
        F_QUIET = 1 << 4,
        F_JSON = 1 << 5,
        F_BELOW = 1 << 6,
        F_ZERO = 1 << 7,
        F_TIMEOUT = 1 << 8,
        F_MODE = 1 << 9,
        F_CAPACITY = 1 << 10,
        F_DATA_SIZE = 1 << 11,
        F_OUTPUT = 1 << 12,
        F_OUTPUT_ALL = 1 << 13,
        F_NOHEADINGS = 1 << 14,
        F_RAW = 1 << 15,
        F_TIME_FORMAT = 1 << 16,
        F_TABLE = F_JSON | F_OUTPUT | F_OUTPUT_ALL | F_NOHEADINGS | F_RAW,
        F_FD = 1 << 17,
        F_PID = 1 << 18,
        F_REPLACE = 1 << 19,
        F_KILL_AFTER = 1 << 20,
        F_RESTART = 1 << 21,
        F_RESTART_SEC = 1 << 22,
        F_ON_LOST = 1 << 23,
        F_OWNER = 1 << 24,
        N_COMMAND_OPTIONS = 25, /* the options above: the first entries of longopts[] */
};

static const struct command {
        const char *name;
        bool takes_name;
        unsigned options;       /* F_* this command accepts besides the scope options */
        int (*run)(const struct cli *c);
} *command;

static int command_count(const struct cli *c);
static int command_wait(const struct cli *c);
static int command_create(const struct cli *c);
static int command_remove(const struct cli *c);
static int command_status(const struct cli *c);

static const struct command commands[] = {
        { "run",    true,  F_MAX | F_WAIT | F_TAG | F_CONFLICT | F_QUIET | F_REPLACE |
                           F_KILL_AFTER | F_RESTART | F_RESTART_SEC | F_ON_LOST, command_run },
        { "count",  true,  0,                                             command_count  },
        { "list",   true,  F_TABLE | F_TIME_FORMAT,                       command_list   },
        { "names",  false, F_TABLE,                                       command_names  },
        { "wait",   true,  F_BELOW | F_ZERO | F_TIMEOUT,                  command_wait   },
        { "create", true,  F_MODE | F_CAPACITY | F_DATA_SIZE | F_MAX | F_OWNER,
                                                                          command_create },
        { "remove", true,  0,                                             command_remove },
        { "send",   true,  F_TIMEOUT,                                     command_send   },
        { "path",   true,  F_MODE | F_CAPACITY | F_DATA_SIZE,             command_path   },
        { "join",   true,  F_MAX | F_WAIT | F_TAG | F_CONFLICT | F_QUIET | F_FD | F_PID,
                                                                          command_join   },
        { "leave",  true,  F_FD,                                          command_leave  },
        { "status", false, 0,                                             command_status },
        { "help",   false, 0,                                             NULL           },
};

char cli_error_text[512];

_Noreturn void usage_error(const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        message_verror(format, ap);
        va_end(ap);
        message_usage_hint();
        exit(EXIT_USAGE);
}

static _Noreturn void usage(void) {
        FILE *out = stdout;

        fputs("\nUsage:\n"
              " headcount [options] <command> <name> [<argument>...]\n"
              "\nCount and limit running instances of a program.\n"
              "\nCommands:\n"
              " run <name> -- <cmd> [<arg>...]  run <cmd> while holding a seat\n"
              " count <name>                    print the exact number of live instances\n"
              " list <name>                     print one line per live instance\n"
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
              " -m, --max <n>|ncpus|<p>%        'run', 'join': seats available (default 1);\n"
              "                                   ncpus: the CPUs we may run on; <p>%: of them\n"
              " -w, --wait [<secs>]             'run', 'join': wait for a free seat, at most\n"
              "                                   <secs> (a number: the next word if it is one)\n"
              "     --tag <text>                'run', 'join': text shown by 'list'\n"
              "     --fd <fd>                   'join', 'leave': the shell's descriptor\n"
              "     --pid <pid>                 'join': the holder 'list' shows (default: the\n"
              "                                   parent, the shell that runs headcount)\n"
              " -E, --conflict-exit-code <num>  exit status when no seat is free (default 75)\n"
              " -q, --quiet                     'run', 'join': say nothing when no seat is free\n"
              " -o, --output <list>             'list', 'names': the columns to print, comma-\n"
              "                                   separated; '+<list>' adds to the default\n"
              "     --output-all                'list', 'names': print every column\n"
              " -n, --noheadings                'list', 'names': no header line\n"
              " -r, --raw                       'list', 'names': columns split by one space,\n"
              "                                   blanks and other unsafe bytes as \\xhh\n"
              " -J, --json                      'list', 'names': print JSON\n"
              "     --time-format <format>      'list': JOINED as iso, relative or raw\n"
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
              "     --mode <mode>               'create': file mode, octal (default 0600);\n"
              "                                   group or other write only in the system scope\n"
              "     --capacity <number>         'create': seats in the region (default 64)\n"
              "     --data-size <bytes>         'create': user data bytes in the region\n"
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
              " -V, --version                   display version\n"
              "\nColumns of 'list': SEAT PID UID USER COMMAND JOINED AGE SEQ TAG FLAGS\n"
              "  (default: SEAT,PID,USER,COMMAND,JOINED,TAG); in the fleet scope: RANK HOST\n"
              "  PID UID USER COMMAND JOINED AGE FENCE TAG FLAGS (default:\n"
              "  RANK,HOST,PID,UID,JOINED,TAG,FENCE)\n"
              "Columns of 'names': NAME COUNT CAPACITY (default: all)\n"
              "\nIn 'list', a PID marked '*' is from another PID namespace, and one marked '?'\n"
              "is a claim: the region is writable by others, who may have written the record.\n"
              "\nWith --fleet, 'send' is not available; 'create' defines a name (--max N, --mode\n"
              "  0600, 0644 (default) or 0666, --owner); when no headcountd\n"
              "serves the fleet scope, or it cannot reach etcd, the exit status is 69.\n"
              "'status' is only for --fleet: it exits 0 while the agent holds its lease.\n"
              "\n'headcount <command> --help' describes one command.\n"
              "For more details see headcount(1).\n", out);
        exit(EXIT_SUCCESS);
}

/* ---- Checked numbers ---- */

static unsigned parse_unsigned(const char *opt, const char *arg, unsigned min, unsigned max,
                               int base) {
        unsigned long v;
        char *end;

        errno = 0;
        /* getopt_long() sets optarg for every option that requires an argument */
        /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
        if (arg[0] < '0' || arg[0] > '9')
                usage_error("invalid %s value '%s'", opt, arg);
        v = strtoul(arg, &end, base);
        if (errno != 0 || *end != '\0' || v < min || v > max)
                usage_error("invalid %s value '%s'", opt, arg);
        return (unsigned) v;
}

/* Seconds, fractions allowed, as milliseconds rounded up; never negative. */
static int parse_seconds(const char *opt, const char *arg) {
        double v;
        char *end;

        errno = 0;
        if (!((arg[0] >= '0' && arg[0] <= '9') || arg[0] == '.'))
                usage_error("invalid %s value '%s'", opt, arg);
        v = strtod(arg, &end);
        if (errno != 0 || *end != '\0' || !isfinite(v) || v < 0)
                usage_error("invalid %s value '%s'", opt, arg);
        v *= 1000;
        if (v >= INT_MAX)
                return INT_MAX;                 /* about 24 days: as good as forever */
        return (int) v + ((double) (int) v < v);        /* round up: never wait less */
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
static unsigned parse_max(const char *arg) {
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
                        usage_error("invalid --max value '%s'", arg);
                n = p * (unsigned long long) cpus_allowed() / 100;
                if (n < 1)
                        n = 1;
        } else
                return parse_unsigned("--max", arg, 1, HC_CAPACITY_MAX, 10);
        return n > HC_CAPACITY_MAX ? HC_CAPACITY_MAX : (unsigned) n;
}

static size_t parse_size(const char *opt, const char *arg) {
        unsigned long long v;
        char *end;

        errno = 0;
        /* getopt_long() sets optarg for every option that requires an argument */
        /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
        if (arg[0] < '0' || arg[0] > '9')
                usage_error("invalid %s value '%s'", opt, arg);
        v = strtoull(arg, &end, 10);
        if (errno != 0 || *end != '\0')
                usage_error("invalid %s value '%s'", opt, arg);
        if (v > HC_DATA_SIZE_MAX)
                usage_error("invalid %s value '%s': at most %llu bytes (1 GiB)", opt, arg,
                            (unsigned long long) HC_DATA_SIZE_MAX);
        return (size_t) v;
}

static int parse_time_format(const char *arg) {
        static const char *const formats[] = {
                [TIME_FORMAT_ISO] = "iso",
                [TIME_FORMAT_RELATIVE] = "relative",
                [TIME_FORMAT_RAW] = "raw",
        };

        for (int i = TIME_FORMAT_ISO; i <= TIME_FORMAT_RAW; i++)
                /* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): required_argument */
                if (streq(arg, formats[i]))
                        return i;
        usage_error("invalid --time-format value '%s' (iso, relative or raw)", arg);
}

/* One of WORDS (NULL-terminated), as its index. */
static int parse_word(const char *opt, const char *arg, const char *const words[]) {
        for (int i = 0; words[i]; i++)
                if (streq(words[i], arg))
                        return i;
        usage_error("invalid %s value '%s'", opt, arg);
}

/* As RESTART_* and ON_LOST_* number them. */
static const char *const restart_words[] = { "no", "always", "on-failure", "on-success", NULL };
static const char *const on_lost_words[] = { "term", "kill", "ignore", NULL };

/* ---- The command line ---- */

static const struct command *find_command(const char *name) {
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
                if (streq(commands[i].name, name))
                        return &commands[i];
        return NULL;
}

static const char *option_name(unsigned bit) {
        for (unsigned i = 0; longopts[i].name; i++)
                if (bit == 1u << i)
                        return longopts[i].name;
        return "?";
}

static void parse_argv(int argc, char *argv[], struct cli *c) {
        static char fleet_dir[4096];
        const char *positional[2] = {};
        unsigned npositional = 0, given = 0;
        bool scope_given = false;

        *c = (struct cli) {
                .scope = HC_SCOPE_USER,
                .max = 1,
                .conflict_exit_code = EXIT_FULL,
                .timeout_ms = -1,
                .fd = -1,
                .kill_after_ms = -1,
                .restart_sec_ms = RESTART_SEC_DEFAULT_MS,
        };

        /* Options may come before the command, after it, and after the name; "+" stops
         * getopt at each word that is not an option, which we collect ourselves, so that
         * nothing after 'run NAME --' is ever taken for an option of ours. */
        optind = 1;
        while (optind < argc) {
                int ch, index = -1;

                if (streq(argv[optind], "--")) {
                        optind++;
                        if (npositional >= 1 && (streq(positional[0], "run") ||
                                                 streq(positional[0], "send"))) {
                                if (npositional < 2)
                                        usage_error("no name given before '--'");
                                c->cmd = argv + optind;
                                break;
                        }
                        while (optind < argc && npositional < 2)
                                positional[npositional++] = argv[optind++];
                        if (optind < argc)
                                usage_error("unexpected argument '%s'", argv[optind]);
                        break;
                }

                ch = getopt_long(argc, argv, "+:m:w::E:qo:nrJhV", longopts, &index);
                if (ch == -1) {
                        if (npositional == 2 && streq(positional[0], "send")) {
                                c->cmd = argv + optind;     /* the message, words as given */
                                break;
                        }
                        if (npositional == 2 && streq(positional[0], "run"))
                                usage_error("missing '--' before the command '%s'", argv[optind]);
                        if (npositional == 2 ||
                            (npositional == 1 && (streq(positional[0], "names") ||
                                                  streq(positional[0], "status"))))
                                usage_error("unexpected argument '%s'", argv[optind]);
                        if (npositional == 0 && !find_command(argv[optind]))
                                usage_error("unknown command '%s'", argv[optind]);
                        positional[npositional++] = argv[optind++];
                        continue;
                }
                if (index < 0)
                        for (unsigned i = 0; longopts[i].name; i++)
                                if (longopts[i].val == ch)
                                        index = (int) i;
                if (index >= 0 && index < N_COMMAND_OPTIONS)
                        given |= 1u << index;

                switch (ch) {
                case 'm':
                        c->max = parse_max(optarg);
                        break;
                case 'w':
                        /* "-w 5" and "--wait 5" as flock(1) users type them: the next word
                         * is the timeout when it is a number, and a name otherwise */
                        if (!optarg && optind < argc && is_seconds(argv[optind]))
                                optarg = argv[optind++];
                        c->timeout_ms = optarg ? parse_seconds("--wait", optarg) : -1;
                        break;
                case OPT_TAG:
                        /* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): required_argument */
                        if (strlen(optarg) > HC_TAG_MAX)
                                usage_error("--tag is longer than %d bytes", HC_TAG_MAX);
                        c->tag = optarg;
                        break;
                case 'E':
                        c->conflict_exit_code = (int) parse_unsigned("--conflict-exit-code",
                                                                     optarg, 0, 255, 10);
                        break;
                case 'q':
                        c->quiet = true;
                        break;
                case 'J':
                        c->json = true;
                        break;
                case 'o':
                        c->output = optarg;
                        break;
                case OPT_OUTPUT_ALL:
                        c->output_all = true;
                        break;
                case 'n':
                        c->noheadings = true;
                        break;
                case 'r':
                        c->raw = true;
                        break;
                case OPT_TIME_FORMAT:
                        c->time_format = parse_time_format(optarg);
                        break;
                case OPT_BELOW:
                        c->below = parse_unsigned("--below", optarg, 1, INT_MAX, 10);
                        break;
                case OPT_ZERO:
                        c->below = 1;
                        break;
                case OPT_TIMEOUT:
                        c->timeout_ms = parse_seconds("--timeout", optarg);
                        break;
                case OPT_MODE:
                        c->mode = parse_unsigned("--mode", optarg, 0, 0777, 8);
                        break;
                case OPT_CAPACITY:
                        c->capacity = parse_unsigned("--capacity", optarg, 1, HC_CAPACITY_MAX, 10);
                        break;
                case OPT_DATA_SIZE:
                        c->data_size = parse_size("--data-size", optarg);
                        break;
                case OPT_FD:
                        c->fd = (int) parse_unsigned("--fd", optarg, 0, INT_MAX, 10);
                        break;
                case OPT_PID:
                        c->pid = (pid_t) parse_unsigned("--pid", optarg, 1, INT_MAX, 10);
                        break;
                case OPT_REPLACE:
                        c->replace = true;
                        break;
                case OPT_KILL_AFTER:
                        c->kill_after_ms = parse_seconds("--kill-after", optarg);
                        break;
                case OPT_RESTART:
                        c->restart = parse_word("--restart", optarg, restart_words);
                        break;
                case OPT_RESTART_SEC:
                        c->restart_sec_ms = parse_seconds("--restart-sec", optarg);
                        break;
                case OPT_ON_LOST:
                        c->on_lost = parse_word("--on-lost", optarg, on_lost_words);
                        break;
                case OPT_OWNER:
                        if (optarg[0] == '\0')
                                usage_error("invalid --owner value ''");
                        c->owner = optarg;
                        break;
                case OPT_USER:
                        c->scope = HC_SCOPE_USER;
                        c->dir = NULL;
                        scope_given = true;
                        break;
                case OPT_SYSTEM:
                        c->scope = HC_SCOPE_SYSTEM;
                        c->dir = NULL;
                        scope_given = true;
                        break;
                case OPT_FLEET:
                        c->fleet = true;
                        break;
                case OPT_DIR:
                        /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): required_argument */
                        if (optarg[0] == '\0')
                                usage_error("invalid --dir value ''");
                        c->dir = optarg;
                        break;
                case 'h':
                        /* after a command: that command's own usage */
                        if (npositional >= 1 && command_usage(positional[0]))
                                exit(EXIT_SUCCESS);
                        usage();
                case 'V':
                        printf("headcount %s\n", PACKAGE_VERSION);
                        exit(EXIT_SUCCESS);
                case ':':
                        usage_error("option '%s' requires an argument", argv[optind - 1]);
                default:
                        if (optopt > 0 && optopt <= CHAR_MAX && argv[optind - 1][1] != '-')
                                usage_error("invalid option -- '%c'", optopt);
                        usage_error("unrecognized option '%s'", argv[optind - 1]);
                }
        }

        if (npositional == 0)
                usage_error("no command given");
        command = find_command(positional[0]);
        if (!command)
                usage_error("unknown command '%s'", positional[0]);
        c->command = command->name;
        if (streq(command->name, "help")) {
                if (npositional < 2)
                        usage();
                if (!command_usage(positional[1]))
                        usage_error("unknown command '%s'", positional[1]);
                exit(EXIT_SUCCESS);
        }

        for (unsigned bit = 1; bit < 1u << N_COMMAND_OPTIONS; bit <<= 1)
                if ((given & bit) && !(command->options & bit))
                        usage_error("option '--%s' does not apply to '%s'", option_name(bit),
                                    command->name);

        if (command->takes_name) {
                if (npositional < 2)
                        usage_error("no name given for '%s'", command->name);
                c->name = positional[1];
                if (hc_name_valid(c->name) < 0)
                        usage_error("invalid name '%s': a name is 1 to %d of the characters "
                                    "A-Z a-z 0-9 . _ - and does not start with '.'", c->name,
                                    HC_NAME_MAX);
        }
        if (streq(command->name, "status") && !c->fleet)
                usage_error("'status' is for the fleet scope: 'headcount --fleet status'");
        if (streq(command->name, "create") && !c->fleet && (given & (F_MAX | F_OWNER)))
                usage_error("'--%s' applies to 'create' only with --fleet",
                            option_name(given & F_MAX ? F_MAX : F_OWNER));
        if (c->fleet && streq(command->name, "create")) {
                if (given & (F_CAPACITY | F_DATA_SIZE))
                        usage_error("'--%s' does not apply to a fleet name: its N is --max",
                                    option_name(given & F_CAPACITY ? F_CAPACITY : F_DATA_SIZE));
                if (!(given & F_MAX))
                        usage_error("'--fleet create' needs --max <n>, the name's N");
                if (!(given & F_MODE))
                        c->mode = 0644;
                if ((c->mode & 0600) != 0600 || (c->mode & 0111) ||
                    ((c->mode >> 3) & 7) != (c->mode & 7))
                        usage_error("invalid mode %04o for a fleet name: 0600, 0644 or 0666 "
                                    "(the owner's rw, and the same bits for group and others)",
                                    c->mode);
        }
        if (c->fleet) {
                if (streq(command->name, "send"))
                        usage_error("'send' is not available in the fleet scope: the primary "
                                    "may run on another host; 'headcount --fleet list %s' "
                                    "names it, send there", c->name);
                if (c->name && strchr(c->name, '\\'))
                        usage_error("invalid name '%s': names of the fleet scope take no "
                                    "Local or Global prefix", c->name);
                /* The local scope named on the command line serves the fleet; unnamed,
                 * the library looks in the user scope, then the system scope. */
                c->fleet_dir = c->dir;
                if (!c->dir && scope_given) {
                        if (hc_scope_dir(HC_OPTIONS(.scope = c->scope), fleet_dir,
                                         sizeof fleet_dir) < 0)
                                usage_error("cannot find the directory of the %s scope",
                                            c->scope == HC_SCOPE_SYSTEM ? "system" : "user");
                        c->fleet_dir = fleet_dir;
                }
        }
        if (streq(command->name, "run")) {
                if (!c->cmd || !c->cmd[0])
                        usage_error("no command given after '%s --'", c->name);
                if (!(given & F_WAIT))
                        c->timeout_ms = 0;      /* without --wait a full region fails at once */
                run_check_options(c, given & F_WAIT, given & F_KILL_AFTER, given & F_RESTART_SEC,
                                  given & F_ON_LOST);
        }
        if (streq(command->name, "join") || streq(command->name, "leave")) {
                if (c->fd < 0)
                        usage_error("'%s' needs --fd <fd>, the shell's descriptor", command->name);
                if (c->max > 32)
                        usage_error("--max is at most 32 with 'join --fd' (the seats of one file)");
                if (!(given & F_WAIT))
                        c->timeout_ms = 0;
        }
        if (streq(command->name, "send")) {
                if (!c->cmd || !c->cmd[0])
                        usage_error("no message given for '%s'", c->name);
                if (!(given & F_TIMEOUT))
                        c->timeout_ms = 0;      /* the library's default */
                else if (c->timeout_ms == 0)
                        c->timeout_ms = 1;      /* --timeout 0: as short as can be */
        }
        if (streq(command->name, "wait")) {
                if ((given & F_BELOW) && (given & F_ZERO))
                        usage_error("--below and --zero exclude each other");
                if (c->below == 0)
                        usage_error("'wait' needs --below <number> or --zero");
        }
}

/* ---- The small commands ---- */

static int command_count(const struct cli *c) {
        int n;

        n = hc_count(c->name, CLI_OPTIONS(c));
        if (n == -ENOENT)
                n = 0;                  /* a region nobody created yet has nobody in it */
        if (n < 0)
                return region_failure(c, "count", n);
        printf("%d\n", n);
        return EXIT_SUCCESS;
}

static int command_wait(const struct cli *c) {
        int r;

        r = hc_wait(c->name, CLI_OPTIONS(c), c->below, c->timeout_ms);
        if (r == -ETIMEDOUT)
                return EXIT_TIMEDOUT;
        if (r < 0)
                return region_failure(c, "wait for", r);
        return EXIT_SUCCESS;
}

/* The fleet agent's health: its line, and 0 while it holds its lease (renewed on time or
 * late), 69 when it holds none or no agent serves the scope. */
static int command_status(const struct cli *c) {
        char text[512], safe[ESCAPE_TEXT_SIZE(511)];
        int r;

        r = hc_fleet_status(CLI_OPTIONS(c), text, sizeof text);
        if (r < 0) {
                r = region_failure(c, "ask the agent for its status", r);
                return r == EXIT_FAILURE ? EXIT_NO_FLEET : r;
        }
        printf("%s\n", escape_text(text, safe, sizeof safe));
        return r == HC_FLEET_HELD || r == HC_FLEET_LATE ? EXIT_SUCCESS : EXIT_NO_FLEET;
}

/* Whether regions of C's scope may be writable by others: only in the system scope, where
 * the directory is root's and sticky (the library decides the same way). */
static bool system_scope(const struct cli *c) {
        if (c->dir)
                return false;
        if (strncmp(c->name, "Global\\", 7) == 0)
                return true;
        return c->scope == HC_SCOPE_SYSTEM && strncmp(c->name, "Local\\", 6) != 0;
}

static int command_create(const struct cli *c) {
        int r;

        if (c->fleet) {
                r = hc_fleet_create(c->name, CLI_OPTIONS(c, .max = c->max, .mode = c->mode),
                                    c->owner);
                return r < 0 ? region_failure(c, "define", r) : EXIT_SUCCESS;
        }

        /* Outside the system scope nobody would trust a region that others may write, so
         * creating one is an error, which the library reports as -EINVAL: say why in
         * words. Root's regions are trusted whatever their mode. */
        if ((c->mode & 0022) && geteuid() != 0 && !system_scope(c)) {
                message_error("cannot create region '%s': mode %04o (writable by group or "
                              "others) is only allowed in the system scope", c->name, c->mode);
                return EXIT_FAILURE;
        }
        r = hc_create(c->name, CLI_OPTIONS(c, .mode = c->mode, .capacity = c->capacity,
                                           .data_size = c->data_size));
        if (r < 0) {
                region_error(c, "create", r);
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}

static int command_remove(const struct cli *c) {
        int r;

        r = hc_remove(c->name, CLI_OPTIONS(c));
        if (r < 0)
                return region_failure(c, "remove", r);
        return EXIT_SUCCESS;
}

/* Says why a call on region C->name failed, in one line, and returns the exit status: in
 * the fleet scope from the agent's own words (69 when no agent serves the scope or it
 * cannot reach etcd), elsewhere as region_error() explains local failures. */
int region_failure(const struct cli *c, const char *verb, int r) {
        if (!c->fleet) {
                region_error(c, verb, r);
                return EXIT_FAILURE;
        }
        if (r == -EHOSTDOWN) {
                message_error("%s; start one with 'headcountd --etcd URL' (see headcountd(8))",
                              cli_error_text[0] ? cli_error_text
                                                : "no headcountd serves the fleet scope");
                return EXIT_NO_FLEET;
        }
        if (c->name)
                message_error("cannot %s region '%s' in the fleet scope: %s", verb, c->name,
                              cli_error_text[0] ? cli_error_text : strerror(-r));
        else
                message_error("cannot %s in the fleet scope: %s", verb,
                              cli_error_text[0] ? cli_error_text : strerror(-r));
        return r == -EHOSTUNREACH ? EXIT_NO_FLEET : EXIT_FAILURE;
}

/* A directory the user named (--dir, $HEADCOUNT_DIR) must exist, for every command: a
 * mistyped one is an error, not a scope with nobody in it. Only the default directories
 * are made when needed (the user scope's by 'run', 'join', 'create' and 'path'; the system
 * scope's by root). */
static int check_named_dir(const struct cli *c) {
        const char *env = getenv("HEADCOUNT_DIR");
        int scope = c->scope;
        char dir[4096];
        struct stat st;

        if (c->name && strncmp(c->name, "Global\\", 7) == 0)
                scope = HC_SCOPE_SYSTEM;        /* a prefix chooses the scope, as in the library */
        else if (c->name && strncmp(c->name, "Local\\", 6) == 0)
                scope = HC_SCOPE_USER;
        if (!c->dir && !(scope == HC_SCOPE_USER && env && env[0]))
                return 0;
        if (hc_scope_dir(HC_OPTIONS(.scope = scope, .dir = c->dir), dir, sizeof dir) < 0 ||
            stat(dir, &st) == 0 || errno != ENOENT)
                return 0;               /* anything else: the library's checks say it */
        message_error("directory '%s' (from %s) does not exist: create it, or name another",
                      dir, c->dir ? "--dir" : "$HEADCOUNT_DIR");
        return -ENOENT;
}

/* ---- Output errors (util-linux close_stdout) ---- */

static int close_stream(FILE *stream) {
        bool pending = __fpending(stream) != 0, failed = ferror(stream) != 0;
        bool close_failed = fclose(stream) != 0;

        if (failed || (close_failed && (pending || errno != EBADF))) {
                if (!close_failed)
                        errno = 0;
                return EOF;
        }
        return 0;
}

static void close_stdout(void) {
        if (close_stream(stdout) != 0 && errno != EPIPE) {
                if (errno)
                        message_error("write error: %s", strerror(errno));
                else
                        message_error("write error");
                _exit(EXIT_FAILURE);
        }
        if (close_stream(stderr) != 0)
                _exit(EXIT_FAILURE);
}

int main(int argc, char *argv[]) {
        struct cli c;
        int r;

        /* Before anything is opened: no region or lock file may land on 0, 1 or 2. */
        message_program = "headcount";
        r = stdio_fds_ensure();
        if (r < 0) {
                message_error("cannot open /dev/null: %s", strerror(-r));
                return EXIT_FAILURE;
        }
        atexit(close_stdout);
        parse_argv(argc, argv, &c);
        if (check_named_dir(&c) < 0)
                return EXIT_FAILURE;
        return command->run(&c);
}
