/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * headcountd as the fleet agent (--etcd): its life cycle. It makes the etcd client, the
 * lease (fleet-lease.c) and the agent's socket (fleet-socket.c), and connects the lease's
 * events to the seats (fleet-seat.c) and the agent's health to the main thread. docs/fleet.md
 * is the design.
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
#include "fleet-socket.h"
#include "fleet.h"
#include "log.h"
#include "strprintf.h"
#include "time-util.h"

/* ---- The lease's hooks ---- */

static void on_lease_granted(void *userdata) {
        fleet_seats_lease_ready(userdata);
}

static void on_lease_grant_failed(void *userdata) {
        fleet_seats_lease_failed(userdata);
}

static void on_lease_lost(void *userdata, const char *why) {
        fleet_seats_lost(userdata, why);
}

static bool on_lease_key_claimed(void *userdata, const char *key) {
        return fleet_seat_key_known(userdata, key);
}

static bool on_lease_joins_wait(void *userdata) {
        return fleet_seats_need_lease(userdata);
}

static unsigned on_lease_held(void *userdata) {
        Fleet *f = userdata;

        return f->n_held;
}

/* The health, to the main thread (which tells STATUS=, FleetState and READY=1). */
static void on_lease_changed(void *userdata) {
        Fleet *f = userdata;
        char text[FLEET_HEALTH_TEXT_MAX];
        FleetState state;

        if (f->stopping)
                return;
        state = fleet_lease_state(f->lease, text, sizeof text);
        f->hooks.health(f->hooks.userdata, state, text, f->n_held);
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

int fleet_new(const FleetHooks *hooks, sd_event *event, const FleetConfig *config, const char *dir,
              Fleet **ret) {
        Fleet *f;
        struct stat st;
        int k;

        f = calloc(1, sizeof *f);
        if (!f)
                return log_oom();
        f->hooks = *hooks;
        f->name_events = (FleetNameEvents) {
                .changed = fleet_seats_rank_name,
                .counted = fleet_name_counted,
        };
        f->event = event;
        f->listen_fd = -1;
        f->dir_fd = -1;
        f->conn_epoll = -1;
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
        k = fleet_lease_new(f->event, f->etcd, f->host, config->ttl, f->timeout_usec,
                            &(FleetLeaseHooks) {
                                .granted = on_lease_granted,
                                .grant_failed = on_lease_grant_failed,
                                .lost = on_lease_lost,
                                .key_claimed = on_lease_key_claimed,
                                .joins_wait = on_lease_joins_wait,
                                .held = on_lease_held,
                                .changed = on_lease_changed,
                                .userdata = f,
                            }, &f->lease);
        if (k < 0) {
                fleet_free(f);
                return log_oom();
        }

        /* Others may connect when others may enter the directory: the system scope, or a
         * --dir that is not private (its permissions are then the gate). */
        k = stat(dir, &st);
        k = fleet_socket_open(f, dir, k == 0 && (st.st_mode & S_IXOTH));
        if (k < 0) {
                fleet_free(f);
                return k;
        }
        fleet_lease_grant(f->lease);
        fleet_lease_changed(f->lease);
        *ret = f;
        return 0;
}

static void on_stop_revoked(void *userdata) {
        Fleet *f = userdata;

        (void) sd_event_exit(f->event, f->exit_code);
}

/*
 * A stop: every holder hears the hang-up, and the lease is revoked so that this host's
 * seats leave the fleet at once rather than after TTL. Returns 1 when the loop will exit
 * once etcd answered (a second at most), 0 when the caller should exit now.
 */
int fleet_stop(Fleet *f, int exit_code) {
        if (f->stopping)
                return 0;
        f->stopping = true;
        f->exit_code = exit_code;
        fleet_socket_close(f);
        fleet_seats_lost(f, "the agent stopped");
        return fleet_lease_stop(f->lease, on_stop_revoked, f);
}

Fleet *fleet_free(Fleet *f) {
        if (!f)
                return NULL;
        f->stopping = true;
        fleet_socket_close(f);                  /* every seat's holder hears the hang-up */
        fleet_seats_lost(f, "the agent stopped");
        fleet_bus_calls_free(f);
        f->lease = fleet_lease_free(f->lease);
        f->etcd = etcd_free(f->etcd);
        free(f->endpoints);
        free(f->prefix);
        free(f);
        return NULL;
}
