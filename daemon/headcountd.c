/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * headcountd: the command line, the single-instance rule, and the life cycle that
 * systemd sees (Type=notify: READY=1, STATUS=, WATCHDOG=1, STOPPING=1). It does not
 * fork: a service manager runs it in the foreground.
 *
 * With --etcd, READY=1 waits for the first etcd lease, so that units ordered after us
 * find the fleet scope working; after --etcd-timeout without one it goes out anyway,
 * STATUS= saying why (local regions work regardless, and the agent keeps asking).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "escape.h"
#if HAVE_FLEET
#include "fleet.h"
#include "fleet-bridge.h"
#endif
#include "headcountd.h"
#include "instance.h"
#include "log.h"
#include "metrics.h"
#include "message.h"
#include "notify.h"
#include "own-dir.h"
#include "stdio-fds.h"
#include "strprintf.h"
#include "time-util.h"

#define EXIT_USAGE 64

static int arg_scope = HC_SCOPE_USER;
static const char *arg_dir;
static int arg_bus = -1;
static int arg_log_target = LOG_TARGET_AUTO;
static bool arg_verbose;
static const char *arg_etcd;
static const char *arg_etcd_prefix = "/headcount/";
static char arg_host[HC_HOST_MAX + 1];
static unsigned arg_ttl = 10;
static unsigned arg_etcd_timeout = 3;
static const char *arg_etcd_cacert;
static const char *arg_etcd_cert;
static const char *arg_etcd_key;
static const char *arg_etcd_user;
static const char *arg_etcd_password_file;
#if HAVE_FLEET
/* The etcd user's password: read from a file (never given on the command line). */
#define ETCD_PASSWORD_MAX 1024
static char arg_etcd_password[ETCD_PASSWORD_MAX + 1];
#endif

/* Caps on each uid but root at the fleet agent (0: the defaults, headcountd(8)). */
static unsigned arg_fleet_user_connections;
static unsigned arg_fleet_user_names;
static const char *arg_metrics_file;

static void help(void) {
        printf("Usage:\n"
               " %1$s [options]\n"
               "\n"
               "Watch the regions of one headcount scope: keep their counts for D-Bus\n"
               "clients, log joins, leaves and crashes, and reap dead holders at once.\n"
               "\n"
               "Options:\n"
               "     --user                 watch the per-user scope (default)\n"
               "     --system               watch the system scope (/run/headcount)\n"
               " -d, --dir <dir>            watch the regions in <dir>\n"
               "     --bus <bus>            serve D-Bus on 'user', 'system' or 'none'\n"
               "                            (default: the system bus for --system, else user)\n"
               "     --log-target <target>  'auto' (default), 'journal' or 'stderr'\n"
               "     --metrics-file <file>  keep <file> up to date in Prometheus' text format\n"
               "                            (node_exporter's textfile collector)\n"
               " -v, --verbose              log debug messages too\n"
               "\n"
               "Fleet agent (the fleet scope, across hosts):\n"
               "     --etcd <urls>          serve the fleet scope through etcd at <urls>,\n"
               "                            comma-separated (default: $HEADCOUNT_ETCD)\n"
               "     --etcd-prefix <prefix> the keys' prefix (default /headcount/)\n"
               "     --host <name>          this host's name in the fleet (default: hostname)\n"
               "     --ttl <secs>           the etcd lease's time to live (default 10, min 2)\n"
               "     --etcd-timeout <secs>  how long one etcd request may take (default 3)\n"
               "     --etcd-cacert <file>   the CA certificates that etcd's certificate (https)\n"
               "                            must chain to (default: the system's)\n"
               "     --etcd-cert <file>     a client certificate (PEM) to show etcd; it must have\n"
               "                            no CommonName (etcd's gateway refuses one with a CN)\n"
               "     --etcd-key <file>      its private key (default: in the --etcd-cert file)\n"
               "     --etcd-user <name>     authenticate to etcd as this user; the password is\n"
               "                            read from --etcd-password-file or the credential\n"
               "                            'etcd-password' ($CREDENTIALS_DIRECTORY)\n"
               "     --etcd-password-file <file>  the file that holds the password\n"
               "     --fleet-user-connections <n>\n"
               "                            connections a uid other than root may hold (default:\n"
               "                            a quarter of the descriptor limit, at most 1024)\n"
               "     --fleet-user-names <n> fleet names a user other than root may own through\n"
               "                            'headcount --fleet create' (default 64)\n"
               "\n"
               " -h, --help                 display this help\n"
               " -V, --version              display version\n"
               "\n"
               "For more details see headcountd(8).\n",
               program_invocation_short_name);
}

/* One line naming the problem (and quoting ARG, escaped), then the --help hint. */
static int usage_error(const char *what, const char *arg) {
        if (arg)
                message_error("%s '%s'", what, arg);
        else
                message_error("%s", what);
        message_usage_hint();
        return -EINVAL;
}

#define HC_HOST_MAX_TEXT "64"
_Static_assert(HC_HOST_MAX == 64, "HC_HOST_MAX_TEXT");

