/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fleet agent's key layout and the requests that do not take a seat: COUNT, LIST,
 * NAMES, WAIT and REMOVE on the socket, FleetCount and FleetNames on D-Bus. Each is one
 * etcd request (WAIT: a count, then the name's shared watch; CREATE and REMOVE: a read,
 * then a transaction guarded by what was read and checked). Keys, under the prefix:
 *   NAME/max                           JSON {max, owner, mode}: on the lease of the host
 *                                      whose join made it, or none (CREATE)
 *   NAME/s/HOST/BOOTID/PID.SERIAL      a seat: JSON {host, pid, verified, peer_pid, uid,
 *                                      user, joined_usec, tag}
 * Every request that names a name checks the caller's right to it (fleet-access.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "fleet-access.h"
#include "fleet.h"
#include "log.h"

struct FleetBusCall {
        Fleet *fleet;
        uint64_t id;                     /* the bridge's id of the D-Bus call */
        uid_t uid;                       /* the caller's euid, as the bus says; -1: unknown */
        char user[FLEET_USER_MAX + 1];   /* its name here, "" for none */
        char name[HC_NAME_MAX + 1];      /* FleetCount: the name */
        EtcdCall *call;
        struct FleetBusCall *next, *prev;
};

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
        fleet_lease_set_error(c->fleet->lease, r, error);
        fleet_conn_senderr(c, fleet_error_errno(r), "%s", fleet_lease_error_text(c->fleet->lease));
        fleet_conn_done(c);
}

/* False (and ERR EACCES sent) when the caller may not read the name REPLY defines. */
static bool may_read(FleetConn *c, json_object *reply) {
        char text[HC_NAME_MAX + 2 * FLEET_USER_MAX + 160];
        FleetDef d;

        if (fleet_reply_def(reply, &d) < 0 ||
            fleet_access_error(c->query_name ? c->query_name : "", c->uid, fleet_conn_user(c),
                               &d, FLEET_ACCESS_READ, text, sizeof text) == 0)
                return true;
        fleet_conn_senderr(c, EACCES, "%s", text);
        fleet_conn_done(c);
        return false;
}

static void on_count(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        FleetConn *c = userdata;
        char n[24];

        c->call = NULL;
        if (r < 0) {
                query_failed(c, r, error);
                return;
        }
        if (!may_read(c, reply))
                return;
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
        bool verified = false;
        size_t len;

        if (json_object_object_get_ex(kv, "value", &o) &&
            etcd_unbase64(json_object_get_string(o), &value, &len) == 0)
                rec = json_tokener_parse(value);
        if (json_object_object_get_ex(rec, "host", &o))
                host = json_object_get_string(o);
        if (json_object_object_get_ex(rec, "tag", &o))
                (void) etcd_unbase64(json_object_get_string(o), &tag, &len);
        /* records of older agents carry no flag: their pids were never checked */
        if (json_object_object_get_ex(rec, "verified", &o) &&
            json_object_is_type(o, json_type_boolean))
                verified = json_object_get_boolean(o);
        (void) snprintf(srank, sizeof srank, "%u", rank);
        (void) snprintf(fence, sizeof fence, "%" PRIi64, json_int(kv, "create_revision"));
        (void) snprintf(pid, sizeof pid, "%" PRIi64, json_int(rec, "pid"));
        (void) snprintf(uid, sizeof uid, "%" PRIi64, json_int(rec, "uid"));
        (void) snprintf(joined, sizeof joined, "%" PRIi64, json_int(rec, "joined_usec"));
        fleet_conn_send(c, "I", srank, fence, host, pid, uid, joined, tag ? tag : "",
                        verified ? "1" : "0", (char *) NULL);
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
        if (!may_read(c, reply))
                return;
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

typedef void (*name_cb)(const char *name, unsigned count, const FleetDef *d, void *userdata);

/*
 * Walks a range over the whole prefix (sorted by key, etcd's default): each NAME/max key
 * is a name, and the NAME/s/ keys that follow it are its seats. Calls CB per name.
 */
static size_t names_walk(Fleet *f, json_object *reply, name_cb cb, void *userdata) {
        size_t plen = strlen(f->prefix), found = 0;
        json_object *kvs = NULL;
        char name[HC_NAME_MAX + 1] = "";
        FleetDef def = {};
        unsigned count = 0;
        bool have = false;

        if (!json_object_object_get_ex(reply, "kvs", &kvs) ||
            !json_object_is_type(kvs, json_type_array))
                return 0;
        for (size_t i = 0; i <= json_object_array_length(kvs); i++) {
                json_object *kv = json_object_array_get_idx(kvs, i), *o = NULL;
                _cleanup_free_ char *key = NULL;
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
                        cb(name, count, &def, userdata);        /* the name's keys ended */
                        found++;
                        have = false;
                }
                if (!kv || !slash || nlen == 0 || nlen > HC_NAME_MAX)
                        continue;
                if (strcmp(slash, "/max") == 0 && !have && fleet_def_parse(kv, &def) == 0) {
                        memcpy(name, rest, nlen);
                        name[nlen] = '\0';
                        count = 0;
                        have = fleet_name_valid(name);
                } else if (have && strncmp(slash, "/s/", 3) == 0)
                        count++;
        }
        return found;
}

