/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * 'list' and 'names': who is in a region and which regions there are, as a table printed
 * by libsmartcols (util-linux's table library, as lsblk and lslocks print theirs) or as
 * JSON built with json-c.
 *
 * A tag may hold any byte but NUL (in a region that others may write, so may the whole
 * record; a host name comes from another machine), and none may break a line or a column
 * or send a control sequence to a terminal. libsmartcols encodes every unsafe byte as
 * "\xhh": by default every control character (C0, DEL, and the C1 controls, which
 * iswprint() refuses), every byte that is no valid character of the locale and a
 * backslash before an 'x'; with --raw every blank, backslash and byte that is not
 * printable ASCII, so that printf '%b' gives the bytes back. We never ask it for
 * "noencoding": 2.38 loops for ever on some non-ASCII text in the C locale. Its JSON
 * writer (2.38) copies DEL and every byte >= 0x80, so a C1 control would reach the
 * terminal and a tag that is not UTF-8 would make invalid JSON: our JSON is json-c's,
 * with escape_json() for every string (json-c escapes only the C0 controls).
 *
 * The PID column says how far the PID can be believed: "1234?" when another user may have
 * written the record (HC_INSTANCE_UNVERIFIED), "2*" when it is from another PID namespace.
 * A script that passes the column to kill(1) then fails instead of signalling a stranger.
 * JSON's pid is a bare number: its "flags" ("unverified", "other-pidns") say the same, and
 * are among the default JSON columns for that reason.
 *
 * JSON is shaped as util-linux's (lslocks -J, lsblk -J): one object holding the array of
 * rows under the table's name ("instances", "regions"), each row an object whose keys are
 * the lower-case names of exactly the columns chosen (-o, --output-all, or the defaults).
 */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <json-c/printbuf.h>
#include <libsmartcols/libsmartcols.h>

#include "errors.h"
#include "cli.h"
#include "escape.h"
#include "instance.h"

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
#define COLUMNS_MAX 32          /* what --output may name, repetitions included */

/* ---- Columns ---- */

enum {
        IN_LOCAL = 1 << 0,      /* 'list' of a local scope */
        IN_FLEET = 1 << 1,      /* 'list' of the fleet scope */
        IN_NAMES = 1 << 2,      /* 'names' */
        IN_HISTORY = 1 << 3,    /* 'history' */
};

enum {
        COL_SEAT, COL_RANK, COL_HOST, COL_PID, COL_UID, COL_USER, COL_COMMAND, COL_JOINED,
        COL_AGE, COL_SEQ, COL_FENCE, COL_TAG, COL_FLAGS, COL_NAME, COL_COUNT, COL_CAPACITY,
        COL_STARTED, COL_ENDED, COL_DURATION, COL_HOW, COL_EXIT, COL_SIGNAL,
        COL_END = -1,           /* the end of a list of columns */
};
/* What a seat shows without its record. */
#define SEAT_COLUMNS (1u << COL_SEAT | 1u << COL_RANK | 1u << COL_HOST | 1u << COL_FENCE | \
                      1u << COL_FLAGS)

static const struct column {
        const char *name;       /* the header, and what --output takes; in lower case,
                                 * the JSON key */
        unsigned in;            /* IN_*: the tables that have it */
        int flags;              /* SCOLS_FL_* */
} columns[] = {
        [COL_SEAT]     = { "SEAT",     IN_LOCAL | IN_HISTORY,            SCOLS_FL_RIGHT },
        [COL_RANK]     = { "RANK",     IN_FLEET,            SCOLS_FL_RIGHT },
        [COL_HOST]     = { "HOST",     IN_FLEET,            0              },
        [COL_PID]      = { "PID",      IN_LOCAL | IN_FLEET | IN_HISTORY, SCOLS_FL_RIGHT },
        [COL_UID]      = { "UID",      IN_LOCAL | IN_FLEET | IN_HISTORY, SCOLS_FL_RIGHT },
        [COL_USER]     = { "USER",     IN_LOCAL | IN_FLEET | IN_HISTORY, 0              },
        [COL_COMMAND]  = { "COMMAND",  IN_LOCAL | IN_FLEET, 0              },
        [COL_JOINED]   = { "JOINED",   IN_LOCAL | IN_FLEET, 0              },
        [COL_AGE]      = { "AGE",      IN_LOCAL | IN_FLEET, SCOLS_FL_RIGHT },
        [COL_SEQ]      = { "SEQ",      IN_LOCAL | IN_HISTORY,            SCOLS_FL_RIGHT },
        [COL_FENCE]    = { "FENCE",    IN_FLEET,            SCOLS_FL_RIGHT },
        [COL_TAG]      = { "TAG",      IN_LOCAL | IN_FLEET | IN_HISTORY, 0              },
        [COL_FLAGS]    = { "FLAGS",    IN_LOCAL | IN_FLEET | IN_HISTORY, 0              },
        [COL_NAME]     = { "NAME",     IN_NAMES,            0              },
        [COL_COUNT]    = { "COUNT",    IN_NAMES,            SCOLS_FL_RIGHT },
        [COL_CAPACITY] = { "CAPACITY", IN_NAMES,            SCOLS_FL_RIGHT },
        [COL_STARTED]  = { "STARTED",  IN_HISTORY,          0              },
        [COL_ENDED]    = { "ENDED",    IN_HISTORY,          0              },
        [COL_DURATION] = { "DURATION", IN_HISTORY,          SCOLS_FL_RIGHT },
        [COL_HOW]      = { "HOW",      IN_HISTORY,          0              },
        [COL_EXIT]     = { "EXIT",     IN_HISTORY,          SCOLS_FL_RIGHT },
        [COL_SIGNAL]   = { "SIGNAL",   IN_HISTORY,          0              },
};