/* A fleet host name: 1 to HC_HOST_MAX bytes of [A-Za-z0-9._-]. */
static bool host_valid(const char *s) {
        size_t n = strlen(s);

        return n > 0 && n <= HC_HOST_MAX &&
                strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* An etcd key prefix: starts and ends with '/', no NUL, at most 256 bytes. */
static bool prefix_valid(const char *s) {
        size_t n = strlen(s);

        return n >= 1 && n <= 256 && s[0] == '/' && s[n - 1] == '/';
}

static int parse_cap(const char *s, unsigned *ret) {
        unsigned long v;
        char *end;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v < 1 || v > 1000000)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

static int parse_seconds(const char *s, unsigned min, unsigned *ret) {
        unsigned long v;
        char *end;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v < min || v > 86400)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

/* An etcd user name, as it appears in messages: printable ASCII, bounded. */
static bool etcd_user_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > 128)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < 0x20 || s[i] > 0x7e)
                        return false;
        return true;
}

#if HAVE_FLEET
/* 0 when PATH can be opened for reading, else a usage error naming OPTION. */
static int file_check(const char *option, const char *path) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

        if (fd < 0) {
                message_error("%s: cannot read '%s': %s", option, path, strerror(errno));
                message_usage_hint();
                return -EINVAL;
        }
        (void) close(fd);
        return 0;
}

/* Reads the password from PATH into arg_etcd_password: one line (a final newline is not
 * part of it), not empty, no NUL, at most ETCD_PASSWORD_MAX bytes. The messages name the
 * file, never what it holds. */
static int password_read(const char *what, const char *path) {
        char buf[ETCD_PASSWORD_MAX + 2];
        ssize_t n, len = 0;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                message_error("%s: cannot read '%s': %s", what, path, strerror(errno));
                return -EINVAL;
        }
        while ((size_t) len < sizeof buf &&
               (n = read(fd, buf + len, sizeof buf - (size_t) len)) != 0) {
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        message_error("%s: cannot read '%s': %s", what, path, strerror(errno));
                        (void) close(fd);
                        explicit_bzero(buf, sizeof buf);
                        return -EINVAL;
                }
                len += n;
        }
        (void) close(fd);
        if (len > 0 && buf[len - 1] == '\n')
                len--;
        if (len > 0 && buf[len - 1] == '\r')
                len--;
        if (len == 0 || (size_t) len > ETCD_PASSWORD_MAX || memchr(buf, '\0', (size_t) len)) {
                message_error("%s: '%s' %s", what, path, len == 0 ? "is empty" :
                              (size_t) len > ETCD_PASSWORD_MAX ?
                              "is too long for a password (at most 1024 bytes)" :
                              "holds a NUL byte");
                explicit_bzero(buf, sizeof buf);
                return -EINVAL;
        }
        memcpy(arg_etcd_password, buf, (size_t) len);
        arg_etcd_password[len] = '\0';
        explicit_bzero(buf, sizeof buf);
        return 0;
}

/* The TLS files exist and can be read; a user has a password, from its file or from the
 * service's credential "etcd-password" (LoadCredential=). */
static int etcd_options_check(void) {
        const char *creds = getenv("CREDENTIALS_DIRECTORY");
        _cleanup_free_ char *cred = NULL;

        if (!arg_etcd && (arg_etcd_cacert || arg_etcd_cert || arg_etcd_key || arg_etcd_user ||
                          arg_etcd_password_file))
                return usage_error("--etcd-cacert, --etcd-cert, --etcd-key, --etcd-user and "
                                   "--etcd-password-file need --etcd", NULL);
        if (!arg_etcd)
                return 0;
        if ((arg_etcd_cacert || arg_etcd_cert) && !strstr(arg_etcd, "https://"))
                return usage_error("--etcd-cacert and --etcd-cert need https:// etcd endpoints",
                                   NULL);
        if (arg_etcd_key && !arg_etcd_cert)
                return usage_error("--etcd-key needs --etcd-cert", NULL);
        if (arg_etcd_password_file && !arg_etcd_user)
                return usage_error("--etcd-password-file needs --etcd-user", NULL);
        if ((arg_etcd_cacert && file_check("--etcd-cacert", arg_etcd_cacert) < 0) ||
            (arg_etcd_cert && file_check("--etcd-cert", arg_etcd_cert) < 0) ||
            (arg_etcd_key && file_check("--etcd-key", arg_etcd_key) < 0))
                return -EINVAL;
        if (!arg_etcd_user)
                return 0;
        if (arg_etcd_password_file) {
                if (password_read("--etcd-password-file", arg_etcd_password_file) < 0) {
                        message_usage_hint();
                        return -EINVAL;
                }
                return 0;
        }
        if (!creds || creds[0] != '/')
                return usage_error("--etcd-user needs a password: --etcd-password-file FILE, or "
                                   "the service credential 'etcd-password' "
                                   "(LoadCredential=etcd-password:FILE)", NULL);
        if (asprintf(&cred, "%s/etcd-password", creds) < 0) {
                cred = NULL;
                message_error("out of memory");
                return -ENOMEM;
        }
        if (password_read("the credential etcd-password", cred) < 0) {
                message_usage_hint();
                return -EINVAL;
        }
        return 0;
}
#endif

