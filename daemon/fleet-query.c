/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fleet agent's key layout and the requests that do not take a seat: COUNT, LIST,
 * NAMES, WAIT and REMOVE on the socket, FleetCount and FleetNames on D-Bus. Each is one
 * etcd request (WAIT: a count, then the name's shared watch). Keys, under the prefix:
 *   NAME/max                           N in decimal, no lease
 *   NAME/s/HOST/BOOTID/PID.SERIAL      a seat: JSON {host, pid, uid, joined_usec, tag}
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "fleet.h"
#include "log.h"

struct FleetBusCall {
        Fleet *fleet;
        uint64_t id;                     /* the bridge's id of the D-Bus call */
        EtcdCall *call;
        struct FleetBusCall *next, *prev;
};

char *fleet_key(const Fleet *f, const char *name, const char *suffix) {
        char *k = NULL;

        return asprintf(&k, "%s%s%s", f->prefix, name, suffix) < 0 ? NULL : k;
}

int64_t json_int(json_object *o, const char *field) {
        json_object *v = NULL;

        if (!o || !json_object_object_get_ex(o, field, &v))
                return 0;                       /* etcd leaves zero values out */
        return json_object_get_int64(v);
}

/* A unary call to a streaming method (the keepalive) answers {"result": {...}}. */
json_object *json_unwrap_result(json_object *reply) {
        json_object *r = NULL;

        if (reply && json_object_object_get_ex(reply, "result", &r) &&
            json_object_is_type(r, json_type_object))
                return r;
        return reply;
}

json_object *fleet_range_request(const char *key, bool prefix, bool count_only,
                                 int64_t max_create_revision) {
        _cleanup_free_ char *k = etcd_base64(key, strlen(key));
        _cleanup_free_ char *end = prefix ? etcd_prefix_end_base64(key) : NULL;
        json_object *req;

        if (!k || (prefix && !end))
                return NULL;
        req = json_object_new_object();
        json_object_object_add(req, "key", json_object_new_string(k));
        if (end)
                json_object_object_add(req, "range_end", json_object_new_string(end));
        if (count_only)
                json_object_object_add(req, "count_only", json_object_new_boolean(true));
        if (max_create_revision > 0)
                json_object_object_add(req, "max_create_revision",
                                       json_object_new_int64(max_create_revision));
        return req;
}

/*
 * Reads NAME's seat keys (LIST: all of them, by create revision; else a count) and its
 * /max in one transaction, for fleet_held(). Keys beyond the N-th belong to joiners
 * that wait (or are about to hear BUSY): they hold no seat, and count for nothing.
 */
json_object *fleet_count_request(Fleet *f, const char *name, bool list) {
        _cleanup_free_ char *k = fleet_key(f, name, "/s/"), *m = fleet_key(f, name, "/max");
        json_object *req, *ops, *seats, *max, *op;

        if (!k || !m)
                return NULL;
        seats = fleet_range_request(k, true, !list, 0);
        max = fleet_range_request(m, false, false, 0);
        if (!seats || !max) {
                json_object_put(seats);
                json_object_put(max);
                return NULL;
        }
        if (list) {
                json_object_object_add(seats, "sort_order", json_object_new_string("ASCEND"));
                json_object_object_add(seats, "sort_target", json_object_new_string("CREATE"));
        }
        req = json_object_new_object();
        ops = json_object_new_array();
        op = json_object_new_object();
        json_object_object_add(op, "request_range", seats);
        json_object_array_add(ops, op);
        op = json_object_new_object();
        json_object_object_add(op, "request_range", max);
        json_object_array_add(ops, op);
        json_object_object_add(req, "success", ops);
        return req;
}

/* From a fleet_count_request() answer: the seats held, min(keys, N); the seat range in
 * *RET_SEATS (borrowed). */
int64_t fleet_held(json_object *reply, json_object **ret_seats) {
        json_object *rs = NULL, *seats = NULL, *maxr = NULL, *kvs = NULL, *v = NULL;
        _cleanup_free_ char *text = NULL;
        int64_t count, max = 0;
        size_t len;

        if (json_object_object_get_ex(reply, "responses", &rs)) {
                (void) json_object_object_get_ex(json_object_array_get_idx(rs, 0),
                                                 "response_range", &seats);
                (void) json_object_object_get_ex(json_object_array_get_idx(rs, 1),
                                                 "response_range", &maxr);
        }
        count = json_int(seats, "count");
        if (json_object_object_get_ex(maxr, "kvs", &kvs) &&
            json_object_object_get_ex(json_object_array_get_idx(kvs, 0), "value", &v) &&
            etcd_unbase64(json_object_get_string(v), &text, &len) == 0)
                max = strtoll(text, NULL, 10);
        if (ret_seats)
                *ret_seats = seats;
        return max > 0 && count > max ? max : count;
}

/*
 * Lists (keys only) the seat keys of NAME created at or before MAX_CREATE_REVISION: the
 * rank is how many come back. Not a count-only range: etcd (3.4, 3.5) applies the
 * revision filters to the keys it returns, but its "count" is that of the whole range.
 */
json_object *fleet_rank_request(Fleet *f, const char *name, int64_t max_create_revision) {
        _cleanup_free_ char *k = fleet_key(f, name, "/s/");
        json_object *req = k ? fleet_range_request(k, true, false, max_create_revision) : NULL;

        if (req)
                json_object_object_add(req, "keys_only", json_object_new_boolean(true));
        return req;
}

/* The number of keys a range answered with. */
int64_t json_kvs_length(json_object *reply) {
        json_object *kvs = NULL;

        if (!json_object_object_get_ex(reply, "kvs", &kvs) ||
            !json_object_is_type(kvs, json_type_array))
                return 0;
        return (int64_t) json_object_array_length(kvs);
}

static bool fleet_name_valid(const char *name) {
        return name && hc_name_valid(name) == 0 && !strchr(name, '\\');
}

static bool parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *ret) {
        char *end;
        unsigned long v;

        if (!s || *s < '0' || *s > '9')
                return false;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return false;
        *ret = v;
        return true;
}

