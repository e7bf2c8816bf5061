/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The host's etcd lease, which every seat key of this host is put on (fleet-seat.c), and
 * the agent's health that follows from it. docs/fleet.md is the design.
 *
 * The lease is granted at start and again after a loss, with back-off while etcd does not
 * answer; a JOIN that arrives meanwhile starts a grant at once and hears its outcome,
 * within --etcd-timeout. It is renewed every TTL/3 by a unary keepalive. Its life on the
 * servers lasts at least until (send time of the last keepalive that succeeded) + (the TTL
 * that keepalive answered): once two thirds of that are gone without a renewal, the seats
 * are LOST, so that a holder hears it while its key still exists everywhere and the next
 * holder elsewhere cannot be admitted yet. A keepalive that answers TTL 0 or "not found"
 * (the lease expired or was revoked) is LOST at once. The old lease is revoked as soon as
 * a new one is granted: the keys of a lost lease should not linger on the other hosts.
 *
 * The lease knows nothing of seats: it reports a grant, a failed grant and a loss through
 * its hooks, and asks through them whether a key on it is claimed and whether a join waits.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "escape.h"
#include "fleet-keys.h"
#include "fleet-lease.h"
#include "fleet-proto.h"
#include "headcount.h"
#include "log.h"
#include "strprintf.h"
#include "time-util.h"

struct FleetLease {
        sd_event *event;
        Etcd *etcd;
        FleetLeaseHooks hooks;
        char host[HC_HOST_MAX + 1];
        unsigned ttl;                    /* seconds, as asked for */
        uint64_t timeout_usec;           /* --etcd-timeout */

        int64_t id;                      /* 0 while we have none */
        int64_t lease_ttl;               /* as granted or last renewed, seconds */
        uint64_t lease_safe_usec;        /* CLOCK_MONOTONIC: lost when renewal fails past it */
        int64_t revoke_lease;            /* a lost lease, revoked once a new one is granted */
        EtcdCall *grant_call;
        uint64_t grant_sent_usec;
        EtcdCall *keepalive_call;
        uint64_t keepalive_sent_usec;
        sd_event_source *lease_timer;    /* next grant attempt, or next keepalive */
        sd_event_source *danger_timer;   /* at lease_safe_usec */
        sd_event_source *late_timer;     /* a keepalive that has not answered by then is late */
        bool renew_late;                 /* a keepalive is overdue (FLEET_STATE_LATE) */
        bool lease_was_lost;             /* since the last grant (FLEET_STATE_LOST) */
        unsigned grant_failures;
        int last_error;                  /* the last etcd failure, for ERR answers */
        char *last_error_text;
        unsigned sweeps_left;            /* orphan sweeps still to run (a reply was lost) */
        EtcdCall *sweep_call;
        void (*stopped)(void *userdata); /* fleet_lease_stop(): the revoke answered */
        void *stopped_userdata;
};

static inline char *mfree(char *p) {
        free(p);
        return NULL;
}

#define RETRY_FIRST_USEC (250 * UINT64_C(1000))
#define RETRY_MAX_USEC (5 * USEC_PER_SEC)
#define SWEEP_SPAN_USEC (60 * USEC_PER_SEC)
#define LATE_USEC USEC_PER_SEC

uint64_t fleet_backoff_usec(unsigned failures) {
        uint64_t u = RETRY_FIRST_USEC << (failures < 8 ? failures : 8);

        return u < RETRY_MAX_USEC ? u : RETRY_MAX_USEC;
}

/* What a client hears for an etcd failure: EHOSTUNREACH for anything that looks like
 * "etcd is not there" (a deadline included), etcd's own refusals as they are. */
int fleet_error_errno(int r) {
        switch (r) {
        case -EHOSTUNREACH:
        case -ETIMEDOUT:
        case 0:
                return EHOSTUNREACH;
        case -EACCES:
        case -ENOSPC:
                return -r;
        default:
                return EIO;
        }
}

void fleet_lease_set_error(FleetLease *l, int r, const char *error) {
        char *t = NULL;

        if (r == -ETIMEDOUT)
                t = strprintf("etcd at %s did not answer within %" PRIu64 " s",
                              etcd_endpoint(l->etcd), l->timeout_usec / USEC_PER_SEC);
        else if (error && strstr(error, etcd_endpoint(l->etcd)))
                t = strdup(error);
        else
                t = strprintf("etcd at %s: %s", etcd_endpoint(l->etcd),
                              error ? error : strerror(-r));
        free(l->last_error_text);
        l->last_error_text = t;
        l->last_error = r;
}