/* Returns 1 to go on, 0 to exit successfully (--help), or -EINVAL. */
static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_USER = CHAR_MAX + 1,
                ARG_SYSTEM,
                ARG_BUS,
                ARG_LOG_TARGET,
                ARG_ETCD,
                ARG_ETCD_PREFIX,
                ARG_HOST,
                ARG_TTL,
                ARG_ETCD_TIMEOUT,
                ARG_ETCD_CACERT,
                ARG_ETCD_CERT,
                ARG_ETCD_KEY,
                ARG_ETCD_USER,
                ARG_ETCD_PASSWORD_FILE,
                ARG_FLEET_USER_CONNECTIONS,
                ARG_FLEET_USER_NAMES,
                ARG_METRICS_FILE,
        };
        static const struct option options[] = {
                { "user",       no_argument,       NULL, ARG_USER       },
                { "system",     no_argument,       NULL, ARG_SYSTEM     },
                { "dir",        required_argument, NULL, 'd'            },
                { "bus",        required_argument, NULL, ARG_BUS        },
                { "log-target", required_argument, NULL, ARG_LOG_TARGET },
                { "verbose",    no_argument,       NULL, 'v'            },
                { "etcd",         required_argument, NULL, ARG_ETCD         },
                { "etcd-prefix",  required_argument, NULL, ARG_ETCD_PREFIX  },
                { "host",         required_argument, NULL, ARG_HOST         },
                { "ttl",          required_argument, NULL, ARG_TTL          },
                { "etcd-timeout", required_argument, NULL, ARG_ETCD_TIMEOUT },
                { "etcd-cacert",  required_argument, NULL, ARG_ETCD_CACERT  },
                { "etcd-cert",    required_argument, NULL, ARG_ETCD_CERT    },
                { "etcd-key",     required_argument, NULL, ARG_ETCD_KEY     },
                { "etcd-user",    required_argument, NULL, ARG_ETCD_USER    },
                { "etcd-password-file", required_argument, NULL, ARG_ETCD_PASSWORD_FILE },
                { "fleet-user-connections", required_argument, NULL, ARG_FLEET_USER_CONNECTIONS },
                { "fleet-user-names",       required_argument, NULL, ARG_FLEET_USER_NAMES       },
                { "metrics-file", required_argument, NULL, ARG_METRICS_FILE },
                { "help",       no_argument,       NULL, 'h'            },
                { "version",    no_argument,       NULL, 'V'            },
                {}
        };
        const char *host = NULL;
        int c;

        while ((c = getopt_long(argc, argv, ":d:vhV", options, NULL)) >= 0)
                switch (c) {
                case ARG_USER:
                        arg_scope = HC_SCOPE_USER;
                        arg_dir = NULL;
                        break;
                case ARG_SYSTEM:
                        arg_scope = HC_SCOPE_SYSTEM;
                        arg_dir = NULL;
                        break;
                case 'd':
                        if (optarg[0] == '\0')
                                return usage_error("empty directory name", NULL);
                        arg_dir = optarg;
                        break;
                case ARG_BUS:
                        if (strcmp(optarg, "user") == 0 || strcmp(optarg, "session") == 0)
                                arg_bus = HCD_BUS_USER;
                        else if (strcmp(optarg, "system") == 0)
                                arg_bus = HCD_BUS_SYSTEM;
                        else if (strcmp(optarg, "none") == 0)
                                arg_bus = HCD_BUS_NONE;
                        else
                                return usage_error("unknown bus", optarg);
                        break;
                case ARG_LOG_TARGET:
                        arg_log_target = log_target_from_string(optarg);
                        if (arg_log_target < 0)
                                return usage_error("unknown log target", optarg);
                        break;
                case 'v':
                        arg_verbose = true;
                        break;
                case ARG_ETCD:
                        if (optarg[0] == '\0')
                                return usage_error("empty etcd endpoint list", NULL);
                        arg_etcd = optarg;
                        break;
                case ARG_ETCD_PREFIX:
                        if (!prefix_valid(optarg))
                                return usage_error("invalid etcd prefix (it starts and ends with "
                                                   "'/')", optarg);
                        arg_etcd_prefix = optarg;
                        break;
                case ARG_HOST:
                        if (!host_valid(optarg))
                                return usage_error("invalid host name (1 to " HC_HOST_MAX_TEXT
                                                   " bytes of [A-Za-z0-9._-])", optarg);
                        host = optarg;
                        break;
                case ARG_TTL:
                        if (parse_seconds(optarg, 2, &arg_ttl) < 0)
                                return usage_error("invalid TTL (whole seconds, at least 2)",
                                                   optarg);
                        break;
                case ARG_ETCD_TIMEOUT:
                        if (parse_seconds(optarg, 1, &arg_etcd_timeout) < 0)
                                return usage_error("invalid etcd timeout (whole seconds, at "
                                                   "least 1)", optarg);
                        break;
                case ARG_ETCD_CACERT:
                case ARG_ETCD_CERT:
                case ARG_ETCD_KEY:
                case ARG_ETCD_PASSWORD_FILE:
                        if (optarg[0] == '\0')
                                return usage_error("empty file name given to an --etcd-* "
                                                   "option", NULL);
                        *(c == ARG_ETCD_CACERT ? &arg_etcd_cacert : c == ARG_ETCD_CERT ?
                          &arg_etcd_cert : c == ARG_ETCD_KEY ? &arg_etcd_key :
                          &arg_etcd_password_file) = optarg;
                        break;
                case ARG_ETCD_USER:
                        if (!etcd_user_valid(optarg))
                                return usage_error("invalid etcd user name (1 to 128 printable "
                                                   "bytes)", optarg);
                        arg_etcd_user = optarg;
                        break;
                case ARG_FLEET_USER_CONNECTIONS:
                        if (parse_cap(optarg, &arg_fleet_user_connections) < 0)
                                return usage_error("invalid number of connections (1 to "
                                                   "1000000)", optarg);
                        break;
                case ARG_FLEET_USER_NAMES:
                        if (parse_cap(optarg, &arg_fleet_user_names) < 0)
                                return usage_error("invalid number of names (1 to 1000000)",
                                                   optarg);
                        break;
                case ARG_METRICS_FILE:
                        if (!optarg[0] || optarg[strlen(optarg) - 1] == '/')
                                return usage_error("invalid --metrics-file value", optarg);
                        arg_metrics_file = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("%s %s\n", program_invocation_short_name, PACKAGE_VERSION);
                        return 0;
                case ':':
                        return usage_error("missing argument to option", argv[optind - 1]);
                default:
                        return usage_error("unrecognized option", argv[optind - 1]);
                }
        if (optind < argc)
                return usage_error("unexpected argument", argv[optind]);