/* Sends ERR for an etcd failure, and lets the connection read again. */
static void query_failed(FleetConn *c, int r, const char *error) {
        fleet_set_error(c->fleet, r, error);
        fleet_conn_senderr(c, fleet_error_errno(r), "%s", fleet_error_text(c->fleet));
        fleet_conn_done(c);
}

static void on_count(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        FleetConn *c = userdata;
        char n[24];

        c->call = NULL;
        if (r < 0) {
                query_failed(c, r, error);
                return;
        }
        (void) snprintf(n, sizeof n, "%" PRIi64, fleet_held(reply, NULL));
        fleet_conn_send(c, "OK", n, (char *) NULL);
        fleet_conn_done(c);
}

/* One LIST line from a seat key and its record. */
static void list_line(FleetConn *c, unsigned rank, json_object *kv) {
        json_object *o = NULL, *rec = NULL;
        _cleanup_free_ char *value = NULL, *tag = NULL;
        char srank[16], fence[24], pid[24], uid[24], joined[24];
        const char *host = "";
        size_t len;

        if (json_object_object_get_ex(kv, "value", &o) &&
            etcd_unbase64(json_object_get_string(o), &value, &len) == 0)
                rec = json_tokener_parse(value);
        if (json_object_object_get_ex(rec, "host", &o))
                host = json_object_get_string(o);
        if (json_object_object_get_ex(rec, "tag", &o))
                (void) etcd_unbase64(json_object_get_string(o), &tag, &len);
        (void) snprintf(srank, sizeof srank, "%u", rank);
        (void) snprintf(fence, sizeof fence, "%" PRIi64, json_int(kv, "create_revision"));
        (void) snprintf(pid, sizeof pid, "%" PRIi64, json_int(rec, "pid"));
        (void) snprintf(uid, sizeof uid, "%" PRIi64, json_int(rec, "uid"));
        (void) snprintf(joined, sizeof joined, "%" PRIi64, json_int(rec, "joined_usec"));
        fleet_conn_send(c, "I", srank, fence, host, pid, uid, joined, tag ? tag : "", (char *) NULL);
        json_object_put(rec);
}