/* (A name's keys are adjacent in key order: they all start with "NAME/".) */
/* "N name count max owner mode", for the names the caller may read. */
static void names_line(const char *name, unsigned count, const FleetDef *d, void *userdata) {
        FleetConn *conn = userdata;
        char c[16], m[24], mode[8];

        if (fleet_access(conn->uid, fleet_conn_user(conn), d, FLEET_ACCESS_READ) < 0)
                return;
        (void) snprintf(c, sizeof c, "%u", count > d->max ? d->max : count);
        (void) snprintf(m, sizeof m, "%u", d->max);
        (void) snprintf(mode, sizeof mode, "%04o", d->mode);
        conn->n_lines++;
        fleet_conn_send(conn, "N", name, c, m, d->owner, mode, (char *) NULL);
}

static void on_names(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        FleetConn *c = userdata;
        char n[24];

        c->call = NULL;
        if (r < 0) {
                query_failed(c, r, error);
                return;
        }
        c->n_lines = 0;
        (void) names_walk(c->fleet, reply, names_line, c);
        (void) snprintf(n, sizeof n, "%zu", c->n_lines);
        fleet_conn_send(c, "END", n, (char *) NULL);
        fleet_conn_done(c);
}

/* A read of NAME/max, of the number of NAME's seat keys and, with ALL, of every key under
 * the prefix, in one transaction (CREATE and REMOVE check them before they write). */
static json_object *read_request(Fleet *f, const char *name, bool all) {
        _cleanup_free_ char *seats = fleet_key(f->prefix, name, "/s/"), *max = fleet_key(f->prefix, name, "/max");
        json_object *req, *ops, *op, *r[3];

        if (!seats || !max)
                return NULL;
        r[0] = fleet_range_request(max, false, false, 0);
        r[1] = fleet_range_request(seats, true, true, 0);
        r[2] = all ? fleet_range_request(f->prefix, true, false, 0) : NULL;
        if (!r[0] || !r[1] || (all && !r[2])) {
                for (size_t i = 0; i < 3; i++)
                        json_object_put(r[i]);
                return NULL;
        }
        req = json_object_new_object();
        ops = json_object_new_array();
        for (size_t i = 0; i < 3 && r[i]; i++) {
                op = json_object_new_object();
                json_object_object_add(op, "request_range", r[i]);
                json_object_array_add(ops, op);
        }
        json_object_object_add(req, "success", ops);
        return req;
}

/* A write of NAME/max (PUT: the value, no lease; NULL: delete it) guarded by its
 * mod_revision (0: absent) and, with NO_SEATS, by the name having no seat key; the
 * failure branch reads as read_request() does. */
static json_object *guarded_request(Fleet *f, const char *name, int64_t mod_revision,
                                    bool no_seats, const char *put) {
        _cleanup_free_ char *seats = fleet_key(f->prefix, name, "/s/"), *max = fleet_key(f->prefix, name, "/max");
        _cleanup_free_ char *end = NULL, *m64 = NULL, *v64 = NULL;
        json_object *req, *cmp, *ops, *op, *w, *rd;

        if (!seats || !max || !(end = etcd_prefix_end_base64(seats)) ||
            !(m64 = etcd_base64(max, strlen(max))) || (put && !(v64 = etcd_base64(put, strlen(put)))))
                return NULL;
        rd = read_request(f, name, false);
        if (!rd)
                return NULL;
        req = json_object_new_object();
        cmp = json_object_new_array();
        json_object_array_add(cmp, fleet_txn_compare(max, NULL, "MOD", "EQUAL", "mod_revision",
                                                     json_object_new_int64(mod_revision)));
        if (no_seats)
                json_object_array_add(cmp, fleet_txn_compare(seats, end, "CREATE", "EQUAL",
                                                             "create_revision",
                                                             json_object_new_int64(0)));
        json_object_object_add(req, "compare", cmp);
        w = json_object_new_object();
        json_object_object_add(w, "key", json_object_new_string(m64));
        if (put)
                json_object_object_add(w, "value", json_object_new_string(v64));
        op = json_object_new_object();
        json_object_object_add(op, put ? "request_put" : "request_delete_range", w);
        ops = json_object_new_array();
        json_object_array_add(ops, op);
        json_object_object_add(req, "success", ops);
        json_object_get(json_object_object_get(rd, "success"));
        json_object_object_add(req, "failure", json_object_object_get(rd, "success"));
        json_object_put(rd);
        return req;
}