#if !HAVE_FLEET
        if (arg_etcd)
                return usage_error("--etcd: built without fleet support", NULL);
#endif
        if (!arg_etcd) {
                const char *e = getenv("HEADCOUNT_ETCD");

                arg_etcd = e && e[0] ? e : NULL;
#if !HAVE_FLEET
                if (arg_etcd)
                        return usage_error("$HEADCOUNT_ETCD is set, but headcountd was built "
                                           "without fleet support", NULL);
#endif
        }
#if HAVE_FLEET
        if (arg_etcd) {
                int k = etcd_endpoints_check(arg_etcd);

                /* not echoed: it would print the password */
                if (k == -EPERM)
                        return usage_error("an etcd endpoint carries a user name or password "
                                           "('user:password@'), which would show on the command "
                                           "line and in the logs; give --etcd-user and "
                                           "--etcd-password-file instead", NULL);
                if (k < 0)
                        return usage_error("invalid etcd endpoint list", arg_etcd);
        }
        if (etcd_options_check() < 0)
                return -EINVAL;
#else
        if (arg_etcd_cacert || arg_etcd_cert || arg_etcd_key || arg_etcd_user ||
            arg_etcd_password_file)
                return usage_error("--etcd-*: built without fleet support", NULL);
#endif
        if (host)
                (void) snprintf(arg_host, sizeof arg_host, "%s", host);
        else if (arg_etcd) {
                char name[HOST_NAME_MAX + 1] = "";

                /* the node name, up to its first dot: what 'hostname' prints */
                if (gethostname(name, sizeof name - 1) < 0)
                        name[0] = '\0';
                name[strcspn(name, ".")] = '\0';
                if (!host_valid(name))
                        return usage_error("this host's name cannot be a fleet host name; "
                                           "give one with --host", name);
                (void) snprintf(arg_host, sizeof arg_host, "%s", name);
        }
        if (arg_bus < 0)
                arg_bus = arg_scope == HC_SCOPE_SYSTEM && !arg_dir ? HCD_BUS_SYSTEM : HCD_BUS_USER;
        return 1;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        (void) notify_send("STOPPING=1");
        log_info("Received %s; stopping", strsignal((int) si->ssi_signo));
#if HAVE_FLEET
        /* the fleet seats held here leave the fleet first: the fleet thread revokes the
         * lease (a second at most), and the loop exits when the thread has ended */
        if (m->fleet) {
                fleet_bridge_stop(m->fleet, EXIT_SUCCESS);
                return 0;
        }
#endif
        return sd_event_exit(m->event, EXIT_SUCCESS);
}

static void send_ready(Manager *m);

static int on_ready_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        send_ready(userdata);
        return 0;
}

/* READY=1 (with the STATUS= of now), once. A full queue at the service manager never
 * blocks the loop (notify.c): we try again in 100 ms. */