static void on_list(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        FleetConn *c = userdata;
        json_object *seats = NULL, *kvs = NULL;
        size_t n = 0;
        char sn[24];

        c->call = NULL;
        if (r < 0) {
                query_failed(c, r, error);
                return;
        }
        n = (size_t) fleet_held(reply, &seats);         /* the holders come first */
        if (!json_object_object_get_ex(seats, "kvs", &kvs) ||
            !json_object_is_type(kvs, json_type_array))
                n = 0;
        else if (n > json_object_array_length(kvs))
                n = json_object_array_length(kvs);
        for (size_t i = 0; i < n; i++)
                list_line(c, (unsigned) i, json_object_array_get_idx(kvs, i));
        (void) snprintf(sn, sizeof sn, "%zu", n);
        fleet_conn_send(c, "END", sn, (char *) NULL);
        fleet_conn_done(c);
}

typedef void (*name_cb)(const char *name, unsigned count, unsigned long max, void *userdata);

/*
 * Walks a range over the whole prefix (sorted by key, etcd's default): each NAME/max key
 * is a name, and the NAME/s/ keys that follow it are its seats. Calls CB per name.
 */
static size_t names_walk(Fleet *f, json_object *reply, name_cb cb, void *userdata) {
        size_t plen = strlen(f->prefix), found = 0;
        json_object *kvs = NULL;
        char name[HC_NAME_MAX + 1] = "";
        unsigned long max = 0;
        unsigned count = 0;
        bool have = false;

        if (!json_object_object_get_ex(reply, "kvs", &kvs) ||
            !json_object_is_type(kvs, json_type_array))
                return 0;
        for (size_t i = 0; i <= json_object_array_length(kvs); i++) {
                json_object *kv = json_object_array_get_idx(kvs, i), *o = NULL;
                _cleanup_free_ char *key = NULL, *value = NULL;
                const char *rest, *slash;
                size_t len, nlen;

                if (kv && (!json_object_object_get_ex(kv, "key", &o) ||
                           etcd_unbase64(json_object_get_string(o), &key, &len) < 0 ||
                           len <= plen))
                        continue;
                rest = kv ? key + plen : NULL;
                slash = rest ? strchr(rest, '/') : NULL;
                nlen = slash ? (size_t) (slash - rest) : 0;
                if (have && (!kv || !slash || nlen != strlen(name) ||
                             strncmp(rest, name, nlen) != 0)) {
                        cb(name, count, max, userdata);         /* the name's keys ended */
                        found++;
                        have = false;
                }
                if (!kv || !slash || nlen == 0 || nlen > HC_NAME_MAX)
                        continue;
                if (strcmp(slash, "/max") == 0 && !have &&
                    json_object_object_get_ex(kv, "value", &o) &&
                    etcd_unbase64(json_object_get_string(o), &value, &len) == 0) {
                        memcpy(name, rest, nlen);
                        name[nlen] = '\0';
                        max = strtoul(value, NULL, 10);
                        count = 0;
                        have = fleet_name_valid(name);
                } else if (have && strncmp(slash, "/s/", 3) == 0)
                        count++;
        }
        return found;
}

/* (A name's keys are adjacent in key order: they all start with "NAME/".) */
static void names_line(const char *name, unsigned count, unsigned long max, void *userdata) {
        char c[16], m[24];

        (void) snprintf(c, sizeof c, "%lu", max > 0 && count > max ? max : count);
        (void) snprintf(m, sizeof m, "%lu", max);
        fleet_conn_send(userdata, "N", name, c, m, (char *) NULL);
}