const char *fleet_lease_error_text(const FleetLease *l) {
        return l->last_error_text ? l->last_error_text : "cannot reach etcd";
}

void fleet_lease_note_doubt(FleetLease *l) {
        uint64_t period = l->ttl * USEC_PER_SEC / 3;

        l->sweeps_left = (unsigned) (SWEEP_SPAN_USEC / (period ? period : 1)) + 1;
}

/*
 * The health that STATUS, FleetState and STATUS= tell. Late: a keepalive has not answered
 * within LATE_USEC (etcd answers one in milliseconds when it is well), or failed, and the
 * lease is still safe. Lost: from the loss until the next grant answers. Unreachable: the
 * last grant failed (etcd does not answer, or refuses), lost lease or not.
 */
FleetState fleet_lease_state(const FleetLease *l, char *text, size_t len) {
        if (l->id != 0) {
                (void) snprintf(text, len, l->renew_late ? "renewing late" : "lease held");
                return l->renew_late ? FLEET_STATE_LATE : FLEET_STATE_HELD;
        }
        if (l->grant_failures > 0) {
                /* etcd's words may be in it: one line of UTF-8 for STATUS= and D-Bus */
                char safe[FLEET_HEALTH_TEXT_MAX];

                (void) snprintf(text, len, "etcd unreachable: %s",
                                escape_text(fleet_lease_error_text(l), safe, sizeof safe));
                return FLEET_STATE_UNREACHABLE;
        }
        if (l->lease_was_lost) {
                (void) snprintf(text, len, "lease lost");
                return FLEET_STATE_LOST;
        }
        (void) snprintf(text, len, "starting: asking etcd at %s for a lease",
                        etcd_endpoint(l->etcd));
        return FLEET_STATE_STARTING;
}



static json_object *lease_request(int64_t id) {
        json_object *req = json_object_new_object();
        char s[24];

        (void) snprintf(s, sizeof s, "%" PRIi64, id);
        json_object_object_add(req, "ID", json_object_new_string(s));
        return req;
}

static void on_revoked(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        if (r < 0 && r != -ENOENT)
                log_debug("Cannot revoke an old etcd lease: %s", error ? error : strerror(-r));
}

static void lease_revoke(FleetLease *l, int64_t id) {
        json_object *req = lease_request(id);

        (void) etcd_call(l->etcd, "/v3/lease/revoke", req, on_revoked, l, NULL);
        json_object_put(req);
}

static int on_lease_timer(sd_event_source *es, uint64_t usec, void *userdata);
static int on_danger(sd_event_source *es, uint64_t usec, void *userdata);

static void lease_timer_at(FleetLease *l, uint64_t usec) {
        l->lease_timer = sd_event_source_disable_unref(l->lease_timer);
        if (sd_event_add_time(l->event, &l->lease_timer, CLOCK_MONOTONIC, usec, 0,
                              on_lease_timer, l) < 0) {
                l->lease_timer = NULL;
                log_error("Cannot arm the etcd lease's timer");
        }
}

static void danger_timer_arm(FleetLease *l) {
        l->danger_timer = sd_event_source_disable_unref(l->danger_timer);
        if (sd_event_add_time(l->event, &l->danger_timer, CLOCK_MONOTONIC, l->lease_safe_usec,
                              0, on_danger, l) < 0) {
                l->danger_timer = NULL;
                log_error("Cannot arm the etcd lease's expiry timer");
        }
}

/* Two thirds of the lease's sure life, from SENT (when the request that set it left). */
static void lease_renewed(FleetLease *l, uint64_t sent, int64_t ttl) {
        l->lease_ttl = ttl;
        l->lease_safe_usec = sent + (uint64_t) ttl * USEC_PER_SEC * 2 / 3;
        danger_timer_arm(l);
}