static void send_ready(Manager *m) {
        _cleanup_free_ char *text = NULL;
        int k;

        if (m->ready_sent)
                return;
        m->ready_timer = sd_event_source_disable_unref(m->ready_timer);
        text = strprintf("READY=1\nSTATUS=%s", m->status ? m->status : "");
        k = text ? notify_send(text) : -ENOMEM;
        if (k == -EAGAIN &&
            sd_event_add_time_relative(m->event, &m->ready_timer, CLOCK_MONOTONIC, 100 * 1000, 0,
                                       on_ready_retry, m) >= 0)
                return;
        if (k < 0)
                log_warning_errno(k, "Cannot tell the service manager that we are ready: %m");
        m->ready_sent = true;
}

#define STATUS_NAMES_MAX 10
#define HCD_STATUS_USEC (100 * 1000)

/* Sends the current STATUS= line. When the service manager's queue is full we do not
 * wait for it to read: the timer tries again with whatever line is current by then. */
static void status_send(Manager *m) {
        _cleanup_free_ char *line = NULL;
        int k;

        m->status_sent_usec = now_usec();
        if (!m->ready || !m->status)
                return;
        if (asprintf(&line, "STATUS=%s", m->status) < 0) {
                line = NULL;
                (void) log_oom();
                return;
        }
        k = notify_send(line);
        if (k != -EAGAIN || !m->status_source)
                return;
        (void) sd_event_source_set_time(m->status_source, m->status_sent_usec + HCD_STATUS_USEC);
        (void) sd_event_source_set_enabled(m->status_source, SD_EVENT_ONESHOT);
}

/* The STATUS= line that was held back (see status_update()). */
static int on_status(sd_event_source *s, uint64_t usec, void *userdata) {
        status_send(userdata);
        return 0;
}

/* STATUS= for systemctl status: "3 regions, 7 instances; web 2/4, build 1/64, ...". */
static void status_update(Manager *m) {
        unsigned regions, instances, shown = 0;
        char buf[1024];
        size_t n;

        manager_totals(m, &regions, &instances);
        n = (size_t) snprintf(buf, sizeof buf, "%u region%s, %u instance%s",
                              regions, regions == 1 ? "" : "s",
                              instances, instances == 1 ? "" : "s");
        for (size_t i = 0; i < m->n_regions && n < sizeof buf; i++) {
                Region *r = m->regions[i];

                if (shown == STATUS_NAMES_MAX) {
                        n += (size_t) snprintf(buf + n, sizeof buf - n, ", ...");
                        break;
                }
                n += (size_t) snprintf(buf + n, sizeof buf - n, "%s %.40s %i/%u",
                                       shown == 0 ? ";" : ",", r->name, r->count, r->capacity);
                shown++;
        }

#if HAVE_FLEET
        if (m->fleet && n < sizeof buf)
                n += fleet_bridge_status(m->fleet, buf + n, sizeof buf - n);
#endif
        if (m->status && strcmp(m->status, buf) == 0)
                return;
        free(m->status);
        m->status = strdup(buf);
        if (!m->ready || !m->status)
                return;
        /* At most one STATUS= per HCD_STATUS_USEC: a burst of joins is one line, and a
         * service manager that reads its socket slowly never holds up our counting. */
        if (now_usec() >= m->status_sent_usec + HCD_STATUS_USEC || !m->status_source) {
                status_send(m);
                return;
        }
        (void) sd_event_source_set_time(m->status_source, m->status_sent_usec + HCD_STATUS_USEC);
        (void) sd_event_source_set_enabled(m->status_source, SD_EVENT_ONESHOT);
}

#if HAVE_FLEET
/* --etcd-timeout passed without a lease: ready for the local scopes all the same. */
static int on_ready_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        log_warning("No etcd lease after %u s (%s); ready without one, still asking",
                    arg_etcd_timeout, fleet_bridge_health(m->fleet)->text);
        send_ready(m);
        return 0;
}
#endif

/* The fleet thread said something changed (fleet-bridge.c): STATUS=, FleetState, and
 * READY=1 at the first lease. */
static void on_fleet_count_changed(void *userdata, const char *name, unsigned count) {
        Manager *m = userdata;

        manager_bus_fleet_count_changed(m, name, count);
        metrics_fleet_count(m->metrics, name, count);
}

static void on_fleet_health_changed(void *userdata) {
#if HAVE_FLEET
        Manager *m = userdata;
        const FleetHealth *h = fleet_bridge_health(m->fleet);

        status_update(m);
        manager_bus_fleet_state_changed(m);
        metrics_changed(m->metrics);
        if (m->ready && (h->state == FLEET_STATE_HELD || h->state == FLEET_STATE_LATE))
                send_ready(m);
#endif
}

static int on_watchdog(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) notify_send("WATCHDOG=1");     /* a full queue: the next ping */
        return sd_event_source_set_time(s, usec + m->watchdog_usec / 2);
}

