/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * 'list' and 'names': who is in a region and which regions there are, as tab-separated
 * lines or as JSON built with json-c.
 *
 * A tag may hold any byte but NUL. json-c escapes control characters but copies other
 * bytes as they are, so a tag that is not UTF-8 would make invalid JSON: we replace each
 * invalid sequence with U+FFFD first. In the text format a tag must also stay on its line
 * and in its column: control bytes, backslashes and invalid sequences are written as C
 * escapes (\t, \n, \\, \xHH).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cli.h"

/* Length of the valid UTF-8 sequence at S (at most LEN bytes), or 0 when it is invalid. */
static size_t utf8_sequence(const unsigned char *s, size_t len) {
        uint32_t cp;
        size_t n;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                n = 2, cp = s[0] & 0x1f;
        else if (s[0] >= 0xe0 && s[0] <= 0xef)
                n = 3, cp = s[0] & 0x0f;
        else if (s[0] >= 0xf0 && s[0] <= 0xf4)
                n = 4, cp = s[0] & 0x07;
        else
                return 0;
        if (n > len)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (s[i] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;               /* overlong, out of range, or a surrogate */
        return n;
}

/* TAG as valid UTF-8: each invalid byte becomes U+FFFD. BUF holds 3 bytes per input byte. */
static const char *utf8_sanitize(const char *tag, char *buf) {
        const unsigned char *s = (const unsigned char *) tag;
        size_t len = strlen(tag), o = 0;

        for (size_t i = 0; i < len;) {
                size_t n = utf8_sequence(s + i, len - i);

                if (n == 0) {
                        memcpy(buf + o, "\xef\xbf\xbd", 3);
                        o += 3;
                        i++;
                } else {
                        memcpy(buf + o, s + i, n);
                        o += n;
                        i += n;
                }
        }
        buf[o] = '\0';
        return buf;
}

/* TAG for one tab-separated column. BUF holds 4 bytes per input byte. */
static const char *text_escape(const char *tag, char *buf) {
        const unsigned char *s = (const unsigned char *) tag;
        size_t len = strlen(tag), o = 0;

        for (size_t i = 0; i < len;) {
                size_t n = utf8_sequence(s + i, len - i);

                if (n > 1 || (n == 1 && s[i] >= 0x20 && s[i] != 0x7f && s[i] != '\\')) {
                        memcpy(buf + o, s + i, n);
                        o += n;
                        i += n;
                        continue;
                }
                if (s[i] == '\\')
                        o += (size_t) sprintf(buf + o, "\\\\");
                else if (s[i] == '\t')
                        o += (size_t) sprintf(buf + o, "\\t");
                else if (s[i] == '\n')
                        o += (size_t) sprintf(buf + o, "\\n");
                else
                        o += (size_t) sprintf(buf + o, "\\x%02x", s[i]);
                i++;
        }
        buf[o] = '\0';
        return buf;
}

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
                log_error("cannot format JSON: %s", strerror(ENOMEM));
                return EXIT_FAILURE;
        }
        puts(s);
        return EXIT_SUCCESS;
}

static json_object *instance_json(const hc_instance *in) {
        char when[64], tag[3 * HC_TAG_MAX + 1];
        json_object *o = json_object_new_object();
        bool record = !(in->flags & HC_INSTANCE_NO_RECORD);
        const char *t = record ? format_time(in->joined_usec, when, sizeof when) : NULL;

        json_object_object_add(o, "slot", json_object_new_int64(in->slot));
        json_object_object_add(o, "pid", record ? json_object_new_int64(in->pid) : NULL);
        json_object_object_add(o, "uid", record ? json_object_new_int64(in->uid) : NULL);
        json_object_object_add(o, "seq", record ? json_object_new_int64((int64_t) in->seq) : NULL);
        json_object_object_add(o, "joined", t ? json_object_new_string(t) : NULL);
        json_object_object_add(o, "tag", record ?
                               json_object_new_string(utf8_sanitize(in->tag, tag)) : NULL);
        if (in->flags & HC_INSTANCE_OTHER_PIDNS)
                json_object_object_add(o, "foreign_pid", json_object_new_boolean(1));
        return o;
}

int command_list(const struct cli *c) {
        hc_instance *list = NULL;
        json_object *array = NULL;
        int n, r = EXIT_SUCCESS;

        n = hc_list(c->name, CLI_OPTIONS(c), &list);
        if (n == -ENOENT)
                n = 0;                  /* as 'count': nobody is in a region never created */
        if (n < 0) {
                log_error("cannot list region '%s': %s", c->name, strerror(-n));
                return EXIT_FAILURE;
        }

        if (c->json)
                array = json_object_new_array();
        for (int i = 0; i < n; i++) {
                const hc_instance *in = &list[i];
                char when[64], tag[4 * HC_TAG_MAX + 1];
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
                printf("%u\t%d\t%u\t%llu\t%s\t%s\n", in->slot, (int) in->pid, (unsigned) in->uid,
                       (unsigned long long) in->seq, t ? t : "-", text_escape(in->tag, tag));
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
        if (r < 0 && r != -ENOENT) {   /* no directory yet: no regions */
                if (hc_scope_dir(CLI_OPTIONS(c), dir, sizeof dir) < 0)
                        strcpy(dir, "?");
                log_error("cannot list regions in '%s': %s", dir, strerror(-r));
                ret = EXIT_FAILURE;
                goto finish;
        }
        if (e.n > 0)                   /* qsort() wants an array, even of none */
                qsort(e.v, e.n, sizeof *e.v, entry_compare);

        if (c->json)
                array = json_object_new_array();
        for (size_t i = 0; i < e.n; i++) {
                const struct entry *x = &e.v[i];

                if (x->count < 0) {
                        log_error("cannot count region '%s': %s", x->name, strerror(-x->count));
                        ret = EXIT_FAILURE;
                }
                if (array) {
                        json_object *o = json_object_new_object();

                        json_object_object_add(o, "name", json_object_new_string(x->name));
                        json_object_object_add(o, "count", x->count >= 0 ?
                                               json_object_new_int(x->count) : NULL);
                        if (x->count < 0)
                                json_object_object_add(o, "error",
                                                       json_object_new_string(strerror(-x->count)));
                        json_object_array_add(array, o);
                } else if (x->count >= 0)
                        printf("%s\t%d\n", x->name, x->count);
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