static void lease_lost(FleetLease *l, const char *why) {
        _cleanup_free_ char *text = NULL;
        int64_t old = l->id;
        unsigned held;

        if (old == 0)
                return;
        text = strprintf("the etcd lease of host %s was lost: %s", l->host, why);
        held = l->hooks.held(l->hooks.userdata);
        log_warning("Lost etcd lease %" PRIx64 ": %s; %u fleet seat%s lost", (uint64_t) old,
                    why, held, held == 1 ? "" : "s");
        l->id = 0;
        l->lease_was_lost = true;
        l->renew_late = false;
        l->late_timer = sd_event_source_disable_unref(l->late_timer);
        l->keepalive_call = etcd_call_cancel(l->keepalive_call);
        l->sweep_call = etcd_call_cancel(l->sweep_call);
        l->danger_timer = sd_event_source_disable_unref(l->danger_timer);
        l->lease_timer = sd_event_source_disable_unref(l->lease_timer);
        l->revoke_lease = old;
        l->hooks.lost(l->hooks.userdata, text ? text : why);
        fleet_lease_changed(l);
        fleet_lease_grant(l);
}

static int on_danger(sd_event_source *es, uint64_t usec, void *userdata) {
        FleetLease *l = userdata;
        _cleanup_free_ char *why = NULL;

        l->danger_timer = sd_event_source_disable_unref(l->danger_timer);
        if (l->id == 0)
                return 0;
        if (now_usec() < l->lease_safe_usec) {
                danger_timer_arm(l);
                return 0;
        }
        why = strprintf("not renewed for %" PRIi64 " s of its %" PRIi64 " s: %s",
                        l->lease_ttl * 2 / 3, l->lease_ttl,
                        l->last_error_text ? l->last_error_text : "etcd did not answer in time");
        lease_lost(l, why ? why : "not renewed in time");
        return 0;
}

static void on_swept(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        if (r < 0)
                fleet_lease_note_doubt(userdata);     /* look again later */
}

/* Deletes every key on our lease that no seat of ours claims: see fleet-seat.c's top. */
static void on_sweep(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        FleetLease *l = userdata;
        json_object *keys = NULL;

        l->sweep_call = NULL;
        if (r < 0 || !json_object_object_get_ex(reply, "keys", &keys) ||
            !json_object_is_type(keys, json_type_array)) {
                if (r < 0)
                        l->sweeps_left++;
                return;
        }
        for (size_t i = 0; i < json_object_array_length(keys); i++) {
                const char *k64 = json_object_get_string(json_object_array_get_idx(keys, i));
                _cleanup_free_ char *key = NULL;
                json_object *req;
                size_t len;

                if (!k64 || etcd_unbase64(k64, &key, &len) < 0 || l->hooks.key_claimed(l->hooks.userdata, key))
                        continue;
                log_info("Deleting fleet key %s: it is on our lease, but no seat of ours "
                         "claims it (a reply to its write was lost)", key);
                req = json_object_new_object();
                json_object_object_add(req, "key", json_object_new_string(k64));
                (void) etcd_call(l->etcd, "/v3/kv/deleterange", req, on_swept, l, NULL);
                json_object_put(req);
        }
}

static void lease_sweep(FleetLease *l) {
        json_object *req;

        if (l->sweep_call || l->sweeps_left == 0 || l->id == 0)
                return;
        l->sweeps_left--;
        req = lease_request(l->id);
        json_object_object_add(req, "keys", json_object_new_boolean(true));
        if (etcd_call(l->etcd, "/v3/lease/timetolive", req, on_sweep, l, &l->sweep_call) < 0)
                l->sweep_call = NULL;
        json_object_put(req);
}

static void on_keepalive(Etcd *e, int r, json_object *reply, const char *error,
                         void *userdata) {
        FleetLease *l = userdata;
        uint64_t sent = l->keepalive_sent_usec;
        int64_t ttl;

        l->keepalive_call = NULL;
        l->late_timer = sd_event_source_disable_unref(l->late_timer);
        reply = r >= 0 ? json_unwrap_result(reply) : NULL;
        ttl = reply ? json_int(reply, "TTL") : 0;
        if (r == -ENOENT || (r >= 0 && ttl <= 0)) {
                lease_lost(l, "etcd says it expired");
                return;
        }
        if (r < 0) {
                bool first = l->last_error == 0;

                fleet_lease_set_error(l, r, error);
                if (first)
                        log_warning("Cannot renew etcd lease %" PRIx64 ": %s", (uint64_t) l->id,
                                    fleet_lease_error_text(l));
                l->renew_late = true;
        } else {
                if (l->last_error != 0)
                        log_info("Renewed etcd lease %" PRIx64 " again", (uint64_t) l->id);
                l->last_error = 0;
                l->last_error_text = mfree(l->last_error_text);
                l->renew_late = false;
                lease_renewed(l, sent, ttl);
                lease_sweep(l);
        }
        fleet_lease_changed(l);
        lease_timer_at(l, sent + l->ttl * USEC_PER_SEC / 3);
}

