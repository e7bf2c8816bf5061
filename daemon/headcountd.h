/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * headcountd: the state shared by the daemon's modules. The daemon keeps one Region per
 * region file in the scope directory and one Holder per live instance it has seen there;
 * monitor.c keeps them current, bus.c serves them, log.c reports their changes.
 */
#ifndef HEADCOUNTD_H
#define HEADCOUNTD_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "cleanup.h"
#include "headcount.h"

/* The daemon's own region: holding its only seat keeps a second daemon off the scope. */
/* Where a daemon keeps its single-instance lock: a directory only its own user can
 * write, never the scope directory, where others could see, take or pre-create it. */
#define HCD_LOCK_DIR_ROOT "/run/headcountd"
#define HCD_LOCK_SUBDIR "lock"           /* 0700 in it: nobody else may even open our lock */

#define HCD_BUS_NAME "org.headcount.Manager1"
#define HCD_BUS_PATH "/org/headcount/Manager1"
#define HCD_BUS_INTERFACE "org.headcount.Manager1"
#define HCD_BUS_ERROR_NO_SUCH_REGION "org.headcount.Manager1.Error.NoSuchRegion"

/* Re-checks after an event that changed nothing: 0.25, 0.5, 1, 2, 4, 8 ms. */
#define HCD_SETTLE_STEPS 6
#define HCD_SETTLE_FIRST_USEC 250

/* Every region is counted again this often, for seats reused through a handle that give
 * no inotify event while nobody waits in hc_wait(). */
#define HCD_RECHECK_USEC (1000 * 1000)

/* The region lock is only ever tried (HC_LOCK_TRY): a reap that found it held is tried
 * again this often until it succeeds. */
#define HCD_LOCK_RETRY_USEC (200 * 1000)

/* The seats one dispatch lists at most (at least one region, whatever its size): dirty
 * regions beyond it are counted in the next iteration of the loop, after the events that
 * came meanwhile, taking turns, so that a region that changes all the time (or costs the
 * most to list) cannot hold up the others. */
#define HCD_DISPATCH_SEATS 4096

/* A region whose listing took longer than HCD_COST_FREE_USEC (thousands of held seats,
 * bad records) is listed again, however many events it raises, only after HCD_COST_SHARE
 * times as long: it gets at most a fifth of the loop, and its owner, who can poke it as
 * often as they like, cannot multiply the daemon's work (the settle re-checks after each
 * event included). */
#define HCD_COST_FREE_USEC 1000
#define HCD_COST_SHARE 4

enum {
        HCD_BUS_NONE,
        HCD_BUS_USER,
        HCD_BUS_SYSTEM,
};

typedef struct Manager Manager;
typedef struct FleetBridge FleetBridge;
typedef struct Metrics Metrics;
typedef struct Region Region;
typedef struct Holder Holder;

struct Holder {
        Region *region;
        hc_instance instance;            /* as last listed */
        sd_event_source *pidfd_source;   /* owns the pidfd; NULL when we have none */
        bool exited;                     /* the pidfd said the process is gone */
};

struct Region {
        Manager *manager;
        char *name;
        hc_region *handle;
        unsigned capacity;
        int count;                       /* last exact count */
        Holder **holders;                /* instances with a record, in seat order */
        size_t n_holders;
        bool dirty;                      /* count again at the next dispatch */
        unsigned settle_step;            /* re-checks done since the last event */
        uint64_t settle_usec;            /* CLOCK_MONOTONIC of the next re-check, or 0 */
        bool reap_pending;               /* a holder died while someone else held the
                                          * region lock: reap from the retry timer */
        uint64_t not_before_usec;        /* a costly region is listed again no sooner */
};

/* What the region monitor tells the rest of the daemon (set by headcountd.c). */
typedef struct MonitorEvents {
        void (*count_changed)(Manager *m, const char *name, int count);
        void (*instance_event)(Manager *m, const char *name, const char *event,
                               const hc_instance *in);
        void (*region_added)(Manager *m, const char *name);
        void (*region_removed)(Manager *m, const char *name);
        void (*changed)(Manager *m);     /* a count or the set of regions: STATUS= */
} MonitorEvents;

struct Manager {
        sd_event *event;
        MonitorEvents events;
        sd_bus *bus;
        int bus_type;
        hc_options options;              /* the scope, as given on the command line */
        char dir[4096];                  /* the scope directory */
        char *dir_text;                  /* the same escaped (escape_text()), for D-Bus
                                          * strings, which must be UTF-8 */
        int lock_fd;                     /* flock()ed: we watch this scope */
        int lock_dir_fd;                 /* the directory of our lock, to remove it at exit */
        char lock_name[64];              /* its name there */
        bool ready;                      /* READY=1 was sent: joins are news from now on */
        bool rescan;                     /* a region could not be opened for want of
                                          * descriptors: scan the directory at the next
                                          * re-check */

        Region **regions;                /* sorted by name */
        size_t n_regions;

        sd_event_source *inotify_source;
        sd_event_source *dispatch_source;        /* defer: counts dirty regions */
        sd_event_source *settle_source;          /* timer: re-checks after an event */
        sd_event_source *recheck_source;         /* timer: HCD_RECHECK_USEC */
        sd_event_source *status_source;          /* timer: the next STATUS= when held back */
        sd_event_source *reap_source;            /* timer: reaps that found the lock held */
        size_t dispatch_next;                    /* the region the next dispatch starts at */
        uint64_t status_sent_usec;               /* when the last STATUS= went out */
        sd_event_source *watchdog_source;
        uint64_t watchdog_usec;
        char *status;                            /* the last STATUS= sent */
        Metrics *metrics;                        /* --metrics-file (metrics.c), or NULL */
        FleetBridge *fleet;                      /* --etcd: the fleet agent's thread
                                                  * (fleet-bridge.c): all we see of it */
        bool ready_sent;                         /* READY=1 went out */
        sd_event_source *ready_timer;            /* --etcd: READY=1 without a lease */
};

#include "bus.h"
#include "monitor.h"

#endif
