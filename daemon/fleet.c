/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * headcountd as the fleet agent (--etcd): its life cycle and the host's etcd lease, which
 * every seat key of this host is put on (fleet-seat.c). docs/fleet.md is the design.
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
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "escape.h"
#include "fleet.h"
#include "log.h"
#include "strprintf.h"
#include "time-util.h"

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

void fleet_set_error(Fleet *f, int r, const char *error) {
        char *t = NULL;

        if (r == -ETIMEDOUT)
                t = strprintf("etcd at %s did not answer within %" PRIu64 " s",
                              etcd_endpoint(f->etcd), f->timeout_usec / USEC_PER_SEC);
        else if (error && strstr(error, etcd_endpoint(f->etcd)))
                t = strdup(error);
        else
                t = strprintf("etcd at %s: %s", etcd_endpoint(f->etcd),
                              error ? error : strerror(-r));
        free(f->last_error_text);
        f->last_error_text = t;
        f->last_error = r;
}

const char *fleet_error_text(Fleet *f) {
        return f->last_error_text ? f->last_error_text : "cannot reach etcd";
}

void fleet_note_doubt(Fleet *f) {
        uint64_t period = f->ttl * USEC_PER_SEC / 3;

        f->sweeps_left = (unsigned) (SWEEP_SPAN_USEC / (period ? period : 1)) + 1;
}

/*
 * The health that STATUS, FleetState and STATUS= tell. Late: a keepalive has not answered
 * within LATE_USEC (etcd answers one in milliseconds when it is well), or failed, and the
 * lease is still safe. Lost: from the loss until the next grant answers. Unreachable: the
 * last grant failed (etcd does not answer, or refuses), lost lease or not.
 */
FleetState fleet_state(Fleet *f, char *text, size_t len) {
        if (f->lease != 0) {
                (void) snprintf(text, len, f->renew_late ? "renewing late" : "lease held");
                return f->renew_late ? FLEET_STATE_LATE : FLEET_STATE_HELD;
        }
        if (f->grant_failures > 0) {
                /* etcd's words may be in it: one line of UTF-8 for STATUS= and D-Bus */
                char safe[FLEET_HEALTH_TEXT_MAX];

                (void) snprintf(text, len, "etcd unreachable: %s",
                                escape_text(fleet_error_text(f), safe, sizeof safe));
                return FLEET_STATE_UNREACHABLE;
        }
        if (f->lease_was_lost) {
                (void) snprintf(text, len, "lease lost");
                return FLEET_STATE_LOST;
        }
        (void) snprintf(text, len, "starting: asking etcd at %s for a lease",
                        etcd_endpoint(f->etcd));
        return FLEET_STATE_STARTING;
}

void fleet_conn_status(FleetConn *c) {
        char text[FLEET_HEALTH_TEXT_MAX];
        FleetState state = fleet_state(c->fleet, text, sizeof text);

        fleet_conn_send(c, "OK", fleet_state_to_string(state), text, (char *) NULL);
}