static bool txn_succeeded(json_object *reply) {
        json_object *o = NULL;

        return json_object_object_get_ex(reply, "succeeded", &o) && json_object_get_boolean(o);
}

/* Sends the request REQ (a transaction) for C, answered in CB; ERR when it cannot go. */
static void query_next(FleetConn *c, json_object *req, etcd_callback_t cb) {
        int r = req ? etcd_call(c->fleet->etcd, "/v3/kv/txn", req, cb, c, &c->call) : -ENOMEM;

        json_object_put(req);
        if (r < 0) {
                c->call = NULL;
                fleet_conn_senderr(c, -r, "cannot send the request to etcd: %s", strerror(-r));
                fleet_conn_done(c);
        }
}

static void on_remove(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        FleetConn *c = userdata;
        const char *name = c->query_name;
        json_object *kv;
        int64_t seats;

        c->call = NULL;
        if (r < 0) {
                query_failed(c, r, error);
                return;
        }
        fleet_read_parts(reply, &kv, &seats, NULL);
        if (txn_succeeded(reply))
                fleet_conn_send(c, "OK", (char *) NULL);
        else if (seats > 0)
                fleet_conn_senderr(c, EBUSY, "fleet name '%s' has %" PRIi64 " seat%s held", name,
                                   seats, seats == 1 ? "" : "s");
        else if (!kv)
                fleet_conn_senderr(c, ENOENT, "no fleet name '%s'", name);
        else
                fleet_conn_senderr(c, EAGAIN, "fleet name '%s' changed while it was being "
                                   "removed; try again", name);
        fleet_conn_done(c);
}

/* REMOVE, once NAME/max is read: the owner's or root's, and only while nobody holds it. */
static void on_remove_read(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        FleetConn *c = userdata;
        const char *name = c->query_name;
        char text[HC_NAME_MAX + 2 * FLEET_USER_MAX + 160];
        json_object *kv;
        int64_t seats;
        FleetDef d;
        int k;

        c->call = NULL;
        if (r < 0) {
                query_failed(c, r, error);
                return;
        }
        fleet_read_parts(reply, &kv, &seats, NULL);
        k = fleet_def_parse(kv, &d);
        if (k == -ENOENT) {
                fleet_conn_senderr(c, ENOENT, "no fleet name '%s'", name);
                fleet_conn_done(c);
                return;
        }
        if (k < 0 && c->uid != 0) {
                fleet_conn_senderr(c, EACCES, "fleet name '%s' has a definition that cannot be "
                                   "read: only root may remove it", name);
                fleet_conn_done(c);
                return;
        }
        if (k == 0 && fleet_access_error(name, c->uid, fleet_conn_user(c), &d, FLEET_ACCESS_OWNER,
                                         text, sizeof text) < 0) {
                fleet_conn_senderr(c, EACCES, "%s", text);
                fleet_conn_done(c);
                return;
        }
        if (seats > 0) {
                fleet_conn_senderr(c, EBUSY, "fleet name '%s' has %" PRIi64 " seat%s held", name,
                                   seats, seats == 1 ? "" : "s");
                fleet_conn_done(c);
                return;
        }
        query_next(c, guarded_request(c->fleet, name, json_int(kv, "mod_revision"), true, NULL),
                   on_remove);
}

