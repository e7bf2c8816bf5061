/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A private world for headcountd's tests and benchmark: a scratch directory, a private
 * session bus, a notification socket that plays systemd's part, the daemon itself, a
 * client bus connection that records signals, and seat holders to kill.
 */
#ifndef HCD_TEST_HARNESS_H
#define HCD_TEST_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "time-util.h"          /* now_usec(), the clock of every time stamp here */

#define HARNESS_SIGNALS_MAX 4096

struct harness_signal {
        char member[32];                 /* CountChanged, FleetCountChanged, RegionAdded,
                                          * RegionRemoved, or
                                          * InstanceEvent:join|leave|died (count: the pid) */
        char name[256];
        uint32_t count;
        uint64_t usec;                   /* CLOCK_MONOTONIC when we read it */
};

struct harness {
        char top[PATH_MAX / 2];          /* mkdtemp: holds everything below */
        char dir[PATH_MAX];              /* the scope directory, top/scope */
        char log[PATH_MAX];              /* the daemon's stderr, top/daemon.log */
        char notify_path[PATH_MAX];      /* top/notify */
        int notify_fd;
        char notes[256][512];            /* notification lines read and not yet consumed */
        size_t n_notes;
        pid_t bus_pid;
        char bus_address[1024];
        pid_t daemon_pid;
        bool daemon_closed_stdio;        /* start it with 0, 1 and 2 closed, logging nowhere */
        sd_bus *bus;                     /* our client connection */
        pid_t spawned[256];              /* holders and their children, killed at the end */
        size_t n_spawned;
        struct harness_signal signals[HARNESS_SIGNALS_MAX];
        size_t n_signals;                /* received and not yet consumed */
};

/* The daemon binary: $HEADCOUNTD, else $HC_BUILDDIR/daemon/headcountd, else the build's. */
const char *harness_daemon_path(void);

/* 1 when dbus-daemon can be run, else 0 (the callers skip). */
int harness_have_dbus(void);

int harness_init(struct harness *h);
int harness_start_bus(struct harness *h);

/* Starts headcountd --dir h->dir plus ARGS (NULL-terminated, may be NULL), with
 * WATCHDOG_USEC set when WATCHDOG_USEC is non-zero and its stderr in h->log. Stores the
 * pid in h->daemon_pid unless RET_PID is given. Does not wait for READY=1. */
int harness_spawn_daemon(struct harness *h, const char *const *args, uint64_t watchdog_usec,
                         pid_t *ret_pid);

/* Reads notifications until a line contains NEEDLE; copies that line into RET. Lines
 * before it are consumed. Notifications are also read (and kept) while we wait for
 * signals, so that the daemon never blocks on a full socket. */
int harness_notify_wait(struct harness *h, const char *needle, int timeout_ms,
                        char *ret, size_t len);

/* Connects the client and subscribes to the daemon's signals. */
int harness_connect(struct harness *h);

/* Processes the bus until MEMBER(NAME[, COUNT]) arrives (COUNT < 0: any count); earlier
 * signals are consumed. Stores the time it was read in *RET_USEC. */
int harness_wait_signal(struct harness *h, const char *member, const char *name, long count,
                        int timeout_ms, uint64_t *ret_usec);

/* Calls org.headcount.Manager1.Count(NAME). */
int harness_count(struct harness *h, const char *name, sd_bus_error *error, uint32_t *ret);

/* A child that joins NAME in h->dir (max, capacity, tag as given), reports back, and sleeps.
 * With FORK_CHILD it first forks a grandchild that shares the seat and sleeps too, and
 * stores its pid in *RET_GRANDCHILD. */
pid_t harness_spawn_holder(struct harness *h, const char *name, unsigned max, unsigned capacity,
                           const char *tag, bool fork_child, pid_t *ret_grandchild);

/* SIGKILL and reap. */
void harness_kill(pid_t pid);

/* Waits up to TIMEOUT_MS for PID to exit; returns its wait status or -ETIMEDOUT. */
int harness_wait_exit(pid_t pid, int timeout_ms);

/* Stops everything and removes the scratch directory. */
void harness_done(struct harness *h);

#endif