/*
 * One daemon per scope. The lock is a flock() on a file of our own, in a directory that
 * only our user can open (HCD_LOCK_SUBDIR, 0700, of HCD_LOCK_DIR_ROOT for root, else of
 * our runtime directory), named after the scope: "system" for the system scope, else the
 * scope directory's device and inode. Nothing in the scope directory is ours, so no user
 * sees it among the regions, takes it or makes it first; and nobody else can open the file
 * at all, so nobody can keep us from starting with a flock -s of their own (the file is
 * 0600 too, and put right when found otherwise). The file holds the holder's pid for the
 * message. A daemon that exits cleanly removes its file: while it still holds the lock, so
 * that the next daemon makes a new one; and a daemon that opened the old file just before
 * finds, once it has the lock, that the name no longer leads to it, and starts over. The
 * files of daemons that were killed are swept the same way by the next one to start.
 */
static int lock_dir(char *buf, size_t len) {
        const char *rt = getenv("XDG_RUNTIME_DIR");
        int n;

        if (geteuid() == 0)
                n = snprintf(buf, len, "%s", HCD_LOCK_DIR_ROOT);
        else if (rt && rt[0] == '/')
                n = snprintf(buf, len, "%s/headcountd", rt);
        else
                n = snprintf(buf, len, "/dev/shm/headcountd-%u", (unsigned) geteuid());
        return n < 0 || (size_t) n >= len ? -ENAMETOOLONG : 0;
}

/* Opens our lock file NAME in DFD: ours, regular, one link, 0600. */
static int lock_file_open(int dfd, const char *name) {
        for (int attempt = 0; attempt < 2; attempt++) {
                struct stat st;
                int fd;

                fd = openat(dfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return -errno;
                /* only we write here; anything else in its place is removed */
                if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
                    st.st_nlink == 1) {
                        if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0) {
                                int k = -errno;
                                (void) close(fd);
                                return k;
                        }
                        return fd;
                }
                (void) close(fd);
                (void) unlinkat(dfd, name, 0);
        }
        return -EPERM;
}

/* 1 when NAME in DFD is still the file FD has open. */
static bool lock_file_named(int dfd, const char *name, int fd) {
        struct stat a, b;

        return fstat(fd, &a) == 0 && fstatat(dfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
               a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/*
 * Removes the lock files in DFD that no daemon holds: those of daemons killed before they
 * could remove their own, and those that earlier versions left in the directory above.
 * Each is removed while we hold its lock, as a leaving daemon does; one that anybody holds
 * (or that someone who could open the old 0644 files holds shared) is left alone.
 */
static void sweep_locks(int dfd) {
        struct dirent *de;
        DIR *d;
        int fd;

        fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        d = fdopendir(fd);
        if (!d) {
                (void) close(fd);
                return;
        }
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                struct stat st;
                int lfd;

                if (len < 5 || strcmp(de->d_name + len - 5, ".lock") != 0 ||
                    (strcmp(de->d_name, "system.lock") != 0 && strncmp(de->d_name, "dir-", 4) != 0))
                        continue;
                lfd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                if (lfd < 0)
                        continue;
                if (fstat(lfd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
                    flock(lfd, LOCK_EX | LOCK_NB) == 0 && lock_file_named(dfd, de->d_name, lfd))
                        (void) unlinkat(dfd, de->d_name, 0);
                (void) close(lfd);
        }
        (void) closedir(d);
}

static int manager_claim_scope(Manager *m) {
        char base[4096], dir[4096 + sizeof HCD_LOCK_SUBDIR + 1], buf[32] = "";
        int bfd, dfd, fd = -1, k;
        struct stat st;

        k = lock_dir(base, sizeof base);
        if (k < 0)
                return log_error_errno(k, "Cannot name our lock directory: %m");
        (void) snprintf(dir, sizeof dir, "%s/%s", base, HCD_LOCK_SUBDIR);
        if (m->options.scope == HC_SCOPE_SYSTEM && !m->options.dir)
                (void) snprintf(m->lock_name, sizeof m->lock_name, "system.lock");
        else {
                if (stat(m->dir, &st) < 0)
                        return log_error_errno(-errno, "Cannot look at %s: %m", m->dir_text);
                (void) snprintf(m->lock_name, sizeof m->lock_name, "dir-%llx-%llx.lock",
                                (unsigned long long) st.st_dev, (unsigned long long) st.st_ino);
        }
        bfd = own_dir_open(base, 0755);
        if (bfd < 0)
                return log_error_errno(bfd, "Cannot use %s for our lock: %m", base);
        sweep_locks(bfd);                 /* where earlier versions kept them */
        (void) close(bfd);
        dfd = own_dir_open(dir, 0700);
        if (dfd < 0)
                return log_error_errno(dfd, "Cannot use %s for our lock: %m", dir);

        for (int attempt = 0;; attempt++) {
                fd = lock_file_open(dfd, m->lock_name);
                if (fd < 0) {
                        (void) close(dfd);
                        return log_error_errno(fd, "Cannot open our lock %s/%s: %m", dir, m->lock_name);
                }
                if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
                        int pid = n > 0 ? atoi(buf) : 0;

                        (void) close(fd);
                        (void) close(dfd);
                        if (pid > 0)
                                return log_error_errno(-EBUSY, "Another headcountd (pid %i) already watches "
                                                       "%s; refusing to start a second one", pid, m->dir_text);
                        return log_error_errno(-EBUSY, "Another headcountd already watches %s; refusing "
                                               "to start a second one", m->dir_text);
                }
                /* a daemon that was leaving removed the file after we opened it */
                if (lock_file_named(dfd, m->lock_name, fd))
                        break;
                (void) close(fd);
                if (attempt >= 16) {
                        (void) close(dfd);
                        return log_error_errno(-EAGAIN, "Our lock %s/%s keeps being replaced; giving up",
                                               dir, m->lock_name);
                }
        }
        k = snprintf(buf, sizeof buf, "%i\n", (int) getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t) k, 0) != k)
                log_debug("Cannot write our pid into our lock: %m");
        sweep_locks(dfd);                 /* ours is held: it stays */
        m->lock_fd = fd;
        m->lock_dir_fd = dfd;
        return 0;
}