static void on_create(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        FleetConn *c = userdata;

        c->call = NULL;
        if (r < 0) {
                query_failed(c, r, error);
                return;
        }
        if (txn_succeeded(reply)) {
                log_info("Fleet name '%s' defined by uid %u: at most %u, owner %s, mode %04o",
                         c->query_name, (unsigned) c->uid, c->create_max, c->create_owner,
                         c->create_mode);
                fleet_conn_send(c, "OK", (char *) NULL);
        } else
                fleet_conn_senderr(c, EAGAIN, "fleet name '%s' changed while it was being "
                                   "defined; try again", c->query_name);
        fleet_conn_done(c);
}

/* The names defined with CREATE that OWNER owns, NAME's aside. */
static unsigned owned_names(Fleet *f, json_object *all, const char *owner, const char *name) {
        size_t plen = strlen(f->prefix), len;
        json_object *kvs = NULL, *o = NULL;
        unsigned n = 0;

        if (!json_object_object_get_ex(all, "kvs", &kvs) || !json_object_is_type(kvs, json_type_array))
                return 0;
        for (size_t i = 0; i < json_object_array_length(kvs); i++) {
                json_object *kv = json_object_array_get_idx(kvs, i);
                _cleanup_free_ char *key = NULL;
                FleetDef d;

                if (!json_object_object_get_ex(kv, "key", &o) ||
                    etcd_unbase64(json_object_get_string(o), &key, &len) < 0 || len <= plen + 4 ||
                    strcmp(key + len - 4, "/max") != 0 || strchr(key + plen, '/') != key + len - 4)
                        continue;
                if (strlen(name) == len - plen - 4 && strncmp(key + plen, name, len - plen - 4) == 0)
                        continue;
                if (fleet_def_parse(kv, &d) == 0 && d.persistent && strcmp(d.owner, owner) == 0)
                        n++;
        }
        return n;
}

/*
 * CREATE, once NAME/max and the seat keys are read. Anyone with a user name may define a
 * name nobody defined (and that no seat key holds), or that a join defined and nobody
 * holds any more; its owner may define it again while nobody holds it; root may define any name, and takes one defined by another user even
 * while seats are held (a name squatted ahead of root's use: the squatter's seats stay
 * until they leave, and later joins follow root's definition).
 */
static void on_create_read(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        FleetConn *c = userdata;
        Fleet *f = c->fleet;
        const char *name = c->query_name, *user = fleet_conn_user(c);
        _cleanup_free_ char *value = NULL;
        json_object *kv, *all;
        unsigned cap = f->user_names > 0 ? f->user_names : FLEET_USER_NAMES_DEFAULT, owned;
        int64_t seats;
        bool takeover = false;
        FleetDef d;
        int k;

        c->call = NULL;
        if (r < 0) {
                query_failed(c, r, error);
                return;
        }
        fleet_read_parts(reply, &kv, &seats, &all);
        k = fleet_def_parse(kv, &d);
        if (k == 0 && d.persistent && d.max == c->create_max && d.mode == c->create_mode &&
            strcmp(d.owner, c->create_owner) == 0) {
                fleet_conn_send(c, "OK", (char *) NULL);        /* as asked already */
                fleet_conn_done(c);
                return;
        }
        if (c->uid != 0 && (owned = owned_names(f, all, c->create_owner, name)) >= cap) {
                fleet_conn_senderr(c, EDQUOT, "user %s owns %u fleet names made with create, "
                                   "the most a user may own", c->create_owner, owned);
                fleet_conn_done(c);
                return;
        }
        if (k == -EBADMSG && c->uid != 0) {
                fleet_conn_senderr(c, EEXIST, "fleet name '%s' has a definition that cannot be "
                                   "read: only root may define it again", name);
                fleet_conn_done(c);
                return;
        }
        if (k == 0 && fleet_access(c->uid, user, &d, FLEET_ACCESS_OWNER) < 0 &&
            (d.persistent || seats > 0)) {
                fleet_conn_senderr(c, EEXIST, "fleet name '%s' exists and belongs to %s "
                                   "(at most %u, mode %04o)", name, d.owner, d.max, d.mode);
                fleet_conn_done(c);
                return;
        }
        if (seats > 0) {
                /* root takes over a name another user defined (or none did, any more) */
                takeover = c->uid == 0 && (k != 0 || strcmp(d.owner, "root") != 0);
                if (!takeover) {
                        fleet_conn_senderr(c, EBUSY, "fleet name '%s' has %" PRIi64 " seat%s held; "
                                           "its definition changes only when nobody holds it",
                                           name, seats, seats == 1 ? "" : "s");
                        fleet_conn_done(c);
                        return;
                }
        }
        value = fleet_def_format(c->create_max, c->create_owner, c->create_mode, false);
        query_next(c, value ? guarded_request(f, name, kv ? json_int(kv, "mod_revision") : 0,
                                              !takeover, value) : NULL, on_create);
}