/* The default columns of each table. JSON has the table's, and FLAGS after them: a JSON
 * pid has no room for the '?' or '*' that the table puts after one. */
static const int default_local_text[] = { COL_SEAT, COL_PID, COL_USER, COL_COMMAND, COL_JOINED,
                                          COL_TAG, COL_END };
static const int default_local_json[] = { COL_SEAT, COL_PID, COL_USER, COL_COMMAND, COL_JOINED,
                                          COL_TAG, COL_FLAGS, COL_END };
static const int default_fleet_text[] = { COL_RANK, COL_HOST, COL_PID, COL_UID, COL_JOINED,
                                          COL_TAG, COL_FENCE, COL_END };
static const int default_fleet_json[] = { COL_RANK, COL_HOST, COL_PID, COL_UID, COL_JOINED,
                                          COL_TAG, COL_FENCE, COL_FLAGS, COL_END };
/* a fleet name has no capacity of its own: its N is the callers' --max */
static const int default_history_text[] = { COL_PID, COL_USER, COL_TAG, COL_STARTED, COL_ENDED,
                                            COL_DURATION, COL_HOW, COL_EXIT, COL_SIGNAL, COL_END };
static const int default_history_json[] = { COL_PID, COL_USER, COL_TAG, COL_STARTED, COL_ENDED,
                                            COL_DURATION, COL_HOW, COL_EXIT, COL_SIGNAL, COL_FLAGS,
                                            COL_END };
static const int default_names[] = { COL_NAME, COL_COUNT, COL_CAPACITY, COL_END };
static const int default_names_fleet[] = { COL_NAME, COL_COUNT, COL_END };

/* Appends S to BUF (SIZE bytes, a string), after SEP unless BUF is empty. */
static void append(char *buf, size_t size, const char *sep, const char *s) {
        size_t n = strlen(buf);

        (void) snprintf(buf + n, size - n, "%s%s", n > 0 ? sep : "", s);
}

/* "TITLE: A B C" for the columns of IN, and "  default: A,B (JSON: and C)". */
static void print_columns(const char *title, unsigned in, const int *text, const int *json) {
        char line[256] = "", defaults[256] = "";
        size_t nt = 0;

        for (size_t i = 0; i < ELEMENTSOF(columns); i++)
                if (columns[i].in & in)
                        append(line, sizeof line, " ", columns[i].name);
        for (; text[nt] != COL_END; nt++)
                append(defaults, sizeof defaults, ",", columns[text[nt]].name);
        printf("%s: %s\n  default: %s", title, line, defaults);
        if (json) {
                defaults[0] = '\0';
                for (size_t i = nt; json[i] != COL_END; i++)
                        append(defaults, sizeof defaults, ",", columns[json[i]].name);
                printf(" (JSON: and %s)", defaults);
        }
        putchar('\n');
}

void list_columns_usage(const char *command) {
        if (strcmp(command, "history") == 0) {
                print_columns("Columns (-o)", IN_HISTORY, default_history_text, default_history_json);
                return;
        }
        if (strcmp(command, "names") == 0) {
                print_columns("Columns (-o)", IN_NAMES, default_names, NULL);
                print_columns("With --fleet", IN_NAMES, default_names_fleet, NULL);
                return;
        }
        print_columns("Columns (-o)", IN_LOCAL, default_local_text, default_local_json);
        print_columns("With --fleet", IN_FLEET, default_fleet_text, default_fleet_json);
}

struct selection {
        int cols[COLUMNS_MAX];
        size_t n;
};

static int select_column(struct selection *s, int col) {
        if (s->n == COLUMNS_MAX)
                return usage_error("more than %d columns given to --output", COLUMNS_MAX);
        s->cols[s->n++] = col;
        return 0;
}

/* The column called NAME (any case, LEN bytes) among those of IN, or -1. */
static int find_column(const char *name, size_t len, unsigned in) {
        for (size_t i = 0; i < ELEMENTSOF(columns); i++)
                if ((columns[i].in & in) && strlen(columns[i].name) == len &&
                    strncasecmp(columns[i].name, name, len) == 0)
                        return (int) i;
        return -1;
}

