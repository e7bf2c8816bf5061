/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fleet agent's seats: one key per seat asked for on this host (fleet.c holds the lease
 * they are on, fleet-name.c the watches their waiters share). docs/fleet.md is the design;
 * this is how it runs.
 *
 * A seat. JOIN -> a transaction puts the key on the lease (guarded by create_revision == 0
 * and by NAME/max) -> a count-only range gives the rank -> held, or BUSY/TIMEDOUT after
 * the key is deleted, or waiting on the name's watch. The FleetSeat lives until its key is
 * surely gone: it outlives its connection while a transaction or a delete is in flight.
 *
 * Lost replies. A transaction whose answer never came (timeout, reset) may have created
 * the key, or may still create it later: the server can apply a request after our client
 * gave up. We answer the client an error, delete the key (retried until it succeeds or the
 * lease is replaced), and, because a late transaction could land after that delete, note a
 * doubt: for the next minute, every successful keepalive is followed by a sweep that asks
 * etcd for the keys on our lease (/v3/lease/timetolive, keys) and deletes each one no
 * FleetSeat claims. Any key that escapes all that is still on our lease, and goes when the
 * lease is replaced (LOST) or when this agent stops, within TTL. A PID update is a
 * transaction guarded by the key's create_revision, so it never re-creates a deleted key.
 *
 * The name's definition (NAME/max: N, owner, mode; fleet-access.c). The first transaction
 * defines the name with ours (owner: the joiner's user name, mode 0644, "join": true),
 * guarded by "no NAME/max and no seat key of the name"; its failure branch reads NAME/max
 * and counts the seat keys. We check what it read (the caller's right to join, N), and
 * the next transaction is guarded by NAME/max's mod_revision as we read and checked it,
 * so that no redefinition between our check and our key can let us in. A definition made
 * by a join lives as long as the name's seat keys: the agent that deletes the last one
 * deletes it too (name_collect()), and one left behind with no seat key (its host
 * died) is replaced by the next join, in a transaction guarded the same way.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "escape.h"
#include "fleet-access.h"
#include "fleet.h"
#include "log.h"
#include "strprintf.h"
#include "time-util.h"

#define TXN_ATTEMPTS 6

static void on_collected(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        if (r < 0)
                log_debug("Cannot collect a fleet name's definition: %s",
                          error ? error : strerror(-r));
}

/*
 * A seat key of NAME was deleted, admitted under a definition that a join made (at
 * DEF_REVISION): when no seat key is left and the definition is still that one, it goes
 * too, in one transaction that checks both, so that a join racing with it either keeps it
 * or defines the name again. A definition this misses (the last seat's host died, etcd
 * did not answer) holds no seat: the next join of the name replaces it (fleet-seat.c).
 */
static void name_collect(Fleet *f, const char *name, int64_t def_revision) {
        _cleanup_free_ char *seats = fleet_key(f->prefix, name, "/s/"), *max = fleet_key(f->prefix, name, "/max");
        _cleanup_free_ char *end = NULL, *m64 = NULL;
        json_object *req, *cmp, *ops, *op, *del;

        if (!seats || !max || f->stopping)
                return;
        end = etcd_prefix_end_base64(seats);
        m64 = etcd_base64(max, strlen(max));
        if (!end || !m64)
                return;
        req = json_object_new_object();
        cmp = json_object_new_array();
        json_object_array_add(cmp, fleet_txn_compare(seats, end, "CREATE", "EQUAL",
                                                     "create_revision", json_object_new_int64(0)));
        json_object_array_add(cmp, fleet_txn_compare(max, NULL, "MOD", "EQUAL", "mod_revision",
                                                     json_object_new_int64(def_revision)));
        json_object_object_add(req, "compare", cmp);
        del = json_object_new_object();
        json_object_object_add(del, "key", json_object_new_string(m64));
        op = json_object_new_object();
        json_object_object_add(op, "request_delete_range", del);
        ops = json_object_new_array();
        json_object_array_add(ops, op);
        json_object_object_add(req, "success", ops);
        (void) etcd_call(f->etcd, "/v3/kv/txn", req, on_collected, f, NULL);
        json_object_put(req);
}

static void seat_put(FleetSeat *s);
static void seat_delete(FleetSeat *s);

/* Definite answers: the request was refused, nothing was written. */
static bool error_is_definite(int r) {
        return r == -EINVAL || r == -EACCES || r == -ENOSPC || r == -ENOENT;
}

static void seat_free(FleetSeat *s) {
        Fleet *f = s->fleet;

        if (s->conn) {
                s->conn->seat = NULL;
                s->conn = NULL;
        }
        if (s->state == SEAT_HELD)
                f->n_held--;
        s->call = etcd_call_cancel(s->call);
        s->timer = sd_event_source_disable_unref(s->timer);
        s->retry_timer = sd_event_source_disable_unref(s->retry_timer);
        if (s->prev)
                s->prev->next = s->next;
        else
                f->seats = s->next;
        if (s->next)
                s->next->prev = s->prev;
        fleet_name_unref(s->fname);
        free(s->key);
        free(s->tag);
        free(s);
        fleet_lease_changed(f->lease);
}

/* Sends the holder its answer and lets the connection go on without the seat. */
static void seat_answer(FleetSeat *s, int error, const char *text, const char *answer) {
        FleetConn *c = s->conn;

        if (!c)
                return;
        if (error > 0)
                fleet_conn_senderr(c, error, "%s", text);
        else
                fleet_conn_send(c, answer, (char *) NULL);
        c->seat = NULL;
        s->conn = NULL;
        fleet_conn_done(c);
}

static void seat_log(FleetSeat *s, int level, const char *event, const char *what) {
        log_fleet_event(level, event, s->fname->name, s->fleet->host, s->pid, s->fence,
                        "Fleet seat of '%s' (fence %" PRIi64 ", pid %i%s, uid %u) %s",
                        s->fname->name, s->fence, (int) s->pid,
                        s->verified ? "" : " unverified", (unsigned) s->uid, what);
}

/* A waiting join (JOIN with a timeout) rides out etcd's failures until its own deadline;
 * a try-once join (timeout 0) hears the first one. */
static bool seat_waits(const FleetSeat *s) {
        return s->deadline_usec != 0 && s->conn && !s->answer && !s->fleet->stopping;
}

static int on_seat_retry(sd_event_source *es, uint64_t usec, void *userdata) {
        FleetSeat *s = userdata;

        s->retry_timer = sd_event_source_disable_unref(s->retry_timer);
        if (s->state == SEAT_DELETING)
                seat_delete(s);
        else if (s->state == SEAT_WAITING)
                fleet_seat_rank(s);
        else if (s->state == SEAT_PUTTING && !s->put_in_flight) {
                if (fleet_lease_id(s->fleet->lease) == 0)
                        s->state = SEAT_NEED_LEASE;     /* fleet_seats_lease_ready() puts it */
                else
                        seat_put(s);
        }
        return 0;
}

static void seat_retry_later(FleetSeat *s, unsigned failures) {
        if (s->retry_timer)
                return;
        if (sd_event_add_time_relative(s->fleet->event, &s->retry_timer, CLOCK_MONOTONIC,
                                       fleet_backoff_usec(failures), 0, on_seat_retry, s) < 0)
                s->retry_timer = NULL;
}

static void on_seat_deleted(Etcd *e, int r, json_object *reply, const char *error,
                            void *userdata) {
        FleetSeat *s = userdata;
        Fleet *f = s->fleet;

        s->call = NULL;
        if (s->answer) {
                /* BUSY and TIMEDOUT go out once the key is gone, or could not be deleted
                 * yet: the retries go on without the holder. */
                seat_answer(s, 0, NULL, s->answer);
                s->answer = NULL;
        }
        if (r >= 0 || s->lease != fleet_lease_id(f->lease)) {
                if (r >= 0 && s->def_by_join)
                        name_collect(f, s->fname->name, s->def_revision);
                seat_free(s);
                return;
        }
        log_debug("Cannot delete the fleet key %s yet: %s", s->key, error ? error : "");
        seat_retry_later(s, s->delete_failures++);
}

/* Deletes the key (after its transaction answers, if it is in flight); frees the seat. */
static void seat_delete(FleetSeat *s) {
        Fleet *f = s->fleet;
        _cleanup_free_ char *k = NULL;
        json_object *req;

        s->state = SEAT_DELETING;
        s->timer = sd_event_source_disable_unref(s->timer);
        if (f->stopping) {
                seat_free(s);                   /* the lease goes with us, its keys with it */
                return;
        }
        if (s->put_in_flight)
                return;                         /* on_seat_put() comes back here */
        s->call = etcd_call_cancel(s->call);    /* a rank read */
        if (s->retry_timer)
                return;                         /* on_seat_retry() comes back here */
        if (!s->key_may_exist || s->lease != fleet_lease_id(f->lease) || fleet_lease_id(f->lease) == 0) {
                /* never written, or on a lease that is gone: nothing to delete */
                if (s->answer)
                        seat_answer(s, 0, NULL, s->answer);
                seat_free(s);
                return;
        }
        k = etcd_base64(s->key, strlen(s->key));
        req = json_object_new_object();
        json_object_object_add(req, "key", json_object_new_string(k ? k : ""));
        if (etcd_call(f->etcd, "/v3/kv/deleterange", req, on_seat_deleted, s, &s->call) < 0) {
                s->call = NULL;
                seat_retry_later(s, s->delete_failures++);
        }
        json_object_put(req);
}

static void seat_give_up(FleetSeat *s, const char *answer) {
        s->answer = answer;
        seat_delete(s);
}

static int on_seat_deadline(sd_event_source *es, uint64_t usec, void *userdata) {
        FleetSeat *s = userdata;
        Fleet *f = s->fleet;

        s->timer = sd_event_source_disable_unref(s->timer);
        if (s->state == SEAT_NEED_LEASE || (s->state == SEAT_PUTTING && !s->put_in_flight &&
                                            !s->key_may_exist)) {
                /* no lease came, or etcd never took the key: say why, not just "too late" */
                char text[FLEET_HEALTH_TEXT_MAX + 64];

                (void) snprintf(text, sizeof text, "no etcd lease within the wait: %s",
                                fleet_lease_error_text(f->lease));
                seat_answer(s, fleet_error_errno(fleet_lease_error(f->lease)), text, NULL);
                seat_free(s);
                return 0;
        }
        seat_give_up(s, "TIMEDOUT");
        return 0;
}

static void seat_admitted(FleetSeat *s, int64_t read_rev) {
        Fleet *f = s->fleet;
        char fence[24], rank[16];

        s->state = SEAT_HELD;
        s->timer = sd_event_source_disable_unref(s->timer);
        f->n_held++;
        (void) snprintf(fence, sizeof fence, "%" PRIi64, s->fence);
        (void) snprintf(rank, sizeof rank, "%u", s->rank);
        if (s->conn) {
                fleet_conn_send(s->conn, "OK", fence, rank, (char *) NULL);
                fleet_conn_done(s->conn);       /* the seat stays: PID, LEAVE may come */
        }
        seat_log(s, LOG_INFO, "join", "joined");
        fleet_lease_changed(f->lease);
        fleet_name_need_watch(s->fname, read_rev);
}

static void on_seat_ranked(Etcd *e, int r, json_object *reply, const char *error,
                           void *userdata) {
        FleetSeat *s = userdata;
        json_object *h = NULL;

        s->call = NULL;
        if (r < 0) {
                if (s->state == SEAT_RANKING && s->read_rev == 0 && !seat_waits(s)) {
                        /* the first read: the holder hears it, the key goes */
                        fleet_lease_set_error(s->fleet->lease, r, error);
                        seat_answer(s, fleet_error_errno(r),
                                    fleet_lease_error_text(s->fleet->lease), NULL);
                        seat_delete(s);
                } else {
                        s->state = SEAT_WAITING;
                        seat_retry_later(s, s->delete_failures++);
                }
                return;
        }
        s->rank = (unsigned) json_kvs_length(reply);
        s->read_rev = json_object_object_get_ex(reply, "header", &h) ? json_int(h, "revision") : 1;
        if (s->rank < s->max) {
                seat_admitted(s, s->read_rev);
                return;
        }
        if (s->deadline_usec == 0) {
                seat_give_up(s, "BUSY");
                return;
        }
        s->state = SEAT_WAITING;
        if (!s->timer && s->deadline_usec != UINT64_MAX &&
            sd_event_add_time(s->fleet->event, &s->timer, CLOCK_MONOTONIC, s->deadline_usec, 0,
                              on_seat_deadline, s) < 0) {
                seat_answer(s, ENOMEM, "cannot arm the wait's timer", NULL);
                seat_delete(s);
                return;
        }
        if (s->rank_again) {
                s->rank_again = false;
                fleet_seat_rank(s);
                return;
        }
        fleet_name_need_watch(s->fname, s->read_rev);
}

/* The rank: how many keys of the name are older than ours. */
void fleet_seat_rank(FleetSeat *s) {
        json_object *req;

        if (s->call)
                return;
        s->state = SEAT_RANKING;
        s->rank_again = false;
        req = fleet_rank_request(s->fleet->prefix, s->fname->name, s->fence - 1);
        if (!req || etcd_call(s->fleet->etcd, "/v3/kv/range", req, on_seat_ranked, s,
                              &s->call) < 0) {
                s->call = NULL;
                s->state = SEAT_WAITING;
                seat_retry_later(s, 3);
        }
        json_object_put(req);
}

/* The record, as the key's value. */
static char *seat_value(const FleetSeat *s) {
        _cleanup_free_ char *tag = etcd_base64(s->tag, strlen(s->tag));
        json_object *o = json_object_new_object();
        char *v = NULL;

        if (!o || !tag) {
                json_object_put(o);
                return NULL;
        }
        json_object_object_add(o, "host", json_object_new_string(s->fleet->host));
        json_object_object_add(o, "pid", json_object_new_int64(s->pid));
        json_object_object_add(o, "verified", json_object_new_boolean(s->verified));
        json_object_object_add(o, "peer_pid", json_object_new_int64(s->peer_pid));
        json_object_object_add(o, "uid", json_object_new_int64(s->uid));
        if (s->user[0])
                json_object_object_add(o, "user", json_object_new_string(s->user));
        json_object_object_add(o, "joined_usec", json_object_new_int64(s->joined_usec));
        json_object_object_add(o, "tag", json_object_new_string(tag));
        v = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return v;
}

static json_object *b64_string(const char *text) {
        _cleanup_free_ char *b = etcd_base64(text, strlen(text));

        return json_object_new_string(b ? b : "");
}

static json_object *txn_compare(const char *key, const char *target, const char *field,
                                json_object *value) {
        json_object *c = json_object_new_object();

        json_object_object_add(c, "key", b64_string(key));
        json_object_object_add(c, "target", json_object_new_string(target));
        json_object_object_add(c, "result", json_object_new_string("EQUAL"));
        json_object_object_add(c, field, value);
        return c;
}

static json_object *txn_put(const char *key, const char *value, int64_t lease) {
        json_object *p = json_object_new_object(), *op = json_object_new_object();
        char id[24];

        json_object_object_add(p, "key", b64_string(key));
        json_object_object_add(p, "value", b64_string(value));
        if (lease != 0) {
                (void) snprintf(id, sizeof id, "%" PRIi64, lease);
                json_object_object_add(p, "lease", json_object_new_string(id));
        }
        json_object_object_add(op, "request_put", p);
        return op;
}

static json_object *txn_range(const char *key, bool prefix) {
        json_object *op = json_object_new_object();

        json_object_object_add(op, "request_range", fleet_range_request(key, prefix, prefix, 0));
        return op;
}

static void on_seat_put(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        FleetSeat *s = userdata;
        Fleet *f = s->fleet;
        json_object *o = NULL, *kv;
        char text[HC_NAME_MAX + 2 * FLEET_USER_MAX + 160];
        int64_t seats;
        FleetDef d;
        int k;

        s->put_in_flight = false;
        s->call = NULL;
        if (r < 0 && !error_is_definite(r) && seat_waits(s) && s->state == SEAT_PUTTING) {
                /* A waiting join tries again with a new key, after a back-off; the old
                 * one, if it was written, belongs to no seat: the sweep deletes it. */
                fleet_lease_note_doubt(f->lease);
                fleet_lease_set_error(f->lease, r, error);
                free(s->key);
                s->key = NULL;
                /* at least once a second: etcd may be back any moment */
                seat_retry_later(s, s->delete_failures < 2 ? s->delete_failures++ : 2);
                return;
        }
        if (r < 0) {
                if (!error_is_definite(r)) {
                        /* The reply was lost, not the request: see the top of the file. */
                        s->key_may_exist = true;
                        fleet_lease_note_doubt(f->lease);
                }
                fleet_lease_set_error(f->lease, r, error);
                seat_answer(s, fleet_error_errno(r), fleet_lease_error_text(f->lease), NULL);
                seat_delete(s);
                return;
        }
        if (json_object_object_get_ex(reply, "succeeded", &o) && json_object_get_boolean(o)) {
                json_object *h = NULL;

                s->key_may_exist = true;
                s->fence = json_object_object_get_ex(reply, "header", &h) ?
                        json_int(h, "revision") : 0;
                if (s->define) {
                        s->def_by_join = true;          /* ours, written with our key */
                        s->def_revision = s->fence;
                        s->fname->def = (FleetDef) { .max = s->max, .mode = 0644,
                                                     .mod_revision = s->fence };
                        (void) snprintf(s->fname->def.owner, sizeof s->fname->def.owner, "%s",
                                        s->user);
                } else
                        s->def_revision = s->max_mod_revision;
                if (s->fence <= 0)
                        seat_answer(s, EIO, "etcd's answer named no revision", NULL);
                if (s->state == SEAT_DELETING || !s->conn) {
                        seat_delete(s);
                        return;
                }
                fleet_seat_rank(s);
                return;
        }
        if (s->state == SEAT_DELETING || !s->conn) {
                seat_delete(s);
                return;
        }
        fleet_read_parts(reply, &kv, &seats, NULL);
        k = fleet_def_parse(kv, &d);
        s->fname->def = k == 0 ? d : (FleetDef) {};     /* the next local join starts there */
        if (++s->attempts >= TXN_ATTEMPTS) {
                seat_answer(s, EIO, "the fleet name keeps changing under us", NULL);
                seat_delete(s);
                return;
        }
        if (k == -EBADMSG) {
                seat_answer(s, EIO, "the fleet name's definition (its max key) cannot be read; "
                            "root may remove it", NULL);
                seat_delete(s);
                return;
        }
        if (k == 0 && !d.persistent && seats == 0 && s->user[0]) {
                /* made by a join whose seats are all gone (their host died): nobody
                 * holds it, and we define it anew */
                s->define = true;
                s->max_mod_revision = d.mod_revision;
                seat_put(s);
                return;
        }
        if (k == 0 && fleet_access_error(s->fname->name, s->uid, s->user, &d, FLEET_ACCESS_JOIN,
                                         text, sizeof text) < 0) {
                seat_answer(s, EACCES, text, NULL);
                seat_delete(s);
                return;
        }
        if (k == 0 && d.max != s->max) {
                (void) snprintf(text, sizeof text, "fleet name '%s' allows at most %u; asked "
                                "for %u", s->fname->name, d.max, s->max);
                seat_answer(s, EINVAL, text, NULL);
                seat_delete(s);
                return;
        }
        if (k == 0) {
                /* put our key if the definition is still the one we checked */
                s->define = false;
                s->def_by_join = !d.persistent;
                s->max_mod_revision = d.mod_revision;
                seat_put(s);
                return;
        }
        if (seats > 0) {
                /* seat keys without a definition (removed by hand, or an older agent's
                 * data): they may be another user's, and nobody defines the name under
                 * them but root */
                (void) snprintf(text, sizeof text, "fleet name '%s' has seats held but no "
                                "definition; root may define it (headcount --fleet create)",
                                s->fname->name);
                seat_answer(s, EACCES, text, NULL);
                seat_delete(s);
                return;
        }
        if (!s->user[0]) {
                (void) snprintf(text, sizeof text, "uid %u has no user name on this host, so "
                                "it cannot be the owner of fleet name '%s'", (unsigned) s->uid,
                                s->fname->name);
                seat_answer(s, EPERM, text, NULL);
                seat_delete(s);
                return;
        }
        s->define = true;
        s->max_mod_revision = 0;
        seat_put(s);
}

/*
 * The transaction. Two forms: NAME/max as we read it (absent, or a join's left with no
 * seat) and no seat key of the name: defined with ours along with our key; or NAME/max
 * unchanged since we read and checked it: our key. Both require our key not to exist.
 * The failure branch reads NAME/max and counts the seat keys, which tells which form to
 * try next, or why we may not.
 */
static void seat_put(FleetSeat *s) {
        Fleet *f = s->fleet;
        _cleanup_free_ char *maxkey = fleet_key(f->prefix, s->fname->name, "/max");
        _cleanup_free_ char *seats = fleet_key(f->prefix, s->fname->name, "/s/"), *end = NULL;
        _cleanup_free_ char *def = NULL;
        char *value;
        json_object *req, *cmp, *ok, *fail;
        bool create_max = s->define;
        int r;

        free(s->key);
        s->key = NULL;
        s->key = strprintf("%s%s/s/%s/%s/%i.%" PRIu64, f->prefix, s->fname->name, f->host,
                           f->boot_id, (int) s->pid, ++f->serial);
        value = seat_value(s);
        if (seats)
                end = etcd_prefix_end_base64(seats);
        if (create_max)
                def = fleet_def_format(s->max, s->user, 0644, true);
        if (!s->key || !value || !maxkey || !end || (create_max && !def)) {
                free(value);
                seat_answer(s, ENOMEM, "out of memory", NULL);
                seat_free(s);
                return;
        }
        req = json_object_new_object();
        cmp = json_object_new_array();
        ok = json_object_new_array();
        fail = json_object_new_array();
        json_object_array_add(cmp, txn_compare(s->key, "CREATE", "create_revision",
                                               json_object_new_int64(0)));
        /* -1 (nothing read yet, and no user name to define it with): fails, and reads */
        json_object_array_add(cmp, txn_compare(maxkey, "MOD", "mod_revision",
                                               json_object_new_int64(s->max_mod_revision)));
        if (create_max) {
                json_object_array_add(cmp, fleet_txn_compare(seats, end, "CREATE", "EQUAL",
                                                             "create_revision",
                                                             json_object_new_int64(0)));
                json_object_array_add(ok, txn_put(maxkey, def, 0));
        }
        json_object_array_add(ok, txn_put(s->key, value, fleet_lease_id(f->lease)));
        free(value);
        json_object_array_add(fail, txn_range(maxkey, false));
        json_object_array_add(fail, txn_range(seats, true));
        json_object_object_add(req, "compare", cmp);
        json_object_object_add(req, "success", ok);
        json_object_object_add(req, "failure", fail);

        s->state = SEAT_PUTTING;
        s->lease = fleet_lease_id(f->lease);
        r = etcd_call(f->etcd, "/v3/kv/txn", req, on_seat_put, s, &s->call);
        json_object_put(req);
        if (r < 0) {
                s->call = NULL;
                seat_answer(s, EIO, "cannot send the request to etcd", NULL);
                seat_free(s);
                return;
        }
        s->put_in_flight = true;
}

/* A JOIN on connection C: the seat's object, before fleet_seat_start(). PID is the one the
 * client names (its own, or its command's: verified when it is the peer or a descendant of
 * it); TIMEOUT_MS -1 waits for ever, 0 not at all. NULL: out of memory. */
FleetSeat *fleet_seat_new(FleetConn *c, const char *name, unsigned max, const char *tag,
                          pid_t pid, long timeout_ms) {
        FleetSeat *s = calloc(1, sizeof *s);
        struct timespec ts;

        if (!s || !(s->tag = strdup(tag)) || !(s->fname = fleet_name_ref(c->fleet, name))) {
                if (s)
                        free(s->tag);
                free(s);
                return NULL;
        }
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        s->conn = c;
        s->max = max;
        s->pid = pid;
        s->peer_pid = c->pid;
        s->verified = c->pid > 0 && (pid == c->pid || fleet_pid_descends(pid, c->pid));
        s->uid = c->uid;
        (void) snprintf(s->user, sizeof s->user, "%s", fleet_conn_user(c));
        /* the first transaction defines the name, as if it had none: it says if it has */
        s->define = s->user[0] != '\0';
        s->max_mod_revision = s->define ? 0 : -1;
        s->joined_usec = (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        s->deadline_usec = timeout_ms < 0 ? UINT64_MAX :
                timeout_ms == 0 ? 0 : now_usec() + (uint64_t) timeout_ms * 1000;
        return s;
}

int fleet_seat_start(Fleet *f, FleetSeat *s) {
        const FleetDef *d = &s->fname->def;

        /* A definition this agent read lately (another local seat or waiter of the name)
         * that lets us in: the first transaction is guarded by its mod_revision rather
         * than trying to define the name, which would cost a failed write to learn what
         * we know. A stale one fails that guard and is read again. */
        if (d->max == s->max && fleet_access(s->uid, s->user, d, FLEET_ACCESS_JOIN) == 0) {
                s->define = false;
                s->def_by_join = !d->persistent;
                s->max_mod_revision = d->mod_revision;
        }
        s->fleet = f;
        s->next = f->seats;
        if (f->seats)
                f->seats->prev = s;
        f->seats = s;
        /* the wait's deadline runs from now, whatever etcd does meanwhile */
        if (s->deadline_usec != 0 && s->deadline_usec != UINT64_MAX &&
            sd_event_add_time(f->event, &s->timer, CLOCK_MONOTONIC, s->deadline_usec, 0,
                              on_seat_deadline, s) < 0) {
                s->timer = NULL;
                seat_answer(s, ENOMEM, "cannot arm the wait's timer", NULL);
                seat_free(s);
                return 0;
        }
        if (fleet_lease_id(f->lease) != 0) {
                seat_put(s);
                return 0;
        }
        if (s->deadline_usec == 0 && fleet_lease_failing(f->lease)) {
                /* a try-once join while etcd is known away: at once, and why; a grant
                 * goes out now all the same */
                seat_answer(s, fleet_error_errno(fleet_lease_error(f->lease)),
                            fleet_lease_error_text(f->lease), NULL);
                seat_free(s);
                fleet_lease_grant(f->lease);
                return 0;
        }
        /* No lease (etcd away, or not granted yet): the seat waits for the grant in
         * flight, which answers within --etcd-timeout; start one now if we were
         * backing off. A try-once join hears that grant's failure; a waiting one waits
         * for a later grant, until its deadline. */
        s->state = SEAT_NEED_LEASE;
        fleet_lease_grant(f->lease);
        return 0;
}

/* The holder left (LEAVE) or its connection closed. */
void fleet_seat_release(FleetSeat *s, bool leave) {
        Fleet *f = s->fleet;

        s->conn = NULL;
        s->answer = NULL;
        if (s->state == SEAT_HELD) {
                f->n_held--;
                s->state = SEAT_DELETING;       /* so that n_held is not counted twice */
                if (!f->stopping)
                        seat_log(s, LOG_INFO, leave ? "leave" : "died",
                         leave ? "left" : "died: no process holds it any more");
        }
        if (s->state == SEAT_NEED_LEASE) {
                seat_free(s);
                return;
        }
        s->retry_timer = sd_event_source_disable_unref(s->retry_timer);
        seat_delete(s);
}

static void on_pid_put(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        if (r < 0)
                log_debug("Cannot update a fleet seat's pid: %s", error ? error : strerror(-r));
}

/* PID pid: the record names PID from now on. Guarded by the key's create_revision, so
 * that an update that arrives after a delete does not bring the key back. */
void fleet_seat_set_pid(FleetSeat *s, pid_t pid, bool verified) {
        Fleet *f = s->fleet;
        json_object *req, *cmp, *ok;
        char *value;

        s->pid = pid;
        s->verified = verified;
        if (s->state != SEAT_HELD || s->lease != fleet_lease_id(f->lease))
                return;
        value = seat_value(s);
        if (!value)
                return;
        req = json_object_new_object();
        cmp = json_object_new_array();
        ok = json_object_new_array();
        json_object_array_add(cmp, txn_compare(s->key, "CREATE", "create_revision",
                                               json_object_new_int64(s->fence)));
        json_object_array_add(ok, txn_put(s->key, value, s->lease));
        free(value);
        json_object_object_add(req, "compare", cmp);
        json_object_object_add(req, "success", ok);
        (void) etcd_call(f->etcd, "/v3/kv/txn", req, on_pid_put, f, NULL);
        json_object_put(req);
}


/* A lease was granted: the seats that waited for one put their keys. */
void fleet_seats_lease_ready(Fleet *f) {
        FleetSeat *next;

        for (FleetSeat *s = f->seats; s; s = next) {
                next = s->next;
                if (s->state == SEAT_NEED_LEASE)
                        seat_put(s);
        }
}

/* The grant failed: the try-once seats that waited for it hear why (ERR EHOSTUNREACH
 * ...); the waiting ones wait for the next grant, until their deadlines. */
void fleet_seats_lease_failed(Fleet *f) {
        FleetSeat *next;

        for (FleetSeat *s = f->seats; s; s = next) {
                next = s->next;
                if (s->state != SEAT_NEED_LEASE || seat_waits(s))
                        continue;
                seat_answer(s, fleet_error_errno(fleet_lease_error(f->lease)),
                            fleet_lease_error_text(f->lease), NULL);
                seat_free(s);
        }
}

/*
 * The lease is in danger or gone (fleet.c has already forgotten it): every holder hears
 * LOST, every joiner not answered yet an error, and every seat is forgotten, since its key
 * dies with the lease. Calls in flight are cancelled: a transaction that still lands puts
 * its key on the old lease, which nobody renews any more.
 */
void fleet_seats_lost(Fleet *f, const char *why) {
        FleetSeat *next;

        for (FleetSeat *s = f->seats; s; s = next) {
                next = s->next;
                if (s->state == SEAT_NEED_LEASE && !f->stopping)
                        continue;
                if (s->state != SEAT_HELD && s->state != SEAT_DELETING && seat_waits(s)) {
                        /* not admitted yet, and willing to wait: its key (if any) goes
                         * with the old lease; it asks again on the next one */
                        s->call = etcd_call_cancel(s->call);
                        s->retry_timer = sd_event_source_disable_unref(s->retry_timer);
                        s->put_in_flight = false;
                        s->key_may_exist = false;
                        s->rank_again = false;
                        s->lease = s->fence = s->read_rev = 0;
                        s->state = SEAT_NEED_LEASE;
                        continue;
                }
                if (s->state == SEAT_HELD) {
                        if (s->conn) {
                                fleet_conn_send(s->conn, "LOST", why, (char *) NULL);
                                s->conn->seat = NULL;
                                s->conn = NULL;
                        }
                        seat_log(s, LOG_WARNING, "lost", "was lost with the etcd lease");
                } else if (s->conn && s->answer)
                        seat_answer(s, 0, NULL, s->answer);     /* BUSY, TIMEDOUT stand */
                else if (s->conn)
                        seat_answer(s, EHOSTUNREACH, why, NULL);
                seat_free(s);
        }
}

/* True when a seat of ours claims KEY (the orphan sweep leaves it alone). */
bool fleet_seat_key_known(Fleet *f, const char *key) {
        for (FleetSeat *s = f->seats; s; s = s->next)
                if (s->key && strcmp(s->key, key) == 0)
                        return true;
        return false;
}

/* Whether a seat waits for a lease: the next grant is then tried within a second. */
bool fleet_seats_need_lease(Fleet *f) {
        for (FleetSeat *s = f->seats; s; s = s->next)
                if (s->state == SEAT_NEED_LEASE)
                        return true;
        return false;
}

/* The seat keys of N changed with a delete: its waiting seats read their rank again. */
void fleet_seats_rank_name(FleetName *n) {
        for (FleetSeat *s = n->fleet->seats; s; s = s->next) {
                if (s->fname == n && s->state == SEAT_WAITING)
                        fleet_seat_rank(s);
                else if (s->fname == n && s->state == SEAT_RANKING)
                        s->rank_again = true;
        }
}