static int on_wait_deadline(sd_event_source *es, uint64_t usec, void *userdata) {
        FleetConn *c = userdata;

        fleet_conn_send(c, "TIMEDOUT", (char *) NULL);
        fleet_conn_done(c);                     /* ends the wait */
        return 0;
}

/* The name was counted (for WAIT, after the wait began): answer the waiters it satisfies. */
void fleet_name_counted(FleetName *n, int r) {
        char s[24], text[HC_NAME_MAX + 2 * FLEET_USER_MAX + 160];
        FleetConn *next;

        (void) snprintf(s, sizeof s, "%" PRIi64, n->count);
        for (FleetConn *c = n->fleet->conns; c; c = next) {
                next = c->next;
                if (c->wait_name != n)
                        continue;
                if (r >= 0 && n->def.max > 0 &&
                    fleet_access_error(n->name, c->uid, fleet_conn_user(c), &n->def,
                                       FLEET_ACCESS_READ, text, sizeof text) < 0) {
                        fleet_conn_senderr(c, EACCES, "%s", text);
                        fleet_conn_done(c);
                } else if (r < 0 && c->wait_fresh)
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

/* STATUS: "OK STATE TEXT" */
static void conn_status(FleetConn *c) {
        char text[FLEET_HEALTH_TEXT_MAX];
        FleetState state = fleet_lease_state(c->fleet->lease, text, sizeof text);

        fleet_conn_send(c, "OK", fleet_state_to_string(state), text, (char *) NULL);
}

int fleet_query_start(FleetConn *c, char **fields, size_t n) {
        Fleet *f = c->fleet;
        const char *cmd = fields[0], *path = "/v3/kv/range";
        etcd_callback_t cb = NULL;
        json_object *req = NULL;
        unsigned long below, t = 0;
        int r;

        if (strcmp(cmd, "STATUS") == 0 && n == 1) {
                conn_status(c);
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
                req = fleet_count_request(f->prefix, fields[1], false);
                path = "/v3/kv/txn";
                cb = on_count;
        } else if (strcmp(cmd, "LIST") == 0 && n == 2) {
                req = fleet_count_request(f->prefix, fields[1], true);
                path = "/v3/kv/txn";
                cb = on_list;
        } else if (strcmp(cmd, "REMOVE") == 0 && n == 2) {
                req = read_request(f, fields[1], false);
                path = "/v3/kv/txn";
                cb = on_remove_read;
        } else if (strcmp(cmd, "CREATE") == 0 && (n == 4 || n == 5)) {
                const char *owner = n == 5 && fields[4][0] ? fields[4] : fleet_conn_user(c);

                if (!parse_uint(fields[2], 1, HCD_FLEET_MAX_MAX, &t)) {
                        fleet_conn_senderr(c, EINVAL, "the maximum is 1 to %d", HCD_FLEET_MAX_MAX);
                        return 0;
                }
                if (fleet_mode_parse(fields[3], &c->create_mode) < 0) {
                        fleet_conn_senderr(c, EINVAL, "invalid mode '%.8s' for a fleet name: "
                                           "0600, 0644 or 0666 (the group's bits as the "
                                           "others', the owner's rw)", fields[3]);
                        return 0;
                }
                if (n == 5 && fields[4][0] && c->uid != 0) {
                        fleet_conn_senderr(c, EPERM, "only root may name another owner");
                        return 0;
                }
                if (!fleet_user_name_valid(owner)) {
                        fleet_conn_senderr(c, owner[0] ? EINVAL : EPERM, owner[0] ?
                                           "invalid owner: a user name is 1 to %d bytes of "
                                           "[A-Za-z0-9._@$-]" : "uid %u has no user name on this "
                                           "host, so it cannot own a fleet name",
                                           owner[0] ? FLEET_USER_MAX : (int) c->uid);
                        return 0;
                }
                c->create_max = (unsigned) t;
                (void) snprintf(c->create_owner, sizeof c->create_owner, "%s", owner);
                req = read_request(f, fields[1], c->uid != 0);
                path = "/v3/kv/txn";
                cb = on_create_read;
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

FleetNameList *fleet_name_list_new(void) {
        return calloc(1, sizeof(FleetNameList));
}

int fleet_name_list_add(FleetNameList *l, const char *name, unsigned count) {
        if (l->n == l->size) {
                size_t size = l->size ? l->size * 2 : 16;
                void *v = reallocarray(l->v, size, sizeof *l->v);

                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->size = size;
        }
        l->v[l->n].name = strdup(name);
        if (!l->v[l->n].name)
                return -ENOMEM;
        l->v[l->n++].count = count;
        return 0;
}

FleetNameList *fleet_name_list_free(FleetNameList *l) {
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i].name);
        free(l->v);
        free(l);
        return NULL;
}

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
                f->hooks.answer(f->hooks.userdata, b->id, ESHUTDOWN, "the fleet agent stopped", 0);
                bus_call_free(b);
        }
}