void fleet_health_update(Fleet *f) {
        char text[FLEET_HEALTH_TEXT_MAX];
        FleetState state;

        if (!f->bridge || f->stopping)
                return;
        state = fleet_state(f, text, sizeof text);
        fleet_bridge_post_health(f->bridge, state, text, f->n_held);
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

static void lease_revoke(Fleet *f, int64_t id) {
        json_object *req = lease_request(id);

        (void) etcd_call(f->etcd, "/v3/lease/revoke", req, on_revoked, f, NULL);
        json_object_put(req);
}

static int on_lease_timer(sd_event_source *es, uint64_t usec, void *userdata);
static int on_danger(sd_event_source *es, uint64_t usec, void *userdata);

static void lease_timer_at(Fleet *f, uint64_t usec) {
        f->lease_timer = sd_event_source_disable_unref(f->lease_timer);
        if (sd_event_add_time(f->event, &f->lease_timer, CLOCK_MONOTONIC, usec, 0,
                              on_lease_timer, f) < 0) {
                f->lease_timer = NULL;
                log_error("Cannot arm the etcd lease's timer");
        }
}

static void danger_timer_arm(Fleet *f) {
        f->danger_timer = sd_event_source_disable_unref(f->danger_timer);
        if (sd_event_add_time(f->event, &f->danger_timer, CLOCK_MONOTONIC, f->lease_safe_usec,
                              0, on_danger, f) < 0) {
                f->danger_timer = NULL;
                log_error("Cannot arm the etcd lease's expiry timer");
        }
}

/* Two thirds of the lease's sure life, from SENT (when the request that set it left). */
static void lease_renewed(Fleet *f, uint64_t sent, int64_t ttl) {
        f->lease_ttl = ttl;
        f->lease_safe_usec = sent + (uint64_t) ttl * USEC_PER_SEC * 2 / 3;
        danger_timer_arm(f);
}

static void lease_lost(Fleet *f, const char *why) {
        _cleanup_free_ char *text = NULL;
        int64_t old = f->lease;

        if (old == 0)
                return;
        text = strprintf("the etcd lease of host %s was lost: %s", f->host, why);
        log_warning("Lost etcd lease %" PRIx64 ": %s; %u fleet seat%s lost", (uint64_t) old,
                    why, f->n_held, f->n_held == 1 ? "" : "s");
        f->lease = 0;
        f->lease_was_lost = true;
        f->renew_late = false;
        f->late_timer = sd_event_source_disable_unref(f->late_timer);
        f->keepalive_call = etcd_call_cancel(f->keepalive_call);
        f->sweep_call = etcd_call_cancel(f->sweep_call);
        f->danger_timer = sd_event_source_disable_unref(f->danger_timer);
        f->lease_timer = sd_event_source_disable_unref(f->lease_timer);
        f->revoke_lease = old;
        fleet_seats_lost(f, text ? text : why);
        fleet_health_update(f);
        fleet_lease_grant(f);
}

static int on_danger(sd_event_source *es, uint64_t usec, void *userdata) {
        Fleet *f = userdata;
        _cleanup_free_ char *why = NULL;

        f->danger_timer = sd_event_source_disable_unref(f->danger_timer);
        if (f->lease == 0)
                return 0;
        if (now_usec() < f->lease_safe_usec) {
                danger_timer_arm(f);
                return 0;
        }
        why = strprintf("not renewed for %" PRIi64 " s of its %" PRIi64 " s: %s",
                        f->lease_ttl * 2 / 3, f->lease_ttl,
                        f->last_error_text ? f->last_error_text : "etcd did not answer in time");
        lease_lost(f, why ? why : "not renewed in time");
        return 0;
}

static void on_swept(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        if (r < 0)
                fleet_note_doubt(userdata);     /* look again later */
}

/* Deletes every key on our lease that no seat of ours claims: see fleet-seat.c's top. */
static void on_sweep(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        Fleet *f = userdata;
        json_object *keys = NULL;

        f->sweep_call = NULL;
        if (r < 0 || !json_object_object_get_ex(reply, "keys", &keys) ||
            !json_object_is_type(keys, json_type_array)) {
                if (r < 0)
                        f->sweeps_left++;
                return;
        }
        for (size_t i = 0; i < json_object_array_length(keys); i++) {
                const char *k64 = json_object_get_string(json_object_array_get_idx(keys, i));
                _cleanup_free_ char *key = NULL;
                json_object *req;
                size_t len;

                if (!k64 || etcd_unbase64(k64, &key, &len) < 0 || fleet_seat_key_known(f, key))
                        continue;
                log_info("Deleting fleet key %s: it is on our lease, but no seat of ours "
                         "claims it (a reply to its write was lost)", key);
                req = json_object_new_object();
                json_object_object_add(req, "key", json_object_new_string(k64));
                (void) etcd_call(f->etcd, "/v3/kv/deleterange", req, on_swept, f, NULL);
                json_object_put(req);
        }
}

static void lease_sweep(Fleet *f) {
        json_object *req;

        if (f->sweep_call || f->sweeps_left == 0 || f->lease == 0)
                return;
        f->sweeps_left--;
        req = lease_request(f->lease);
        json_object_object_add(req, "keys", json_object_new_boolean(true));
        if (etcd_call(f->etcd, "/v3/lease/timetolive", req, on_sweep, f, &f->sweep_call) < 0)
                f->sweep_call = NULL;
        json_object_put(req);
}

static void on_keepalive(Etcd *e, int r, json_object *reply, const char *error,
                         void *userdata) {
        Fleet *f = userdata;
        uint64_t sent = f->keepalive_sent_usec;
        int64_t ttl;

        f->keepalive_call = NULL;
        f->late_timer = sd_event_source_disable_unref(f->late_timer);
        reply = r >= 0 ? json_unwrap_result(reply) : NULL;
        ttl = reply ? json_int(reply, "TTL") : 0;
        if (r == -ENOENT || (r >= 0 && ttl <= 0)) {
                lease_lost(f, "etcd says it expired");
                return;
        }
        if (r < 0) {
                bool first = f->last_error == 0;

                fleet_set_error(f, r, error);
                if (first)
                        log_warning("Cannot renew etcd lease %" PRIx64 ": %s", (uint64_t) f->lease,
                                    fleet_error_text(f));
                f->renew_late = true;
        } else {
                if (f->last_error != 0)
                        log_info("Renewed etcd lease %" PRIx64 " again", (uint64_t) f->lease);
                f->last_error = 0;
                f->last_error_text = mfree(f->last_error_text);
                f->renew_late = false;
                lease_renewed(f, sent, ttl);
                lease_sweep(f);
        }
        fleet_health_update(f);
        lease_timer_at(f, sent + f->ttl * USEC_PER_SEC / 3);
}

static int on_late(sd_event_source *es, uint64_t usec, void *userdata) {
        Fleet *f = userdata;

        f->late_timer = sd_event_source_disable_unref(f->late_timer);
        if (f->lease != 0 && f->keepalive_call) {
                f->renew_late = true;
                fleet_health_update(f);
        }
        return 0;
}

static void lease_keepalive(Fleet *f) {
        json_object *req;
        uint64_t period = f->ttl * USEC_PER_SEC / 3;

        if (f->keepalive_call)
                return;
        req = lease_request(f->lease);
        f->keepalive_sent_usec = now_usec();
        f->late_timer = sd_event_source_disable_unref(f->late_timer);
        if (sd_event_add_time(f->event, &f->late_timer, CLOCK_MONOTONIC, f->keepalive_sent_usec +
                              (period / 2 < LATE_USEC ? period / 2 : LATE_USEC), 0, on_late,
                              f) < 0)
                f->late_timer = NULL;           /* then only a failure says late */
        /* no longer than one period: a slow answer must not delay the next attempt */
        if (etcd_call_timeout(f->etcd, "/v3/lease/keepalive", req,
                              period < f->timeout_usec ? period : f->timeout_usec,
                              on_keepalive, f, &f->keepalive_call) < 0) {
                f->keepalive_call = NULL;
                lease_timer_at(f, f->keepalive_sent_usec + period);
        }
        json_object_put(req);
}

/* The next grant: after the back-off, but within a second while a join waits for it. */
static uint64_t grant_retry_usec(Fleet *f) {
        uint64_t u = fleet_backoff_usec(f->grant_failures);

        for (FleetSeat *s = f->seats; s; s = s->next)
                if (s->state == SEAT_NEED_LEASE)
                        return u < USEC_PER_SEC ? u : USEC_PER_SEC;
        return u;
}

static void on_grant(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        Fleet *f = userdata;
        uint64_t sent = f->grant_sent_usec;
        int64_t id, ttl;

        f->grant_call = NULL;
        id = r >= 0 ? json_int(reply, "ID") : 0;
        ttl = r >= 0 ? json_int(reply, "TTL") : 0;
        if (r >= 0 && (id == 0 || ttl <= 0)) {
                json_object *o = NULL;

                r = -EIO;
                error = json_object_object_get_ex(reply, "error", &o) ?
                        json_object_get_string(o) : "the lease grant answered no lease";
        }
        if (r < 0) {
                fleet_set_error(f, r, error);
                if (f->grant_failures++ == 0)
                        log_warning("Cannot get an etcd lease (retrying): %s",
                                    fleet_error_text(f));
                fleet_seats_lease_failed(f);
                fleet_health_update(f);
                lease_timer_at(f, now_usec() + grant_retry_usec(f));
                return;
        }
        f->lease = id;
        f->last_error = 0;
        f->grant_failures = 0;
        f->lease_was_lost = false;
        f->renew_late = false;
        log_info("Holding etcd lease %" PRIx64 " (TTL %" PRIi64 " s) at %s as host %s",
                 (uint64_t) id, ttl, etcd_endpoint(f->etcd), f->host);
        if (f->revoke_lease != 0) {
                lease_revoke(f, f->revoke_lease);
                f->revoke_lease = 0;
        }
        lease_renewed(f, sent, ttl);
        lease_timer_at(f, sent + f->ttl * USEC_PER_SEC / 3);
        fleet_seats_lease_ready(f);
        fleet_health_update(f);
}

void fleet_lease_grant(Fleet *f) {
        json_object *req;

        if (f->grant_call || f->lease != 0)
                return;
        f->lease_timer = sd_event_source_disable_unref(f->lease_timer);
        req = json_object_new_object();
        json_object_object_add(req, "TTL", json_object_new_int64(f->ttl));
        f->grant_sent_usec = now_usec();
        if (etcd_call(f->etcd, "/v3/lease/grant", req, on_grant, f, &f->grant_call) < 0) {
                f->grant_call = NULL;
                lease_timer_at(f, now_usec() + fleet_backoff_usec(f->grant_failures++));
        }
        json_object_put(req);
}

static int on_lease_timer(sd_event_source *es, uint64_t usec, void *userdata) {
        Fleet *f = userdata;

        f->lease_timer = sd_event_source_disable_unref(f->lease_timer);
        if (f->lease == 0)
                fleet_lease_grant(f);
        else
                lease_keepalive(f);
        return 0;
}

/* This boot's id, as the kernel says it, for the seat keys (a pid is one boot's). */
static void read_boot_id(char *buf, size_t len) {
        int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;
        size_t k = 0;

        if (fd >= 0)
                (void) close(fd);
        for (ssize_t i = 0; i < n; i++)
                if ((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f') ||
                    buf[i] == '-')
                        buf[k++] = buf[i];
        buf[k] = '\0';
        if (k == 0)
                (void) snprintf(buf, len, "unknown");
}

int fleet_new(FleetBridge *b, sd_event *event, const FleetConfig *config, const char *dir,
              Fleet **ret) {
        Fleet *f;
        struct stat st;
        int k;

        f = calloc(1, sizeof *f);
        if (!f)
                return log_oom();
        f->bridge = b;
        f->event = event;
        f->listen_fd = -1;
        f->dir_fd = -1;
        f->conn_epoll = -1;
        f->ttl = config->ttl;
        f->system_scope = config->system_scope;
        fleet_set_caps(f, config->user_connections, config->user_names);
        f->timeout_usec = (uint64_t) config->timeout * USEC_PER_SEC;
        (void) snprintf(f->host, sizeof f->host, "%s", config->host);
        read_boot_id(f->boot_id, sizeof f->boot_id);
        f->endpoints = strdup(config->endpoints);
        f->prefix = strdup(config->prefix);
        if (!f->endpoints || !f->prefix) {
                fleet_free(f);
                return log_oom();
        }
        /* the prefix check names a role that lacks the prefix before the lease is granted */
        k = etcd_new(f->event, &(EtcdConfig) {
                        .endpoints = f->endpoints, .timeout_usec = f->timeout_usec,
                        .cacert = config->cacert, .cert = config->cert, .key = config->key,
                        .user = config->user, .password = config->password,
                        .check_prefix = f->prefix,
                }, &f->etcd);
        if (k < 0) {
                fleet_free(f);
                return log_error_errno(k, "Cannot use the etcd endpoints '%s': %m",
                                       config->endpoints);
        }

        /* Others may connect when others may enter the directory: the system scope, or a
         * --dir that is not private (its permissions are then the gate). */
        k = stat(dir, &st);
        k = fleet_socket_open(f, dir, k == 0 && (st.st_mode & S_IXOTH));
        if (k < 0) {
                fleet_free(f);
                return k;
        }
        fleet_lease_grant(f);
        fleet_health_update(f);
        *ret = f;
        return 0;
}

static void on_stop_revoked(Etcd *e, int r, json_object *reply, const char *error,
                            void *userdata) {
        Fleet *f = userdata;

        if (r < 0)
                log_warning("Cannot revoke etcd lease %" PRIx64 " on the way out (%s); this "
                            "host's fleet seats go when it expires", (uint64_t) f->lease,
                            error ? error : strerror(-r));
        (void) sd_event_exit(f->event, f->exit_code);
}

/*
 * A stop: every holder hears the hang-up, and the lease is revoked so that this host's
 * seats leave the fleet at once rather than after TTL. Returns 1 when the loop will exit
 * once etcd answered (a second at most), 0 when the caller should exit now.
 */
int fleet_stop(Fleet *f, int exit_code) {
        json_object *req;
        int r;

        if (f->stopping)
                return 0;
        f->stopping = true;
        f->exit_code = exit_code;
        fleet_socket_close(f);
        fleet_seats_lost(f, "the agent stopped");
        f->keepalive_call = etcd_call_cancel(f->keepalive_call);
        f->lease_timer = sd_event_source_disable_unref(f->lease_timer);
        f->danger_timer = sd_event_source_disable_unref(f->danger_timer);
        f->late_timer = sd_event_source_disable_unref(f->late_timer);
        if (f->lease == 0)
                return 0;
        req = lease_request(f->lease);
        r = etcd_call_timeout(f->etcd, "/v3/lease/revoke", req, USEC_PER_SEC,
                                  on_stop_revoked, f, NULL);
        json_object_put(req);
        return r < 0 ? 0 : 1;
}

Fleet *fleet_free(Fleet *f) {
        if (!f)
                return NULL;
        f->stopping = true;
        fleet_socket_close(f);                  /* every seat's holder hears the hang-up */
        fleet_seats_lost(f, "the agent stopped");
        fleet_bus_calls_free(f);
        f->grant_call = etcd_call_cancel(f->grant_call);
        f->keepalive_call = etcd_call_cancel(f->keepalive_call);
        f->sweep_call = etcd_call_cancel(f->sweep_call);
        f->lease_timer = sd_event_source_disable_unref(f->lease_timer);
        f->danger_timer = sd_event_source_disable_unref(f->danger_timer);
        f->late_timer = sd_event_source_disable_unref(f->late_timer);
        f->etcd = etcd_free(f->etcd);
        free(f->last_error_text);
        free(f->endpoints);
        free(f->prefix);
        free(f);
        return NULL;
}
