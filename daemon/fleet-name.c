/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fleet agent's names: one FleetName per name that a local seat or waiter uses, with
 * one watch on the name's seat keys that they all share. A watch says "something changed";
 * the waiters then read again (a seat its rank, WAIT the count), so that no event needs
 * to be interpreted and a watch that breaks costs only a new watch and a recount.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "fleet.h"
#include "log.h"

static void f_counted(FleetName *n, int r) {
        n->fleet->name_events.counted(n, r);
}


FleetName *fleet_name_ref(Fleet *f, const char *name) {
        FleetName *n;

        for (n = f->names; n; n = n->next)
                if (strcmp(n->name, name) == 0) {
                        n->n_refs++;
                        return n;
                }
        n = calloc(1, sizeof *n);
        if (!n || !(n->name = strdup(name))) {
                free(n);
                return NULL;
        }
        n->fleet = f;
        n->n_refs = 1;
        n->count = -1;
        n->next = f->names;
        if (f->names)
                f->names->prev = n;
        f->names = n;
        return n;
}

static void name_free(FleetName *n) {
        Fleet *f = n->fleet;

        n->watch = etcd_call_cancel(n->watch);
        n->count_call = etcd_call_cancel(n->count_call);
        n->watch_retry = sd_event_source_disable_unref(n->watch_retry);
        if (n->prev)
                n->prev->next = n->next;
        else
                f->names = n->next;
        if (n->next)
                n->next->prev = n->prev;
        free(n->name);
        free(n);
}

void fleet_name_unref(FleetName *n) {
        if (n && --n->n_refs == 0)
                name_free(n);
}

static void name_watch_open(FleetName *n);

static int on_watch_retry(sd_event_source *es, uint64_t usec, void *userdata) {
        FleetName *n = userdata;

        n->watch_retry = sd_event_source_disable_unref(n->watch_retry);
        name_watch_open(n);
        return 0;
}

static void name_watch_restart(FleetName *n) {
        Fleet *f = n->fleet;

        n->watch = etcd_call_cancel(n->watch);
        n->watch_created = false;
        if (n->watch_retry)
                return;
        if (sd_event_add_time_relative(f->event, &n->watch_retry, CLOCK_MONOTONIC,
                                       fleet_backoff_usec(n->watch_failures++), 0,
                                       on_watch_retry, n) < 0)
                log_warning("Cannot restart the watch of fleet name '%s'", n->name);
}

static void on_watch(Etcd *e, int r, json_object *msg, const char *error, void *userdata) {
        FleetName *n = userdata;
        json_object *events = NULL, *o;
        bool deleted = false;
        size_t len;

        if (r < 0 || !msg) {
                n->watch = NULL;                /* the stream ended: it is gone */
                log_debug("The watch of fleet name '%s' ended: %s", n->name,
                          r < 0 ? (error ? error : strerror(-r)) : "closed by the server");
                name_watch_restart(n);
                return;
        }
        if (json_int(msg, "compact_revision") > 0 ||
            (json_object_object_get_ex(msg, "canceled", &o) && json_object_get_boolean(o))) {
                /* compacted past our start, or refused: a new watch from now, and a recount */
                name_watch_restart(n);
                return;
        }
        if (json_object_object_get_ex(msg, "created", &o) && json_object_get_boolean(o)) {
                /* From now on every change reaches us; what happened before, a read finds. */
                json_object *h = NULL;

                n->watch_created = true;
                n->watch_failures = 0;
                n->watch_rev = json_object_object_get_ex(msg, "header", &h) ?
                        json_int(h, "revision") : 0;
                fleet_name_recount(n, true);
                return;
        }
        if (!json_object_object_get_ex(msg, "events", &events) ||
            !json_object_is_type(events, json_type_array))
                return;
        len = json_object_array_length(events);
        for (size_t i = 0; i < len; i++) {
                json_object *t = NULL;

                o = json_object_array_get_idx(events, i);
                if (json_object_object_get_ex(o, "type", &t) &&
                    strcmp(json_object_get_string(t), "DELETE") == 0)
                        deleted = true;
        }
        if (len > 0)
                fleet_name_recount(n, deleted);
}

static void name_watch_open(FleetName *n) {
        Fleet *f = n->fleet;
        _cleanup_free_ char *key = fleet_key(f->prefix, n->name, "/s/");
        _cleanup_free_ char *end = NULL, *key64 = NULL;
        json_object *req;
        int r;

        if (n->watch || n->watch_retry)
                return;
        if (key) {
                key64 = etcd_base64(key, strlen(key));
                end = etcd_prefix_end_base64(key);
        }
        if (!key64 || !end) {
                log_oom();
                return;
        }
        req = json_object_new_object();
        json_object_object_add(req, "key", json_object_new_string(key64));
        json_object_object_add(req, "range_end", json_object_new_string(end));
        n->watch_created = false;
        r = etcd_watch(f->etcd, req, on_watch, n, &n->watch);
        json_object_put(req);
        if (r < 0) {
                n->watch = NULL;
                log_warning_errno(r, "Cannot watch fleet name '%s': %m", n->name);
                name_watch_restart(n);
        }
}

/*
 * A local seat or waiter read the name at READ_REV and now relies on the watch for what
 * changes after it. No watch yet: open one (its "created" recounts everything). A watch
 * that started after READ_REV may have missed a change in between: count again.
 */
void fleet_name_need_watch(FleetName *n, int64_t read_rev) {
        if (!n->watch && !n->watch_retry) {
                name_watch_open(n);
                return;
        }
        if (n->watch_created && read_rev < n->watch_rev)
                fleet_name_recount(n, true);
}

static void on_name_count(Etcd *e, int r, json_object *reply, const char *error,
                          void *userdata) {
        FleetName *n = userdata;
        json_object *h = NULL;
        int64_t count;

        n->count_call = NULL;
        if (r < 0) {
                log_debug("Cannot count fleet name '%s': %s", n->name, error ? error : "");
                n->n_refs++;
                fleet_lease_set_error(n->fleet->lease, r, error);
                f_counted(n, r);
                fleet_name_unref(n);
                return;
        }
        count = fleet_held(reply, NULL);
        if (fleet_reply_def(reply, &n->def) < 0)
                n->def = (FleetDef) {};
        if (n->count_again) {
                /* stale already: the next count is told, against the last one told (a
                 * count stored here untold would keep that one from being told) */
                n->count_again = false;
                fleet_name_recount(n, false);
                return;
        }
        if (n->count != count)
                n->fleet->hooks.count(n->fleet->hooks.userdata, n->name, (unsigned) count);
        n->count = count;
        n->n_refs++;                    /* answering may drop the waiters' references */
        f_counted(n, 0);
        if (n->n_refs > 1)
                fleet_name_need_watch(n, json_object_object_get_ex(reply, "header", &h) ?
                                      json_int(h, "revision") : 0);
        fleet_name_unref(n);
}

/* Counts the name again (for WAIT and the bus) and, with RANK, re-ranks its waiting seats. */
void fleet_name_recount(FleetName *n, bool rank) {
        Fleet *f = n->fleet;
        json_object *req;

        if (rank)
                f->name_events.changed(n);
        if (n->count_call) {
                n->count_again = true;
                return;
        }
        req = fleet_count_request(f->prefix, n->name, false);
        if (!req || etcd_call(f->etcd, "/v3/kv/txn", req, on_name_count, n,
                              &n->count_call) < 0)
                n->count_call = NULL;
        json_object_put(req);
}