/* The columns to print: --output-all; or those --output names, comma-separated, a list
 * that starts with '+' adding to the defaults; or the defaults. A name that is no column
 * of this table is a usage error that lists the valid ones: EXIT_USAGE, else 0. */
static int select_columns(const struct cli *c, unsigned in, const int *defaults,
                          struct selection *ret) {
        const char *p = c->output;

        ret->n = 0;
        if (c->output_all) {
                for (size_t i = 0; i < ELEMENTSOF(columns); i++)
                        if (columns[i].in & in)
                                (void) select_column(ret, (int) i);     /* fewer than the max */
                return 0;
        }
        if (!p || *p == '+')
                for (const int *d = defaults; *d != COL_END; d++)
                        (void) select_column(ret, *d);
        if (!p)
                return 0;
        if (*p == '+')
                p++;
        for (;;) {
                size_t len = strcspn(p, ",");
                int col = find_column(p, len, in);

                if (col < 0) {
                        char valid[256] = "";

                        for (size_t i = 0; i < ELEMENTSOF(columns); i++)
                                if (columns[i].in & in)
                                        append(valid, sizeof valid, ", ", columns[i].name);
                        return usage_error("unknown column '%.*s' for '%s'; valid columns: %s",
                                           (int) len, p, c->command, valid);
                }
                if (select_column(ret, col) != 0)
                        return EXIT_USAGE;
                if (p[len] == '\0')
                        return 0;
                p += len + 1;
        }
}

/* ---- Output: a libsmartcols table, or JSON ---- */

/* JSON: {"instances": [...]} for 'list', {"regions": [...]} for 'names', {"runs": [...]}
 * for 'history'. */
struct table {
        struct selection sel;
        const char *json_name;          /* the key of the array of rows */
        struct libscols_table *tb;      /* text, or NULL */
        json_object *array;             /* JSON, or NULL */
};

/* The text of column COL for ROW, in BUF (SIZE bytes) or constant; NULL for "-". */
typedef const char *text_fn(void *row, int col, char *buf, size_t size);
/* The JSON value of column COL for ROW; NULL for null. */
typedef json_object *json_fn(void *row, int col);

static int table_new(struct table *t, const struct cli *c) {
        if (c->json) {
                t->array = json_object_new_array();
                return t->array ? 0 : -ENOMEM;
        }
        /* Escaped for the terminal's character set: what is valid and printable there
         * passes, everything else is "\xhh". */
        (void) setlocale(LC_CTYPE, "");
        t->tb = scols_new_table();
        if (!t->tb || scols_table_enable_raw(t->tb, c->raw) < 0 ||
            scols_table_enable_noheadings(t->tb, c->noheadings) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < t->sel.n; i++)
                if (!scols_table_new_column(t->tb, columns[t->sel.cols[i]].name, 0,
                                            columns[t->sel.cols[i]].flags))
                        return -ENOMEM;
        return 0;
}