static int on_late(sd_event_source *es, uint64_t usec, void *userdata) {
        FleetLease *l = userdata;

        l->late_timer = sd_event_source_disable_unref(l->late_timer);
        if (l->id != 0 && l->keepalive_call) {
                l->renew_late = true;
                fleet_lease_changed(l);
        }
        return 0;
}

static void lease_keepalive(FleetLease *l) {
        json_object *req;
        uint64_t period = l->ttl * USEC_PER_SEC / 3;

        if (l->keepalive_call)
                return;
        req = lease_request(l->id);
        l->keepalive_sent_usec = now_usec();
        l->late_timer = sd_event_source_disable_unref(l->late_timer);
        if (sd_event_add_time(l->event, &l->late_timer, CLOCK_MONOTONIC, l->keepalive_sent_usec +
                              (period / 2 < LATE_USEC ? period / 2 : LATE_USEC), 0, on_late,
                              l) < 0)
                l->late_timer = NULL;           /* then only a failure says late */
        /* no longer than one period: a slow answer must not delay the next attempt */
        if (etcd_call_timeout(l->etcd, "/v3/lease/keepalive", req,
                              period < l->timeout_usec ? period : l->timeout_usec,
                              on_keepalive, l, &l->keepalive_call) < 0) {
                l->keepalive_call = NULL;
                lease_timer_at(l, l->keepalive_sent_usec + period);
        }
        json_object_put(req);
}

/* The next grant: after the back-off, but within a second while a join waits for it. */
static uint64_t grant_retry_usec(FleetLease *l) {
        uint64_t u = fleet_backoff_usec(l->grant_failures);

        if (l->hooks.joins_wait(l->hooks.userdata))
                return u < USEC_PER_SEC ? u : USEC_PER_SEC;
        return u;
}

static void on_grant(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        FleetLease *l = userdata;
        uint64_t sent = l->grant_sent_usec;
        int64_t id, ttl;

        l->grant_call = NULL;
        id = r >= 0 ? json_int(reply, "ID") : 0;
        ttl = r >= 0 ? json_int(reply, "TTL") : 0;
        if (r >= 0 && (id == 0 || ttl <= 0)) {
                json_object *o = NULL;

                r = -EIO;
                error = json_object_object_get_ex(reply, "error", &o) ?
                        json_object_get_string(o) : "the lease grant answered no lease";
        }
        if (r < 0) {
                fleet_lease_set_error(l, r, error);
                if (l->grant_failures++ == 0)
                        log_warning("Cannot get an etcd lease (retrying): %s",
                                    fleet_lease_error_text(l));
                l->hooks.grant_failed(l->hooks.userdata);
                fleet_lease_changed(l);
                lease_timer_at(l, now_usec() + grant_retry_usec(l));
                return;
        }
        l->id = id;
        l->last_error = 0;
        l->grant_failures = 0;
        l->lease_was_lost = false;
        l->renew_late = false;
        log_info("Holding etcd lease %" PRIx64 " (TTL %" PRIi64 " s) at %s as host %s",
                 (uint64_t) id, ttl, etcd_endpoint(l->etcd), l->host);
        if (l->revoke_lease != 0) {
                lease_revoke(l, l->revoke_lease);
                l->revoke_lease = 0;
        }
        lease_renewed(l, sent, ttl);
        lease_timer_at(l, sent + l->ttl * USEC_PER_SEC / 3);
        l->hooks.granted(l->hooks.userdata);
        fleet_lease_changed(l);
}

