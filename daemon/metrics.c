/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * --metrics-file PATH: what headcountd sees, in the Prometheus text exposition format that
 * node_exporter's textfile collector reads (--collector.textfile.directory; the file's name
 * must end in .prom there). The file is written whole under a temporary name in its own
 * directory and renamed over PATH, so a reader never sees half of it; at once at start,
 * then after each change but at most once a second (a burst of joins is one write), and
 * it is removed when the daemon stops cleanly:
 *
 *   headcount_instances{name="web"} 2          held seats of each region (gauge)
 *   headcount_capacity{name="web"} 64          its seats (gauge)
 *   headcount_joins_total 17                   joins, leaves and deaths seen since the
 *   headcount_leaves_total 15                  daemon started (counters)
 *   headcount_deaths_total 0
 *   headcount_fleet_lease_up 1                 with --etcd: 1 while the lease is held
 *   headcount_fleet_instances{name="build"} 3  with --etcd: a fleet name's count, for
 *                                              the names local seats or waiters use
 *
 * The counters count what the daemon saw: a holder that joined and left between two of
 * its looks is not in them. Label values are escaped as the format says (\\, \", \n),
 * although region names cannot hold those bytes.
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
#include "headcountd.h"
#include "log.h"
#include "metrics.h"
#include "time-util.h"

#if HAVE_FLEET
#include "fleet-bridge.h"
#endif

#define METRICS_INTERVAL_USEC (1000 * 1000)

typedef struct FleetCount {
        char *name;
        unsigned count;
} FleetCount;

struct Metrics {
        Manager *manager;
        char *path;
        uint64_t joins, leaves, deaths;
        FleetCount *fleet;               /* the fleet names' counts, as last heard */
        size_t n_fleet;
        sd_event_source *timer;          /* the next write, when one is due */
        uint64_t written_usec;           /* CLOCK_MONOTONIC of the last write, 0: never */
        bool placed;                     /* PATH is a file of ours: removed at the end */
        bool warned;                     /* a failed write was logged */
};

/* NAME as a label value: backslash, double quote and newline escaped. */
static void put_label(FILE *f, const char *name) {
        for (const char *p = name; *p; p++)
                if (*p == '\\' || *p == '"')
                        fprintf(f, "\\%c", *p);
                else if (*p == '\n')
                        fputs("\\n", f);
                else
                        fputc(*p, f);
}

static void put_header(FILE *f, const char *metric, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", metric, help, metric, type);
}

static void put_text(Metrics *x, FILE *f) {
        Manager *m = x->manager;

        put_header(f, "headcount_instances", "gauge", "Held seats of a region.");
        for (size_t i = 0; i < m->n_regions; i++) {
                fputs("headcount_instances{name=\"", f);
                put_label(f, m->regions[i]->name);
                fprintf(f, "\"} %d\n", m->regions[i]->count > 0 ? m->regions[i]->count : 0);
        }
        put_header(f, "headcount_capacity", "gauge", "Seats of a region.");
        for (size_t i = 0; i < m->n_regions; i++) {
                fputs("headcount_capacity{name=\"", f);
                put_label(f, m->regions[i]->name);
                fprintf(f, "\"} %u\n", m->regions[i]->capacity);
        }
        put_header(f, "headcount_joins_total", "counter", "Joins seen since headcountd started.");
        fprintf(f, "headcount_joins_total %" PRIu64 "\n", x->joins);
        put_header(f, "headcount_leaves_total", "counter", "Leaves seen since headcountd started.");
        fprintf(f, "headcount_leaves_total %" PRIu64 "\n", x->leaves);
        put_header(f, "headcount_deaths_total", "counter",
                   "Holders seen to end without leaving, since headcountd started.");
        fprintf(f, "headcount_deaths_total %" PRIu64 "\n", x->deaths);
#if HAVE_FLEET
        if (m->fleet) {
                const FleetHealth *h = fleet_bridge_health(m->fleet);

                put_header(f, "headcount_fleet_lease_up", "gauge",
                           "1 while the fleet agent holds its etcd lease.");
                fprintf(f, "headcount_fleet_lease_up %d\n",
                        h->state == FLEET_STATE_HELD || h->state == FLEET_STATE_LATE);
                put_header(f, "headcount_fleet_instances", "gauge",
                           "Held seats of a fleet name, across hosts.");
                for (size_t i = 0; i < x->n_fleet; i++) {
                        fputs("headcount_fleet_instances{name=\"", f);
                        put_label(f, x->fleet[i].name);
                        fprintf(f, "\"} %u\n", x->fleet[i].count);
                }
        }
#endif
}

/* Writes the whole file under a temporary name beside PATH, then renames it into place. */
static int metrics_write(Metrics *x) {
        _cleanup_free_ char *tmp = NULL;
        FILE *f;
        int fd, r = 0;

        x->written_usec = now_usec();
        if (asprintf(&tmp, "%s.XXXXXX", x->path) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        (void) fchmod(fd, 0644);                /* node_exporter runs as another user */
        f = fdopen(fd, "w");
        if (!f) {
                r = -errno;
                (void) close(fd);
                (void) unlink(tmp);
                return r;
        }
        put_text(x, f);
        if (fflush(f) != 0 || ferror(f))
                r = -(errno ? errno : EIO);
        if (fclose(f) != 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, x->path) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        else
                x->placed = true;
        return r;
}

static void write_now(Metrics *x) {
        int r = metrics_write(x);

        if (r < 0 && !x->warned)
                log_warning_errno(r, "Cannot write the metrics file %s: %m", x->path);
        else if (r == 0 && x->warned)
                log_info("Writing the metrics file %s again", x->path);
        x->warned = r < 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        write_now(userdata);
        return 0;
}

void metrics_changed(Metrics *x) {
        uint64_t due;

        if (!x)
                return;
        due = x->written_usec + METRICS_INTERVAL_USEC;
        if (now_usec() >= due) {
                write_now(x);
                return;
        }
        if (sd_event_source_set_time(x->timer, due) >= 0)
                (void) sd_event_source_set_enabled(x->timer, SD_EVENT_ONESHOT);
}

void metrics_event(Metrics *x, const char *event) {
        if (!x)
                return;
        if (strcmp(event, "join") == 0)
                x->joins++;
        else if (strcmp(event, "leave") == 0)
                x->leaves++;
        else if (strcmp(event, "died") == 0)
                x->deaths++;
        metrics_changed(x);
}

void metrics_fleet_count(Metrics *x, const char *name, unsigned count) {
        FleetCount *v;

        if (!x)
                return;
        for (size_t i = 0; i < x->n_fleet; i++)
                if (strcmp(x->fleet[i].name, name) == 0) {
                        x->fleet[i].count = count;
                        metrics_changed(x);
                        return;
                }
        v = reallocarray(x->fleet, x->n_fleet + 1, sizeof *v);
        if (!v) {
                (void) log_oom();
                return;
        }
        x->fleet = v;
        x->fleet[x->n_fleet].name = strdup(name);
        if (!x->fleet[x->n_fleet].name) {
                (void) log_oom();
                return;
        }
        x->fleet[x->n_fleet++].count = count;
        metrics_changed(x);
}

int metrics_new(Manager *m, const char *path, Metrics **ret) {
        Metrics *x = calloc(1, sizeof *x);
        int r;

        if (!x || !(x->path = strdup(path))) {
                free(x);
                return log_oom();
        }
        x->manager = m;
        r = sd_event_add_time(m->event, &x->timer, CLOCK_MONOTONIC, 0, 10 * 1000, on_timer, x);
        if (r < 0) {
                metrics_free(x);
                return log_error_errno(r, "Cannot add a timer: %m");
        }
        (void) sd_event_source_set_enabled(x->timer, SD_EVENT_OFF);
        r = metrics_write(x);
        if (r < 0) {
                log_error_errno(r, "Cannot write the metrics file %s: %m", path);
                metrics_free(x);
                return r;
        }
        *ret = x;
        return 0;
}

Metrics *metrics_free(Metrics *x) {
        if (!x)
                return NULL;
        x->timer = sd_event_source_disable_unref(x->timer);
        if (x->placed)
                (void) unlink(x->path);
        for (size_t i = 0; i < x->n_fleet; i++)
                free(x->fleet[i].name);
        free(x->fleet);
        free(x->path);
        free(x);
        return NULL;
}