static int table_add(struct table *t, void *row, text_fn *text, json_fn *json) {
        if (t->array) {
                json_object *o = json_object_new_object();

                if (!o)
                        return -ENOMEM;
                for (size_t i = 0; i < t->sel.n; i++) {
                        char key[16];
                        size_t k;

                        for (k = 0; k < sizeof key - 1 && columns[t->sel.cols[i]].name[k]; k++)
                                key[k] = (char) (columns[t->sel.cols[i]].name[k] | 0x20);
                        key[k] = '\0';
                        json_object_object_add(o, key, json(row, t->sel.cols[i]));
                }
                return json_object_array_add(t->array, o) < 0 ? -ENOMEM : 0;
        }

        struct libscols_line *ln = scols_table_new_line(t->tb, NULL);
        if (!ln)
                return -ENOMEM;
        for (size_t i = 0; i < t->sel.n; i++) {
                char buf[256];
                const char *s = text(row, t->sel.cols[i], buf, sizeof buf);

                if (scols_line_set_data(ln, i, s ? s : "-") < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* Prints the table unless R < 0, and frees it; returns R or the error of printing. An
 * error writing stdout is found at exit (close_stdout). */
static int table_finish(struct table *t, int r) {
        const char *s;

        if (r >= 0 && t->array) {
                json_object *top = json_object_new_object();

                if (top) {
                        json_object_object_add(top, t->json_name, t->array);
                        t->array = NULL;        /* top holds it now */
                }
                s = top ? json_object_to_json_string_ext(top, JSON_C_TO_STRING_PRETTY |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE)
                        : NULL;
                if (s)
                        puts(s);
                else
                        r = -ENOMEM;
                json_object_put(top);
        } else if (r >= 0 && t->tb)
                r = scols_print_table(t->tb);
        json_object_put(t->array);
        scols_unref_table(t->tb);
        return r < 0 ? r : 0;
}

/* json-c's serializer for our strings: escape_json() in place of json-c's escaping. */
static int string_to_json(json_object *o, struct printbuf *pb, int level, int flags) {
        const char *s = json_object_get_string(o);
        size_t size = ESCAPE_JSON_SIZE(strlen(s));
        char *buf = malloc(size);
        int r;

        if (!buf)
                return -1;
        escape_json(s, buf, size);
        r = printbuf_memappend(pb, buf, (int) strlen(buf));
        free(buf);
        return r < 0 ? -1 : 0;
}

static json_object *json_string(const char *s) {
        json_object *o = s ? json_object_new_string(s) : NULL;

        if (o)
                json_object_set_serializer(o, string_to_json, NULL, NULL);
        return o;
}

/* ---- list ---- */

struct lister {
        int time_format;        /* TIME_FORMAT_* */
        int64_t now_usec;       /* CLOCK_REALTIME, for AGE and relative times */
        uint64_t pidns;         /* the inode of our PID namespace, 0 if unknown */
        char host[HC_HOST_MAX + 1];     /* our host name, for the fleet's seats */
        uid_t user_uid;         /* the last uid looked up, and its user name */
        bool user_known;
        char user[256];
};

struct row {
        struct lister *l;
        const hc_instance *in;
        const char *host;       /* fleet: the seat's host; NULL for a local seat */
        uint64_t fence;         /* fleet: the seat's fencing token */
};

/* "59s", "4m05s", "3h02m", "12d07h": how long ago USEC was. */
static const char *format_age(const struct lister *l, int64_t usec, char *buf, size_t size) {
        long long s = l->now_usec > usec ? (l->now_usec - usec) / 1000000 : 0;

        if (s < 60)
                (void) snprintf(buf, size, "%llds", s);
        else if (s < 3600)
                (void) snprintf(buf, size, "%lldm%02llds", s / 60, s % 60);
        else if (s < 86400)
                (void) snprintf(buf, size, "%lldh%02lldm", s / 3600, s % 3600 / 60);
        else
                (void) snprintf(buf, size, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
        return buf;
}

/* The join time as --time-format says: by default the local time, "2026-05-01 14:00:00"
 * (in JSON RFC 3339 in UTC, "2026-05-01T12:00:00Z", as it always was); iso: local time
 * with its offset, "2026-05-01T14:00:00+02:00"; relative: "4m05s ago"; raw: microseconds
 * since the epoch, as the record has it. NULL when there is none. */
static const char *format_joined(const struct lister *l, int64_t usec, bool json, char *buf,
                                 size_t size) {
        time_t t = (time_t) (usec / 1000000);
        struct tm tm;
        size_t n;

        if (usec <= 0)
                return NULL;
        switch (l->time_format) {
        case TIME_FORMAT_RAW:
                (void) snprintf(buf, size, "%lld", (long long) usec);
                return buf;
        case TIME_FORMAT_RELATIVE:
                format_age(l, usec, buf, size);
                append(buf, size, "", " ago");
                return buf;
        case TIME_FORMAT_ISO:
                if (!localtime_r(&t, &tm))
                        return NULL;
                n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
                if (n == 0)
                        return NULL;
                (void) snprintf(buf + n, size - n, "%c%02ld:%02ld", tm.tm_gmtoff < 0 ? '-' : '+',
                                labs(tm.tm_gmtoff) / 3600, labs(tm.tm_gmtoff) % 3600 / 60);
                return buf;
        default:
                if (json ? !gmtime_r(&t, &tm) : !localtime_r(&t, &tm))
                        return NULL;
                if (strftime(buf, size, json ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S",
                             &tm) == 0)
                        return NULL;
                return buf;
        }
}

/* The user name of UID, or NULL; the last answer is kept, since most rows share a uid. */
static const char *user_name(struct lister *l, uid_t uid) {
        struct passwd pw, *p = NULL;
        char buf[16384];

        if (l->user_known && l->user_uid == uid)
                return l->user[0] ? l->user : NULL;
        l->user_uid = uid;
        l->user_known = true;
        l->user[0] = '\0';
        if (getpwuid_r(uid, &pw, buf, sizeof buf, &p) == 0 && p &&
            strlen(p->pw_name) < sizeof l->user)
                (void) snprintf(l->user, sizeof l->user, "%s", p->pw_name);
        return l->user[0] ? l->user : NULL;
}

/* The holder's command name from /proc/PID/comm, only when the PID means that process
 * here: a record that no other user wrote, of a holder in our PID namespace and, for the
 * fleet, on our host. NULL otherwise. */
static const char *command_name(const struct row *r, char *buf, size_t size) {
        const hc_instance *in = r->in;
        char path[64];
        ssize_t n;
        int fd;

        if (in->flags & (HC_INSTANCE_NO_RECORD | HC_INSTANCE_OTHER_PIDNS |
                         HC_INSTANCE_OTHER_BOOT | HC_INSTANCE_UNVERIFIED) || in->pid <= 0)
                return NULL;
        if (r->host && (strcmp(r->host, r->l->host) != 0 || r->l->pidns == 0 ||
                        in->pidns != r->l->pidns))
                return NULL;
        (void) snprintf(path, sizeof path, "/proc/%d/comm", (int) in->pid);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return NULL;
        n = read(fd, buf, size - 1);
        (void) close(fd);
        if (n <= 0)
                return NULL;
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        return buf;
}

static const struct { unsigned flag; const char *name; } flag_names[] = {
        { HC_INSTANCE_NO_RECORD,   "no-record"   },
        { HC_INSTANCE_OTHER_PIDNS, "other-pidns" },
        { HC_INSTANCE_OTHER_BOOT,  "other-boot"  },
        { HC_INSTANCE_UNVERIFIED,  "unverified"  },
        { HC_INSTANCE_UNREADABLE,  "unreadable"  },
};

static const char *list_text(void *row, int col, char *buf, size_t size) {
        struct row *r = row;
        const hc_instance *in = r->in;

        if ((in->flags & HC_INSTANCE_NO_RECORD) && !((1u << col) & SEAT_COLUMNS))
                return col == COL_TAG ? "" : NULL;
        switch (col) {
        case COL_SEAT:
        case COL_RANK:
                (void) snprintf(buf, size, "%u", in->slot);
                return buf;
        case COL_HOST:
                return r->host;
        case COL_PID:
                (void) snprintf(buf, size, "%d%s%s", (int) in->pid,
                                in->flags & HC_INSTANCE_OTHER_PIDNS ? "*" : "",
                                instance_verified(in) ? "" : "?");
                return buf;
        case COL_USER:
        case COL_UID:           /* USER: the number when the uid has no name */
                if (col == COL_USER && user_name(r->l, in->uid))
                        return r->l->user;
                (void) snprintf(buf, size, "%u", (unsigned) in->uid);
                return buf;
        case COL_COMMAND:
                return command_name(r, buf, size);
        case COL_JOINED:
                return format_joined(r->l, in->joined_usec, false, buf, size);
        case COL_AGE:
                return in->joined_usec > 0 ? format_age(r->l, in->joined_usec, buf, size) : NULL;
        case COL_SEQ:
                (void) snprintf(buf, size, "%llu", (unsigned long long) in->seq);
                return buf;
        case COL_FENCE:
                (void) snprintf(buf, size, "%llu", (unsigned long long) r->fence);
                return buf;
        case COL_TAG:
                return in->tag;
        case COL_FLAGS:
                buf[0] = '\0';
                for (size_t i = 0; i < ELEMENTSOF(flag_names); i++)
                        if (in->flags & flag_names[i].flag)
                                append(buf, size, ",", flag_names[i].name);
                return buf;
        }
        return NULL;
}

static json_object *list_json(void *row, int col) {
        struct row *r = row;
        const hc_instance *in = r->in;
        bool record = !(in->flags & HC_INSTANCE_NO_RECORD);
        json_object *v = NULL;
        char buf[256];

        switch (col) {
        case COL_SEAT:
        case COL_RANK:
                v = json_object_new_int64(in->slot);
                break;
        case COL_HOST:
                v = json_string(r->host);
                break;
        case COL_PID:
                v = record ? json_object_new_int64(in->pid) : NULL;
                break;
        case COL_UID:
                v = record ? json_object_new_int64(in->uid) : NULL;
                break;
        case COL_USER:
                v = record ? json_string(user_name(r->l, in->uid)) : NULL;
                break;
        case COL_COMMAND:
                v = json_string(command_name(r, buf, sizeof buf));
                break;
        case COL_JOINED:
                if (record && in->joined_usec > 0 && r->l->time_format == TIME_FORMAT_RAW)
                        v = json_object_new_int64(in->joined_usec);
                else if (record)
                        v = json_string(format_joined(r->l, in->joined_usec, true, buf,
                                                      sizeof buf));
                break;
        case COL_AGE:
                if (record && in->joined_usec > 0)
                        v = json_object_new_int64(r->l->now_usec > in->joined_usec ?
                                                  (r->l->now_usec - in->joined_usec) / 1000000 : 0);
                break;
        case COL_SEQ:
                v = record ? json_object_new_int64((int64_t) in->seq) : NULL;
                break;
        case COL_FENCE:
                v = json_object_new_int64((int64_t) r->fence);     /* uint64: json-c 0.14 */
                break;
        case COL_TAG:
                v = record ? json_string(in->tag) : NULL;
                break;
        case COL_FLAGS:
                v = json_object_new_array();
                for (size_t i = 0; v && i < ELEMENTSOF(flag_names); i++)
                        if (in->flags & flag_names[i].flag)
                                json_object_array_add(v, json_string(flag_names[i].name));
                break;
        }
        return v;
}

static void lister_init(struct lister *l, const struct cli *c) {
        struct timespec ts;
        struct stat st;

        *l = (struct lister) { .time_format = c->time_format };
        if (clock_gettime(CLOCK_REALTIME, &ts) == 0)
                l->now_usec = (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        if (stat("/proc/self/ns/pid", &st) == 0)
                l->pidns = st.st_ino;
        if (gethostname(l->host, sizeof l->host - 1) < 0)
                l->host[0] = '\0';
}

int command_list(const struct cli *c) {
        bool fleet = c->fleet;
        struct table t = { .json_name = "instances" };
        struct lister l;
        hc_instance *list = NULL;
        hc_fleet_instance *flist = NULL;
        unsigned unreadable = 0;
        int n, r = 0;

        if (select_columns(c, fleet ? IN_FLEET : IN_LOCAL,
                           fleet ? (c->json ? default_fleet_json : default_fleet_text)
                                 : (c->json ? default_local_json : default_local_text),
                           &t.sel) != 0)
                return EXIT_USAGE;
        if (fleet)
                n = hc_fleet_list(c->name, CLI_OPTIONS(c), &flist);
        else
                n = hc_list(c->name, CLI_OPTIONS(c), &list);
        if (n == -ENOENT)
                n = 0;                  /* as 'count': nobody is in a region never created */
        if (n < 0)
                return region_failure(c, "list", n);

        lister_init(&l, c);
        r = table_new(&t, c);
        for (int i = 0; r >= 0 && i < n; i++) {
                struct row row = { .l = &l, .in = fleet ? &flist[i].instance : &list[i] };

                /* a table of empty rows would hide what they are: one line says it */
                if (!c->json && (row.in->flags & HC_INSTANCE_UNREADABLE)) {
                        unreadable++;
                        continue;
                }
                if (fleet) {
                        row.host = flist[i].host;
                        row.fence = flist[i].fence;
                }
                r = table_add(&t, &row, list_text, list_json);
        }
        r = table_finish(&t, r);
        free(list);
        free(flist);
        if (r < 0) {
                message_error("cannot print the list of '%s': %s", c->name, strerror(-r));
                return EXIT_FAILURE;
        }
        if (unreadable > 0)
                message_error("region '%s': %u held seat%s with a record that cannot be read "
                              "(damaged, or written by another program), not listed",
                              c->name, unreadable, unreadable == 1 ? "" : "s");
        if (!fleet) {
                unsigned read_locked = 0;

                if (hc_count_read_locked(c->name, CLI_OPTIONS(c), &read_locked) >= 0)
                        note_read_locked(c, read_locked);
        }
        return EXIT_SUCCESS;
}

/* ---- history ---- */

struct hrow {
        struct lister *l;
        const hc_run *run;
};

static const char *how_name(int how) {
        return how == HC_RUN_LEFT ? "left" : how == HC_RUN_DIED ? "died" : "running";
}

/* How long the run took (or has run so far), in microseconds; -1 when nobody knows (a
 * death's moment is not recorded). */
static int64_t run_duration(const struct hrow *h) {
        const hc_run *x = h->run;

        if (x->how == HC_RUN_LEFT)
                return x->ended_seq > x->seq ? (int64_t) ((x->ended_seq - x->seq) / 1000) : 0;
        if (x->how == HC_RUN_RUNNING && x->started_usec > 0)
                return h->l->now_usec > x->started_usec ? h->l->now_usec - x->started_usec : 0;
        return -1;
}

/* "0.004s", "12.500s", "4m05s", "3h02m", "12d07h" */
static const char *format_duration(int64_t usec, char *buf, size_t size) {
        long long s = usec / 1000000;

        if (s < 60)
                (void) snprintf(buf, size, "%lld.%03llds", s, (long long) (usec % 1000000) / 1000);
        else if (s < 3600)
                (void) snprintf(buf, size, "%lldm%02llds", s / 60, s % 60);
        else if (s < 86400)
                (void) snprintf(buf, size, "%lldh%02lldm", s / 3600, s % 3600 / 60);
        else
                (void) snprintf(buf, size, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
        return buf;
}

/* The signal's name without "SIG" ("TERM"), or its number. */
static const char *signal_name(int sig, char *buf, size_t size) {
        const char *n = sig > 0 ? sigabbrev_np(sig) : NULL;

        if (n)
                return n;
        (void) snprintf(buf, size, "%d", sig);
        return buf;
}

static const char *history_text(void *row, int col, char *buf, size_t size) {
        struct hrow *h = row;
        const hc_run *x = h->run;
        int64_t d;

        switch (col) {
        case COL_SEAT:
                (void) snprintf(buf, size, "%u", x->slot);
                return buf;
        case COL_PID:
                (void) snprintf(buf, size, "%d%s%s", (int) x->pid,
                                x->flags & HC_INSTANCE_OTHER_PIDNS ? "*" : "",
                                x->flags & HC_INSTANCE_UNVERIFIED ? "?" : "");
                return buf;
        case COL_USER:
        case COL_UID:
                if (col == COL_USER && user_name(h->l, x->uid))
                        return h->l->user;
                (void) snprintf(buf, size, "%u", (unsigned) x->uid);
                return buf;
        case COL_SEQ:
                (void) snprintf(buf, size, "%llu", (unsigned long long) x->seq);
                return buf;
        case COL_TAG:
                return x->tag;
        case COL_STARTED:
                return format_joined(h->l, x->started_usec, false, buf, size);
        case COL_ENDED:
                return x->how == HC_RUN_LEFT ? format_joined(h->l, x->ended_usec, false, buf, size) : NULL;
        case COL_DURATION:
                d = run_duration(h);
                return d >= 0 ? format_duration(d, buf, size) : NULL;
        case COL_HOW:
                return how_name(x->how);
        case COL_EXIT:
                if (x->exit_status < 0)
                        return NULL;
                (void) snprintf(buf, size, "%d", x->exit_status);
                return buf;
        case COL_SIGNAL:
                return x->signal > 0 ? signal_name(x->signal, buf, size) : NULL;
        case COL_FLAGS:
                buf[0] = '\0';
                for (size_t i = 0; i < ELEMENTSOF(flag_names); i++)
                        if (x->flags & flag_names[i].flag)
                                append(buf, size, ",", flag_names[i].name);
                return buf;
        }
        return NULL;
}

static json_object *time_json(const struct lister *l, int64_t usec) {
        char buf[64];

        if (usec <= 0)
                return NULL;
        if (l->time_format == TIME_FORMAT_RAW)
                return json_object_new_int64(usec);
        return json_string(format_joined(l, usec, true, buf, sizeof buf));
}

static json_object *history_json(void *row, int col) {
        struct hrow *h = row;
        const hc_run *x = h->run;
        char buf[64];
        int64_t d;

        switch (col) {
        case COL_SEAT:
                return json_object_new_int64(x->slot);
        case COL_PID:
                return json_object_new_int64(x->pid);
        case COL_UID:
                return json_object_new_int64(x->uid);
        case COL_USER:
                return json_string(user_name(h->l, x->uid));
        case COL_SEQ:
                return json_object_new_int64((int64_t) x->seq);
        case COL_TAG:
                return json_string(x->tag);
        case COL_STARTED:
                return time_json(h->l, x->started_usec);
        case COL_ENDED:
                return x->how == HC_RUN_LEFT ? time_json(h->l, x->ended_usec) : NULL;
        case COL_DURATION:      /* seconds */
                d = run_duration(h);
                if (d < 0)
                        return NULL;
                (void) snprintf(buf, sizeof buf, "%lld.%06lld", (long long) (d / 1000000),
                                (long long) (d % 1000000));
                return json_object_new_double_s((double) d / 1e6, buf);
        case COL_HOW:
                return json_string(how_name(x->how));
        case COL_EXIT:
                return x->exit_status >= 0 ? json_object_new_int(x->exit_status) : NULL;
        case COL_SIGNAL:
                return x->signal > 0 ? json_string(signal_name(x->signal, buf, sizeof buf)) : NULL;
        case COL_FLAGS: {
                json_object *v = json_object_new_array();
                for (size_t i = 0; v && i < ELEMENTSOF(flag_names); i++)
                        if (x->flags & flag_names[i].flag)
                                json_object_array_add(v, json_string(flag_names[i].name));
                return v;
        }
        }
        return NULL;
}

int command_history(const struct cli *c) {
        struct table t = { .json_name = "runs" };
        struct lister l;
        hc_run *runs = NULL;
        int n, r;

        if (c->fleet)
                return usage_error("'history' is not available with --fleet: each host keeps its own");
        if (select_columns(c, IN_HISTORY, c->json ? default_history_json : default_history_text, &t.sel) != 0)
                return EXIT_USAGE;
        n = hc_history(c->name, CLI_OPTIONS(c), &runs);
        if (n == -ENOENT)
                n = 0;                  /* as 'list': a region never made has no runs */
        if (n < 0)
                return region_failure(c, "read the history of", n);

        lister_init(&l, c);
        r = table_new(&t, c);
        for (int i = 0; r >= 0 && i < n; i++) {
                struct hrow row = { .l = &l, .run = &runs[i] };
                r = table_add(&t, &row, history_text, history_json);
        }
        r = table_finish(&t, r);
        free(runs);
        if (r < 0) {
                message_error("cannot print the history of '%s': %s", c->name, strerror(-r));
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}

/* ---- names ---- */

struct entry {
        char *name;
        int count;              /* or a negative error code */
        int capacity;           /* or a negative error code */
};

struct entries {
        struct entry *v;
        size_t n, allocated;
};

static int collect(const char *name, int count, void *userdata) {
        struct entries *e = userdata;

        if (e->n == e->allocated) {
                size_t a = e->allocated ? 2 * e->allocated : 16;
                struct entry *v = realloc(e->v, a * sizeof *v);
                if (!v)
                        return -ENOMEM;
                e->v = v;
                e->allocated = a;
        }
        e->v[e->n] = (struct entry) { strdup(name), count, -ENODATA };
        if (!e->v[e->n].name)
                return -ENOMEM;
        e->n++;
        return 0;
}

static int entry_compare(const void *a, const void *b) {
        return strcmp(((const struct entry *) a)->name, ((const struct entry *) b)->name);
}

/* Each region's capacity, from a look that creates nothing (root's may look at a region of
 * another user, read-only, as hc_list() does). */
static void find_capacities(const struct cli *c, struct entries *e) {
        for (size_t i = 0; i < e->n; i++) {
                hc_region *rg = NULL;

                if (e->v[i].count < 0)
                        continue;
                e->v[i].capacity = hc_region_open(e->v[i].name,
                                                  CLI_OPTIONS(c, .flags = HC_NO_CREATE |
                                                                 HC_ANY_OWNER), &rg);
                if (e->v[i].capacity >= 0)
                        e->v[i].capacity = (int) hc_region_capacity(rg);
                hc_region_close(rg);
        }
}

static const char *names_text(void *row, int col, char *buf, size_t size) {
        const struct entry *x = row;

        if (col == COL_NAME)
                return x->name;
        if (col == COL_COUNT && x->count >= 0)
                (void) snprintf(buf, size, "%d", x->count);
        else if (col == COL_CAPACITY && x->capacity >= 0)
                (void) snprintf(buf, size, "%d", x->capacity);
        else
                return NULL;
        return buf;
}

static json_object *names_json(void *row, int col) {
        const struct entry *x = row;

        if (col == COL_NAME)
                return json_string(x->name);
        if (col == COL_COUNT && x->count >= 0)
                return json_object_new_int(x->count);
        if (col == COL_CAPACITY && x->capacity >= 0)
                return json_object_new_int(x->capacity);
        return NULL;
}

/* Warnings 'names' prints, one per file that is no region, before it only counts them. */
#define NAMES_WARNINGS_MAX 3

int command_names(const struct cli *c) {
        size_t skipped = 0;
        struct entries e = {};
        struct table t = { .json_name = "regions" };
        char dir[4096];
        int r, ret = EXIT_SUCCESS;

        if (select_columns(c, IN_NAMES, c->fleet ? default_names_fleet : default_names,
                           &t.sel) != 0)
                return EXIT_USAGE;

        r = hc_names(CLI_OPTIONS(c), collect, &e);
        if (r < 0 && c->fleet) {
                ret = region_failure(c, "list the names", r);
                goto finish;
        }
        if (r < 0 && r != -ENOENT) {   /* no directory yet: no regions */
                if (hc_scope_dir(CLI_OPTIONS(c), dir, sizeof dir) < 0)
                        strcpy(dir, "?");
                message_error("cannot list regions in '%s': %s", dir, strerror(-r));
                ret = EXIT_FAILURE;
                goto finish;
        }
        if (e.n > 0)                   /* qsort() wants an array, even of none */
                qsort(e.v, e.n, sizeof *e.v, entry_compare);
        for (size_t i = 0; i < t.sel.n; i++)
                if (t.sel.cols[i] == COL_CAPACITY && !c->fleet) {
                        find_capacities(c, &e);
                        break;
                }

        r = table_new(&t, c);
        for (size_t i = 0; r >= 0 && i < e.n; i++) {
                struct entry *x = &e.v[i];

                /* One file that cannot be read does not hide the others: it is named,
                 * once, and skipped (JSON has it, with a null count). Anyone may plant
                 * files in the system scope, so only the first few are named, and a summary
                 * line counts the rest. */
                bool named = x->count >= 0 || ++skipped <= NAMES_WARNINGS_MAX;

                if (named && x->count == -EBADMSG)
                        message_error("warning: '%s' is not a headcount region (empty, left by "
                                      "another program, or damaged); skipped. Remove it when "
                                      "nothing uses it", x->name);
                else if (named && x->count < 0)
                        message_error("warning: cannot count region '%s': %s; skipped", x->name,
                                      strerror(-x->count));
                if (x->count >= 0 || c->json)
                        r = table_add(&t, x, names_text, names_json);
        }
        if (skipped > NAMES_WARNINGS_MAX)
                message_error("warning: ... and %zu more files that are not regions (or cannot be "
                              "counted); skipped", skipped - NAMES_WARNINGS_MAX);
        r = table_finish(&t, r);
        if (r < 0) {
                message_error("cannot print the regions: %s", strerror(-r));
                ret = EXIT_FAILURE;
        }
finish:
        for (size_t i = 0; i < e.n; i++)
                free(e.v[i].name);
        free(e.v);
        return ret;
}