void fleet_lease_grant(FleetLease *l) {
        json_object *req;

        if (l->grant_call || l->id != 0)
                return;
        l->lease_timer = sd_event_source_disable_unref(l->lease_timer);
        req = json_object_new_object();
        json_object_object_add(req, "TTL", json_object_new_int64(l->ttl));
        l->grant_sent_usec = now_usec();
        if (etcd_call(l->etcd, "/v3/lease/grant", req, on_grant, l, &l->grant_call) < 0) {
                l->grant_call = NULL;
                lease_timer_at(l, now_usec() + fleet_backoff_usec(l->grant_failures++));
        }
        json_object_put(req);
}

static int on_lease_timer(sd_event_source *es, uint64_t usec, void *userdata) {
        FleetLease *l = userdata;

        l->lease_timer = sd_event_source_disable_unref(l->lease_timer);
        if (l->id == 0)
                fleet_lease_grant(l);
        else
                lease_keepalive(l);
        return 0;
}


static const char *const state_table[_FLEET_STATE_MAX] = {
        [FLEET_STATE_STARTING] = HC_FLEET_STATE_STARTING,
        [FLEET_STATE_HELD] = HC_FLEET_STATE_HELD,
        [FLEET_STATE_LATE] = HC_FLEET_STATE_LATE,
        [FLEET_STATE_LOST] = HC_FLEET_STATE_LOST,
        [FLEET_STATE_UNREACHABLE] = HC_FLEET_STATE_UNREACHABLE,
};

const char *fleet_state_to_string(FleetState s) {
        return s >= 0 && s < _FLEET_STATE_MAX ? state_table[s] : HC_FLEET_STATE_UNREACHABLE;
}

void fleet_lease_changed(FleetLease *l) {
        l->hooks.changed(l->hooks.userdata);
}

int64_t fleet_lease_id(const FleetLease *l) {
        return l->id;
}

int fleet_lease_error(const FleetLease *l) {
        return l->last_error;
}

bool fleet_lease_failing(const FleetLease *l) {
        return l->grant_failures > 0 && l->last_error != 0;
}

int fleet_lease_new(sd_event *event, Etcd *etcd, const char *host, unsigned ttl,
                    uint64_t timeout_usec, const FleetLeaseHooks *hooks, FleetLease **ret) {
        FleetLease *l = calloc(1, sizeof *l);

        if (!l)
                return -ENOMEM;
        l->event = event;
        l->etcd = etcd;
        l->hooks = *hooks;
        (void) snprintf(l->host, sizeof l->host, "%s", host);
        l->ttl = ttl;
        l->timeout_usec = timeout_usec;
        *ret = l;
        return 0;
}

static void on_stop_revoked(Etcd *e, int r, json_object *reply, const char *error,
                            void *userdata) {
        FleetLease *l = userdata;

        if (r < 0)
                log_warning("Cannot revoke etcd lease %" PRIx64 " on the way out (%s); this "
                            "host's fleet seats go when it expires", (uint64_t) l->id,
                            error ? error : strerror(-r));
        l->stopped(l->stopped_userdata);
}

/* No call in flight, no timer armed: the lease does nothing more by itself. */
static void lease_quiet(FleetLease *l) {
        l->grant_call = etcd_call_cancel(l->grant_call);
        l->keepalive_call = etcd_call_cancel(l->keepalive_call);
        l->sweep_call = etcd_call_cancel(l->sweep_call);
        l->lease_timer = sd_event_source_disable_unref(l->lease_timer);
        l->danger_timer = sd_event_source_disable_unref(l->danger_timer);
        l->late_timer = sd_event_source_disable_unref(l->late_timer);
}

/* Renews no more, and revokes the lease so that this host's seats leave the fleet at once
 * rather than after TTL: returns 1 when DONE will be called once etcd answered (a second
 * at most), 0 when there is nothing to wait for. */
int fleet_lease_stop(FleetLease *l, void (*done)(void *userdata), void *userdata) {
        json_object *req;
        int r;

        lease_quiet(l);
        if (l->id == 0)
                return 0;
        l->stopped = done;
        l->stopped_userdata = userdata;
        req = lease_request(l->id);
        r = etcd_call_timeout(l->etcd, "/v3/lease/revoke", req, USEC_PER_SEC,
                              on_stop_revoked, l, NULL);
        json_object_put(req);
        return r < 0 ? 0 : 1;
}

FleetLease *fleet_lease_free(FleetLease *l) {
        if (!l)
                return NULL;
        lease_quiet(l);
        free(l->last_error_text);
        free(l);
        return NULL;
}