static void bus_answer_error(struct FleetBusCall *b, int r, const char *error) {
        fleet_lease_set_error(b->fleet->lease, r, error);
        b->fleet->hooks.answer(b->fleet->hooks.userdata, b->id, fleet_error_errno(r),
                                 fleet_lease_error_text(b->fleet->lease), 0);
}

static void on_bus_count(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        struct FleetBusCall *b = userdata;
        char text[HC_NAME_MAX + 2 * FLEET_USER_MAX + 160];
        FleetDef d;

        b->call = NULL;
        if (r < 0)
                bus_answer_error(b, r, error);
        else if (fleet_reply_def(reply, &d) == 0 &&
                 fleet_access_error(b->name, b->uid, b->user, &d, FLEET_ACCESS_READ, text,
                                    sizeof text) < 0)
                b->fleet->hooks.answer(b->fleet->hooks.userdata, b->id, EACCES, text, 0);
        else
                b->fleet->hooks.answer(b->fleet->hooks.userdata, b->id, 0, NULL,
                                         (unsigned) fleet_held(reply, NULL));
        bus_call_free(b);
}

struct bus_names {
        struct FleetBusCall *b;
        FleetNameList *n;                /* NULL once out of memory */
};

static void bus_names_append(const char *name, unsigned count, const FleetDef *d, void *userdata) {
        struct bus_names *bn = userdata;

        if (!bn->n || fleet_access(bn->b->uid, bn->b->user, d, FLEET_ACCESS_READ) < 0)
                return;
        if (fleet_name_list_add(bn->n, name, count > d->max ? d->max : count) < 0)
                bn->n = NULL;           /* out of memory: names_done() says so */
}

static void on_bus_names(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        struct FleetBusCall *b = userdata;
        FleetNameList *all;

        b->call = NULL;
        if (r < 0) {
                bus_answer_error(b, r, error);
                bus_call_free(b);
                return;
        }
        all = fleet_name_list_new();
        if (!all)
                b->fleet->hooks.answer(b->fleet->hooks.userdata, b->id, ENOMEM, "out of memory", 0);
        else {
                struct bus_names bn = { .b = b, .n = all };

                (void) names_walk(b->fleet, reply, bus_names_append, &bn);
                if (bn.n)
                        b->fleet->hooks.names(b->fleet->hooks.userdata, b->id, all);
                else {
                        fleet_name_list_free(all);
                        b->fleet->hooks.answer(b->fleet->hooks.userdata, b->id, ENOMEM,
                                               "out of memory", 0);
                }
        }
        bus_call_free(b);
}

/* UID is the bus caller's euid, as the main thread asked the bus (-1: unknown, nobody's):
 * names and counts follow the names' modes, as on the socket. */
static int bus_call_start(Fleet *f, uint64_t id, uid_t uid, const char *path, json_object *req,
                          etcd_callback_t cb, const char *name) {
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
        b->uid = uid;
        if (uid == (uid_t) -1 || fleet_user_name(uid, b->user, sizeof b->user) < 0)
                b->user[0] = '\0';
        (void) snprintf(b->name, sizeof b->name, "%s", name ? name : "");
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
int fleet_bus_count(Fleet *f, uint64_t id, uid_t uid, const char *name) {
        if (!fleet_name_valid(name))
                return -EINVAL;
        return bus_call_start(f, id, uid, "/v3/kv/txn", fleet_count_request(f->prefix, name, false),
                              on_bus_count, name);
}

int fleet_bus_names(Fleet *f, uint64_t id, uid_t uid) {
        return bus_call_start(f, id, uid, "/v3/kv/range",
                              fleet_range_request(f->prefix, true, false, 0), on_bus_names,
                              NULL);
}