static void on_names(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        FleetConn *c = userdata;
        char n[24];

        c->call = NULL;
        if (r < 0) {
                query_failed(c, r, error);
                return;
        }
        (void) snprintf(n, sizeof n, "%zu", names_walk(c->fleet, reply, names_line, c));
        fleet_conn_send(c, "END", n, (char *) NULL);
        fleet_conn_done(c);
}

static void on_remove(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        FleetConn *c = userdata;
        json_object *o = NULL, *rs = NULL, *d = NULL;
        const char *name = c->query_name;

        c->call = NULL;
        if (r < 0) {
                query_failed(c, r, error);
                return;
        }
        json_object_object_get_ex(reply, "responses", &rs);
        if (!json_object_object_get_ex(reply, "succeeded", &o) || !json_object_get_boolean(o)) {
                if (json_object_object_get_ex(json_object_array_get_idx(rs, 0), "response_range", &d))
                        fleet_conn_senderr(c, EBUSY, "fleet name '%s' has %" PRIi64 " seat%s "
                                           "held", name, json_int(d, "count"),
                                           json_int(d, "count") == 1 ? "" : "s");
                else
                        fleet_conn_senderr(c, EBUSY, "fleet name '%s' has seats held", name);
        } else if (json_object_object_get_ex(json_object_array_get_idx(rs, 0),
                                             "response_delete_range", &d) &&
                   json_int(d, "deleted") > 0)
                fleet_conn_send(c, "OK", (char *) NULL);
        else
                fleet_conn_senderr(c, ENOENT, "no fleet name '%s'", name);
        fleet_conn_done(c);
}

/* One transaction: no seat key of the name exists -> delete NAME/max. */
static json_object *remove_request(Fleet *f, const char *name) {
        _cleanup_free_ char *seats = fleet_key(f, name, "/s/"), *max = fleet_key(f, name, "/max");
        _cleanup_free_ char *s64 = NULL, *end = NULL, *m64 = NULL;
        json_object *req, *cmp, *arr, *op, *del;

        if (!seats || !max)
                return NULL;
        s64 = etcd_base64(seats, strlen(seats));
        end = etcd_prefix_end_base64(seats);
        m64 = etcd_base64(max, strlen(max));
        if (!s64 || !end || !m64)
                return NULL;
        req = json_object_new_object();
        cmp = json_object_new_object();
        json_object_object_add(cmp, "key", json_object_new_string(s64));
        json_object_object_add(cmp, "range_end", json_object_new_string(end));
        json_object_object_add(cmp, "target", json_object_new_string("CREATE"));
        json_object_object_add(cmp, "result", json_object_new_string("EQUAL"));
        json_object_object_add(cmp, "create_revision", json_object_new_int64(0));
        arr = json_object_new_array();
        json_object_array_add(arr, cmp);
        json_object_object_add(req, "compare", arr);
        del = json_object_new_object();
        json_object_object_add(del, "key", json_object_new_string(m64));
        op = json_object_new_object();
        json_object_object_add(op, "request_delete_range", del);
        arr = json_object_new_array();
        json_object_array_add(arr, op);
        json_object_object_add(req, "success", arr);
        op = json_object_new_object();
        json_object_object_add(op, "request_range", fleet_range_request(seats, true, true, 0));
        arr = json_object_new_array();
        json_object_array_add(arr, op);
        json_object_object_add(req, "failure", arr);
        return req;
}

static int on_wait_deadline(sd_event_source *es, uint64_t usec, void *userdata) {
        FleetConn *c = userdata;

        fleet_conn_send(c, "TIMEDOUT", (char *) NULL);
        fleet_conn_done(c);                     /* ends the wait */
        return 0;
}