/* Removes our lock file, while we still hold it, and lets go. */
static void manager_release_scope(Manager *m) {
        if (m->lock_fd >= 0 && m->lock_dir_fd >= 0 && lock_file_named(m->lock_dir_fd, m->lock_name, m->lock_fd))
                (void) unlinkat(m->lock_dir_fd, m->lock_name, 0);
        if (m->lock_fd >= 0)
                m->lock_fd = (close(m->lock_fd), -1);
        if (m->lock_dir_fd >= 0)
                m->lock_dir_fd = (close(m->lock_dir_fd), -1);
}

/* What the monitor sees goes out on the bus, and into the metrics file. */
static void on_count_changed(Manager *m, const char *name, int count) {
        manager_bus_count_changed(m, name, count);
        metrics_changed(m->metrics);
}

static void on_instance_event(Manager *m, const char *name, const char *event,
                              const hc_instance *in) {
        manager_bus_instance_event(m, name, event, in);
        metrics_event(m->metrics, event);
}

static void on_region_added(Manager *m, const char *name) {
        manager_bus_region_added(m, name);
        metrics_changed(m->metrics);
}

static void on_region_removed(Manager *m, const char *name) {
        manager_bus_region_removed(m, name);
        metrics_changed(m->metrics);
}

static int manager_start(Manager *m) {
        uint64_t now;
        sigset_t mask;
        int k;

        k = hc_scope_dir(&m->options, m->dir, sizeof m->dir);
        if (k < 0)
                return log_error_errno(k, "Cannot resolve the scope directory: %m");
        m->dir_text = malloc(ESCAPE_TEXT_SIZE(strlen(m->dir)));
        if (!m->dir_text)
                return log_oom();
        escape_text(m->dir, m->dir_text, ESCAPE_TEXT_SIZE(strlen(m->dir)));

        k = manager_claim_scope(m);
        if (k < 0)
                return k;

        k = sd_event_default(&m->event);
        if (k < 0)
                return log_error_errno(k, "Cannot create the event loop: %m");

        /* sd-event reads signals from a signalfd: they must be blocked first. */
        (void) sigemptyset(&mask);
        (void) sigaddset(&mask, SIGTERM);
        (void) sigaddset(&mask, SIGINT);
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);
        k = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
        if (k >= 0)
                k = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);
        if (k < 0)
                return log_error_errno(k, "Cannot watch signals: %m");

        /* what the monitor sees goes out on the bus, and into STATUS= */
        m->events = (MonitorEvents) {
                .count_changed = on_count_changed,
                .instance_event = on_instance_event,
                .region_added = on_region_added,
                .region_removed = on_region_removed,
                .changed = status_update,
        };
        k = sd_event_add_time(m->event, &m->status_source, CLOCK_MONOTONIC, 0, 1000, on_status, m);
        if (k < 0)
                return log_error_errno(k, "Cannot add a timer: %m");
        (void) sd_event_source_set_enabled(m->status_source, SD_EVENT_OFF);

        k = manager_monitor_start(m);
        if (k < 0)
                return k;
        if (arg_metrics_file) {
                k = metrics_new(m, arg_metrics_file, &m->metrics);
                if (k < 0)
                        return k;
        }

        if (m->bus_type != HCD_BUS_NONE) {
                k = manager_bus_start(m);
                if (k < 0)
                        return k;
        }

#if HAVE_FLEET
        if (arg_etcd) {
                FleetConfig fc = {
                        .endpoints = arg_etcd,
                        .prefix = arg_etcd_prefix,
                        .host = arg_host,
                        .ttl = arg_ttl,
                        .timeout = arg_etcd_timeout,
                        .cacert = arg_etcd_cacert,
                        .cert = arg_etcd_cert,
                        .key = arg_etcd_key,
                        .user = arg_etcd_user,
                        .password = arg_etcd_user ? arg_etcd_password : NULL,
                        .system_scope = m->options.scope == HC_SCOPE_SYSTEM && !m->options.dir,
                        .user_connections = arg_fleet_user_connections,
                        .user_names = arg_fleet_user_names,
                };

                k = fleet_bridge_start(m->event, &(FleetBridgeHooks) {
                                .health_changed = on_fleet_health_changed,
                                .count_changed = on_fleet_count_changed,
                                .userdata = m,
                        }, &fc, m->dir, &m->fleet);
                if (k < 0)
                        return k;
                log_info("Serving the fleet scope as host %s through etcd at %s (prefix %s%s%s)",
                         arg_host, arg_etcd, arg_etcd_prefix,
                         arg_etcd_user ? ", etcd user " : "", arg_etcd_user ?: "");
        }
