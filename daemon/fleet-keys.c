/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fleet's keys in etcd and the requests and answers about them, as pure functions: no
 * state, no I/O. Keys, under the agent's prefix:
 *   NAME/max                           JSON {max, owner, mode}: on the lease of the host
 *                                      whose join made it, or none (CREATE)
 *   NAME/s/HOST/BOOTID/PID.SERIAL      a seat: JSON {host, pid, verified, peer_pid, uid,
 *                                      user, joined_usec, tag}
 * A definition's value is written by agents and read back by every agent of the fleet: it
 * is bounded and validated here, and anything that does not parse is a name nobody but
 * root may use (fleet-access.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "etcd.h"
#include "fleet-keys.h"

char *fleet_key(const char *prefix, const char *name, const char *suffix) {
        char *k = NULL;

        return asprintf(&k, "%s%s%s", prefix, name, suffix) < 0 ? NULL : k;
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
json_object *fleet_count_request(const char *prefix, const char *name, bool list) {
        _cleanup_free_ char *k = fleet_key(prefix, name, "/s/"), *m = fleet_key(prefix, name, "/max");
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

/* From a fleet_count_request() answer: the name's definition (-ENOENT: none, -EBADMSG:
 * unreadable). */
int fleet_reply_def(json_object *reply, FleetDef *ret) {
        json_object *rs = NULL, *maxr = NULL, *kvs = NULL;

        *ret = (FleetDef) {};
        if (!json_object_object_get_ex(reply, "responses", &rs) ||
            !json_object_object_get_ex(json_object_array_get_idx(rs, 1), "response_range", &maxr) ||
            !json_object_object_get_ex(maxr, "kvs", &kvs) ||
            !json_object_is_type(kvs, json_type_array))
                return -ENOENT;
        return fleet_def_parse(json_object_array_get_idx(kvs, 0), ret);
}

/* From a fleet_count_request() answer: the seats held, min(keys, N); the seat range in
 * *RET_SEATS (borrowed). */
int64_t fleet_held(json_object *reply, json_object **ret_seats) {
        json_object *rs = NULL, *seats = NULL;
        int64_t count;
        FleetDef d;

        if (json_object_object_get_ex(reply, "responses", &rs))
                (void) json_object_object_get_ex(json_object_array_get_idx(rs, 0),
                                                 "response_range", &seats);
        count = json_int(seats, "count");
        if (fleet_reply_def(reply, &d) < 0)
                d.max = 0;
        if (ret_seats)
                *ret_seats = seats;
        return d.max > 0 && count > d.max ? d.max : count;
}

/*
 * Lists (keys only) the seat keys of NAME created at or before MAX_CREATE_REVISION: the
 * rank is how many come back. Not a count-only range: etcd (3.4, 3.5) applies the
 * revision filters to the keys it returns, but its "count" is that of the whole range.
 */
json_object *fleet_rank_request(const char *prefix, const char *name, int64_t max_create_revision) {
        _cleanup_free_ char *k = fleet_key(prefix, name, "/s/");
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

/* From a read_request() answer (or a failure branch that read the same, as a join's
 * transaction does): NAME/max's key-value (NULL: absent), the seat keys' number, the whole
 * prefix's range (RET_ALL may be NULL). */
void fleet_read_parts(json_object *reply, json_object **ret_kv, int64_t *ret_seats,
                      json_object **ret_all) {
        json_object *rs = NULL, *rr = NULL, *kvs = NULL;

        *ret_kv = NULL;
        *ret_seats = 0;
        if (ret_all)
                *ret_all = NULL;
        if (!json_object_object_get_ex(reply, "responses", &rs))
                return;
        if (json_object_object_get_ex(json_object_array_get_idx(rs, 0), "response_range", &rr) &&
            json_object_object_get_ex(rr, "kvs", &kvs) &&
            json_object_is_type(kvs, json_type_array) && json_object_array_length(kvs) > 0)
                *ret_kv = json_object_array_get_idx(kvs, 0);
        if (json_object_object_get_ex(json_object_array_get_idx(rs, 1), "response_range", &rr))
                *ret_seats = json_int(rr, "count");
        if (ret_all)
                (void) json_object_object_get_ex(json_object_array_get_idx(rs, 2),
                                                 "response_range", ret_all);
}

/*
 * A name's mode: octal, the owner's bits rw (the owner may always do everything), and the
 * group's bits equal to the others': a group is a local notion that differs between hosts,
 * so the fleet does not give it a class of its own. Read (4) allows COUNT, LIST, WAIT and
 * seeing the name in NAMES; write (2) allows JOIN.
 */
int fleet_mode_parse(const char *s, unsigned *ret) {
        unsigned long v;
        char *end;

        if (!s || *s < '0' || *s > '7')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 8);
        if (errno || *end || v > 0777 || (v & 0111) || (v & 0600) != 0600 ||
            ((v >> 3) & 7) != (v & 7))
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

/* A NAME/max key-value from a range (base64 value, revisions, lease) as a definition;
 * -ENOENT when KV is NULL, -EBADMSG for a value that is neither form. */
int fleet_def_parse(json_object *kv, FleetDef *ret) {
        _cleanup_free_ char *text = NULL;
        json_object *o = NULL, *rec = NULL, *m = NULL, *ow = NULL, *md = NULL, *j = NULL;
        FleetDef d = {};
        size_t len, i;
        int64_t max;

        if (!kv)
                return -ENOENT;
        d.mod_revision = json_int(kv, "mod_revision");
        d.persistent = true;
        if (!json_object_object_get_ex(kv, "value", &o) ||
            etcd_unbase64(json_object_get_string(o), &text, &len) < 0 || len == 0 || len > 512 ||
            strlen(text) != len)
                return -EBADMSG;
        for (i = 0; i < len && text[i] >= '0' && text[i] <= '9'; i++)
                ;
        if (i == len) {
                /* an older agent's plain N: anyone could join it then, and only root
                 * may change or remove it now */
                if (len > 7 || (max = strtoll(text, NULL, 10)) < 1 || max > HCD_FLEET_MAX_MAX)
                        return -EBADMSG;
                d.max = (unsigned) max;
                d.mode = 0666;
                (void) snprintf(d.owner, sizeof d.owner, "root");
                *ret = d;
                return 0;
        }
        rec = json_tokener_parse(text);
        if (!rec || !json_object_is_type(rec, json_type_object) ||
            !json_object_object_get_ex(rec, "max", &m) || !json_object_is_type(m, json_type_int) ||
            !json_object_object_get_ex(rec, "owner", &ow) ||
            !json_object_is_type(ow, json_type_string) ||
            !json_object_object_get_ex(rec, "mode", &md) ||
            !json_object_is_type(md, json_type_string)) {
                json_object_put(rec);
                return -EBADMSG;
        }
        max = json_object_get_int64(m);
        if (max < 1 || max > HCD_FLEET_MAX_MAX ||
            !fleet_user_name_valid(json_object_get_string(ow)) ||
            fleet_mode_parse(json_object_get_string(md), &d.mode) < 0) {
                json_object_put(rec);
                return -EBADMSG;
        }
        d.max = (unsigned) max;
        (void) snprintf(d.owner, sizeof d.owner, "%s", json_object_get_string(ow));
        d.persistent = !(json_object_object_get_ex(rec, "join", &j) &&
                         json_object_get_boolean(j));
        json_object_put(rec);
        *ret = d;
        return 0;
}

char *fleet_def_format(unsigned max, const char *owner, unsigned mode, bool by_join) {
        json_object *o = json_object_new_object();
        char m[8], *v;

        if (!o)
                return NULL;
        (void) snprintf(m, sizeof m, "%04o", mode);
        json_object_object_add(o, "max", json_object_new_int64(max));
        json_object_object_add(o, "owner", json_object_new_string(owner));
        json_object_object_add(o, "mode", json_object_new_string(m));
        if (by_join)
                json_object_object_add(o, "join", json_object_new_boolean(true));
        v = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return v;
}

/* One compare of a transaction; RANGE_END_B64 makes it hold for every key of a range. */
json_object *fleet_txn_compare(const char *key, const char *range_end_b64, const char *target,
                               const char *result, const char *field, json_object *value) {
        _cleanup_free_ char *k = etcd_base64(key, strlen(key));
        json_object *c = json_object_new_object();

        json_object_object_add(c, "key", json_object_new_string(k ? k : ""));
        if (range_end_b64)
                json_object_object_add(c, "range_end", json_object_new_string(range_end_b64));
        json_object_object_add(c, "target", json_object_new_string(target));
        json_object_object_add(c, "result", json_object_new_string(result));
        json_object_object_add(c, field, value);
        return c;
}

/* 1 to FLEET_USER_MAX bytes of [A-Za-z0-9._@$-], not starting with '-'. */
bool fleet_user_name_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > FLEET_USER_MAX || s[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@$-",
                            s[i]))
                        return false;
        return true;
}