/* The name was counted (for WAIT, after the wait began): answer the waiters it satisfies. */
void fleet_name_counted(FleetName *n, int r) {
        FleetConn *next;
        char s[24];

        (void) snprintf(s, sizeof s, "%" PRIi64, n->count);
        for (FleetConn *c = n->fleet->conns; c; c = next) {
                next = c->next;
                if (c->wait_name != n)
                        continue;
                if (r < 0 && c->wait_fresh)
                        query_failed(c, r, NULL);
                else if (r < 0)
                        continue;
                else if (n->count < (int64_t) c->wait_below) {
                        fleet_conn_send(c, "OK", s, (char *) NULL);
                        fleet_conn_done(c);
                } else if (!c->timer && c->wait_forever == false) {
                        fleet_conn_send(c, "TIMEDOUT", (char *) NULL);
                        fleet_conn_done(c);
                } else
                        c->wait_fresh = false;
        }
}

static int query_wait(FleetConn *c, const char *name, unsigned long below, long timeout_ms) {
        Fleet *f = c->fleet;

        c->wait_name = fleet_name_ref(f, name);
        if (!c->wait_name)
                return -ENOMEM;
        c->wait_below = (unsigned) below;
        c->wait_fresh = true;
        c->wait_forever = timeout_ms < 0;
        if (timeout_ms > 0 &&
            sd_event_add_time_relative(f->event, &c->timer, CLOCK_MONOTONIC,
                                       (uint64_t) timeout_ms * 1000, 0, on_wait_deadline, c) < 0)
                return -ENOMEM;
        fleet_name_recount(c->wait_name, false);
        return 0;
}

int fleet_query_start(FleetConn *c, char **fields, size_t n) {
        Fleet *f = c->fleet;
        const char *cmd = fields[0], *path = "/v3/kv/range";
        etcd_callback_t cb = NULL;
        json_object *req = NULL;
        unsigned long below, t = 0;
        int r;

        if (strcmp(cmd, "STATUS") == 0 && n == 1) {
                fleet_conn_status(c);
                return 0;
        }
        if (strcmp(cmd, "NAMES") == 0 && n == 1) {
                req = fleet_range_request(f->prefix, true, false, 0);
                cb = on_names;
        } else if (n < 2 || !fleet_name_valid(fields[1])) {
                fleet_conn_senderr(c, EINVAL, n < 2 ? "malformed request" :
                                   "invalid fleet name: a name is 1 to %d bytes of "
                                   "[A-Za-z0-9._-] and does not start with '.'", HC_NAME_MAX);
                return 0;
        } else if (strcmp(cmd, "COUNT") == 0 && n == 2) {
                req = fleet_count_request(f, fields[1], false);
                path = "/v3/kv/txn";
                cb = on_count;
        } else if (strcmp(cmd, "LIST") == 0 && n == 2) {
                req = fleet_count_request(f, fields[1], true);
                path = "/v3/kv/txn";
                cb = on_list;
        } else if (strcmp(cmd, "REMOVE") == 0 && n == 2) {
                req = remove_request(f, fields[1]);
                path = "/v3/kv/txn";
                cb = on_remove;
        } else if (strcmp(cmd, "WAIT") == 0 && n == 4) {
                if (!parse_uint(fields[2], 1, UINT32_MAX, &below) ||
                    (strcmp(fields[3], "-1") != 0 && !parse_uint(fields[3], 0, INT32_MAX, &t))) {
                        fleet_conn_senderr(c, EINVAL, "malformed WAIT request");
                        return 0;
                }
                r = query_wait(c, fields[1], below, strcmp(fields[3], "-1") == 0 ? -1 : (long) t);
                return r < 0 ? r : 1;
        } else {
                fleet_conn_senderr(c, EINVAL, "malformed request");
                return 0;
        }
        if (!req)
                return -ENOMEM;
        free(c->query_name);
        c->query_name = n >= 2 ? strdup(fields[1]) : NULL;
        r = etcd_call(f->etcd, path, req, cb, c, &c->call);
        json_object_put(req);
        if (r < 0) {
                c->call = NULL;
                return r;
        }
        return 1;                               /* answered later */
}