#endif

        if (sd_watchdog_enabled(false, &m->watchdog_usec) > 0 && m->watchdog_usec >= 2) {
                (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
                k = sd_event_add_time(m->event, &m->watchdog_source, CLOCK_MONOTONIC,
                                      now + m->watchdog_usec / 2, m->watchdog_usec / 20 + 1,
                                      on_watchdog, m);
                if (k < 0)
                        return log_error_errno(k, "Cannot add the watchdog timer: %m");
                (void) sd_event_source_set_enabled(m->watchdog_source, SD_EVENT_ON);
        }

        log_info("Watching %s%s%s", m->dir,
                 m->bus_type == HCD_BUS_NONE ? "" : "; serving " HCD_BUS_NAME " on the ",
                 m->bus_type == HCD_BUS_NONE ? "" : m->bus_type == HCD_BUS_SYSTEM ?
                 "system bus" : "user bus");
        m->ready = true;
        status_update(m);
#if HAVE_FLEET
        if (m->fleet && !fleet_bridge_ever_held(m->fleet)) {
                k = sd_event_add_time_relative(m->event, &m->ready_timer, CLOCK_MONOTONIC,
                                               (uint64_t) arg_etcd_timeout * 1000000, 0,
                                               on_ready_timeout, m);
                if (k < 0)
                        return log_error_errno(k, "Cannot add a timer: %m");
                return 0;
        }
#endif
        send_ready(m);
        return 0;
}

/*
 * Sends what is still queued for the bus, for at most a second, and closes it: a client
 * that does not read its signals may hold the bus up, but never our exit (a service
 * manager would otherwise kill us at its stop timeout).
 */
static sd_bus *bus_close_bounded(sd_bus *bus) {
        uint64_t end = now_usec() + 1000000, queued = 0;

        if (!bus)
                return NULL;
        while (sd_bus_get_n_queued_write(bus, &queued) >= 0 && queued > 0 && now_usec() < end) {
                if (sd_bus_process(bus, NULL) > 0)
                        continue;
                (void) sd_bus_wait(bus, 100000);
        }
        return sd_bus_close_unref(bus);
}

static void manager_done(Manager *m) {
#if HAVE_FLEET
        m->fleet = fleet_bridge_free(m->fleet);
#endif
        m->ready_timer = sd_event_source_disable_unref(m->ready_timer);
        m->metrics = metrics_free(m->metrics);
        manager_monitor_stop(m);
        m->status_source = sd_event_source_disable_unref(m->status_source);
        m->watchdog_source = sd_event_source_disable_unref(m->watchdog_source);
        m->bus = bus_close_bounded(m->bus);
        m->event = sd_event_unref(m->event);
        manager_release_scope(m);
        free(m->status);
        m->status = NULL;
        free(m->dir_text);
        m->dir_text = NULL;
}

/*
 * Each region we watch and each holder we follow (a pidfd) costs a descriptor, and a
 * service gets a soft limit of 1024 by default: we raise it to the hard limit (the units
 * set LimitNOFILE=). Should tracking still run out, the count stays right (the locks are
 * the truth, and inotify and the re-checks see every seat go); monitor.c says so once.
 */
static void raise_fd_limit(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_debug("Cannot raise the descriptor limit: %m");
}

int main(int argc, char *argv[]) {
        Manager m = { .lock_fd = -1, .lock_dir_fd = -1 };
        int k;

        /* Before anything is opened: no region, lock file or socket may land on 0, 1 or 2,
         * where our log lines would go into it. */
        message_program = program_invocation_short_name;
        k = stdio_fds_ensure();
        if (k < 0) {
                message_error("cannot open /dev/null: %s", strerror(-k));
                return EXIT_FAILURE;
        }

        k = parse_argv(argc, argv);
        if (k <= 0)
                return k < 0 ? EXIT_USAGE : EXIT_SUCCESS;

        log_open(arg_log_target);
        if (arg_verbose)
                log_set_max_level(LOG_DEBUG);
        raise_fd_limit();

        m.options = (hc_options) {
                .size = sizeof(hc_options),
                .scope = arg_scope,
                .dir = arg_dir,
        };
        m.bus_type = arg_bus;

        k = manager_start(&m);
        if (k >= 0)
                k = sd_event_loop(m.event);
        if (k < 0 && m.ready)
                log_error_errno(k, "The event loop failed: %m");
        manager_done(&m);
        return k == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
