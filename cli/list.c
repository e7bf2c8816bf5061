/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * 'list' and 'names': who is in a region and which regions there are, as tab-separated
 * lines or as JSON built with json-c.
 *
 * A tag may hold any byte but NUL, and in a region that others may write, so may the
 * whole record. In the text format a tag must stay on its line and in its column and send
 * no control sequence to a terminal: escape_text() writes control characters (C1 and DEL
 * included), backslashes and invalid UTF-8 as C escapes. json-c escapes only the C0
 * controls and copies every other byte, so that a tag that is not UTF-8 would make invalid
 * JSON and a C1 control would reach the terminal raw: our strings are written by
 * escape_json() instead.
 *
 * The PID column says how far the PID can be believed: "1234?" when another user may have
 * written the record (HC_INSTANCE_UNVERIFIED), "2*" when it is from another PID namespace.
 * A script that passes the column to kill(1) then fails instead of signalling a stranger.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <json-c/printbuf.h>

#include "cli.h"
#include "escape.h"
#include "instance.h"

/* The join time as RFC 3339 in UTC, or NULL when there is none. */
static const char *format_time(int64_t usec, char *buf, size_t len) {
        time_t t = (time_t) (usec / 1000000);
        struct tm tm;

        if (usec <= 0 || !gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return NULL;
        return buf;
}

static int print_json(json_object *o) {
        const char *s;

        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                              JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s) {
                message_error("cannot format JSON: %s", strerror(ENOMEM));
                return EXIT_FAILURE;
        }
        puts(s);
        return EXIT_SUCCESS;
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
        json_object *o = json_object_new_string(s);

        if (o)
                json_object_set_serializer(o, string_to_json, NULL, NULL);
        return o;
}

static json_object *instance_json(const hc_instance *in) {
        char when[64];
        json_object *o = json_object_new_object();
        bool record = !(in->flags & HC_INSTANCE_NO_RECORD);
        const char *t = record ? format_time(in->joined_usec, when, sizeof when) : NULL;

        json_object_object_add(o, "slot", json_object_new_int64(in->slot));
        json_object_object_add(o, "pid", record ? json_object_new_int64(in->pid) : NULL);
        json_object_object_add(o, "uid", record ? json_object_new_int64(in->uid) : NULL);
        json_object_object_add(o, "seq", record ? json_object_new_int64((int64_t) in->seq) : NULL);
        json_object_object_add(o, "joined", t ? json_string(t) : NULL);
        json_object_object_add(o, "tag", record ? json_string(in->tag) : NULL);
        json_object_object_add(o, "verified", json_object_new_boolean(instance_verified(in)));
        if (in->flags & HC_INSTANCE_OTHER_PIDNS)
                json_object_object_add(o, "foreign_pid", json_object_new_boolean(1));
        return o;
}

/* The PID column: the PID, then '*' when it is from another PID namespace and '?' when
 * another user may have written it. */
static const char *pid_column(const hc_instance *in, char *buf, size_t size) {
        (void) snprintf(buf, size, "%d%s%s", (int) in->pid,
                        in->flags & HC_INSTANCE_OTHER_PIDNS ? "*" : "",
                        instance_verified(in) ? "" : "?");
        return buf;
}

int command_list(const struct cli *c) {
        hc_instance *list = NULL;
        json_object *array = NULL;
        int n, r = EXIT_SUCCESS;

        n = hc_list(c->name, CLI_OPTIONS(c), &list);
        if (n == -ENOENT)
                n = 0;                  /* as 'count': nobody is in a region never created */
        if (n < 0)
                return cli_failure(c, n, "cannot list region '%s'", c->name);

        if (c->json)
                array = json_object_new_array();
        for (int i = 0; i < n; i++) {
                const hc_instance *in = &list[i];
                char when[64], pid[32], tag[ESCAPE_TEXT_SIZE(HC_TAG_MAX)];
                const char *t;

                if (array) {
                        json_object_array_add(array, instance_json(in));
                        continue;
                }
                if (in->flags & HC_INSTANCE_NO_RECORD) {
                        printf("%u\t-\t-\t-\t-\t\n", in->slot);
                        continue;
                }
                t = format_time(in->joined_usec, when, sizeof when);
                printf("%u\t%s\t%u\t%llu\t%s\t%s\n", in->slot, pid_column(in, pid, sizeof pid),
                       (unsigned) in->uid, (unsigned long long) in->seq, t ? t : "-",
                       escape_text(in->tag, tag, sizeof tag));
        }
        if (array) {
                r = print_json(array);
                json_object_put(array);
        }
        free(list);
        return r;
}

/* ---- names ---- */

struct entry {
        char *name;
        int count;              /* or a negative error code */
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
        e->v[e->n].name = strdup(name);
        if (!e->v[e->n].name)
                return -ENOMEM;
        e->v[e->n++].count = count;
        return 0;
}

static int entry_compare(const void *a, const void *b) {
        return strcmp(((const struct entry *) a)->name, ((const struct entry *) b)->name);
}

int command_names(const struct cli *c) {
        struct entries e = {};
        json_object *array = NULL;
        char dir[4096];
        int r, ret = EXIT_SUCCESS;

        r = hc_names(CLI_OPTIONS(c), collect, &e);
        if (r < 0 && c->fleet) {
                ret = cli_failure(c, r, "cannot list the names");
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

        if (c->json)
                array = json_object_new_array();
        for (size_t i = 0; i < e.n; i++) {
                const struct entry *x = &e.v[i];

                /* One file that cannot be read does not hide the others: it is named,
                 * once, and skipped (JSON carries its error). */
                if (x->count == -EBADMSG)
                        message_error("warning: '%s' is not a headcount region (empty, left by "
                                      "another program, or damaged); skipped. Remove it when "
                                      "nothing uses it", x->name);
                else if (x->count < 0)
                        message_error("warning: cannot count region '%s': %s; skipped", x->name,
                                      strerror(-x->count));
                if (array) {
                        json_object *o = json_object_new_object();

                        json_object_object_add(o, "name", json_string(x->name));
                        json_object_object_add(o, "count", x->count >= 0 ?
                                               json_object_new_int(x->count) : NULL);
                        if (x->count < 0)
                                json_object_object_add(o, "error",
                                                       json_string(strerror(-x->count)));
                        json_object_array_add(array, o);
                } else if (x->count >= 0) {
                        /* the library lists valid names only; a terminal need not rely on it */
                        char name[ESCAPE_TEXT_SIZE(HC_NAME_MAX)];

                        printf("%s\t%d\n", escape_text(x->name, name, sizeof name), x->count);
                }
        }
        if (array) {
                if (print_json(array) != EXIT_SUCCESS)
                        ret = EXIT_FAILURE;
                json_object_put(array);
        }
finish:
        for (size_t i = 0; i < e.n; i++)
                free(e.v[i].name);
        free(e.v);
        return ret;
}