/* ---- D-Bus: FleetCount, FleetNames, for the main thread (fleet-bridge.c) ----------------- */

static void bus_call_free(struct FleetBusCall *b) {
        if (b->prev)
                b->prev->next = b->next;
        else
                b->fleet->bus_calls = b->next;
        if (b->next)
                b->next->prev = b->prev;
        b->call = etcd_call_cancel(b->call);
        free(b);
}

/* The agent stops: the calls still in flight hear it. */
void fleet_bus_calls_free(Fleet *f) {
        struct FleetBusCall *next;

        for (struct FleetBusCall *b = f->bus_calls; b; b = next) {
                next = b->next;
                fleet_bridge_post_answer(f->bridge, b->id, ESHUTDOWN, "the fleet agent stopped", 0);
                bus_call_free(b);
        }
}

static void bus_answer_error(struct FleetBusCall *b, int r, const char *error) {
        fleet_set_error(b->fleet, r, error);
        fleet_bridge_post_answer(b->fleet->bridge, b->id, fleet_error_errno(r),
                                 fleet_error_text(b->fleet), 0);
}

static void on_bus_count(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        struct FleetBusCall *b = userdata;

        b->call = NULL;
        if (r < 0)
                bus_answer_error(b, r, error);
        else
                fleet_bridge_post_answer(b->fleet->bridge, b->id, 0, NULL,
                                         (unsigned) fleet_held(reply, NULL));
        bus_call_free(b);
}

static void bus_names_append(const char *name, unsigned count, unsigned long max, void *userdata) {
        FleetBridgeNames **n = userdata;

        if (*n && fleet_bridge_names_add(*n, name, max > 0 && count > max ? (unsigned) max : count) < 0)
                *n = NULL;              /* out of memory: names_done() says so */
}

static void on_bus_names(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        struct FleetBusCall *b = userdata;
        FleetBridgeNames *n, *all;

        b->call = NULL;
        if (r < 0) {
                bus_answer_error(b, r, error);
                bus_call_free(b);
                return;
        }
        all = n = fleet_bridge_names_new(b->id);
        if (!all)
                fleet_bridge_post_answer(b->fleet->bridge, b->id, ENOMEM, "out of memory", 0);
        else {
                (void) names_walk(b->fleet, reply, bus_names_append, &n);
                fleet_bridge_names_done(b->fleet->bridge, all, n ? 0 : ENOMEM,
                                        n ? NULL : "out of memory");
        }
        bus_call_free(b);
}

static int bus_call_start(Fleet *f, uint64_t id, const char *path, json_object *req,
                          etcd_callback_t cb) {
        struct FleetBusCall *b;
        int r;

        if (!req)
                return -ENOMEM;
        if (f->stopping) {
                json_object_put(req);
                return -ESHUTDOWN;
        }
        b = calloc(1, sizeof *b);
        if (!b) {
                json_object_put(req);
                return -ENOMEM;
        }
        b->fleet = f;
        b->id = id;
        b->next = f->bus_calls;
        if (f->bus_calls)
                f->bus_calls->prev = b;
        f->bus_calls = b;
        r = etcd_call(f->etcd, path, req, cb, b, &b->call);
        json_object_put(req);
        if (r < 0) {
                b->call = NULL;
                bus_call_free(b);
                return r;
        }
        return 1;
}

/* The caller (the main thread) checked NAME; checked again, since it is cheap. */
int fleet_bus_count(Fleet *f, uint64_t id, const char *name) {
        if (!fleet_name_valid(name))
                return -EINVAL;
        return bus_call_start(f, id, "/v3/kv/txn", fleet_count_request(f, name, false),
                              on_bus_count);
}

int fleet_bus_names(Fleet *f, uint64_t id) {
        return bus_call_start(f, id, "/v3/kv/range",
                              fleet_range_request(f->prefix, true, false, 0), on_bus_names);
}
