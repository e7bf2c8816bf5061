/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fleet scope's client: the calls of headcount.h for HC_SCOPE_FLEET, each one request
 * to the local agent over fleet-wire.h. Nothing here touches a region, and nothing here
 * speaks HTTP: a program that only uses local scopes loads nothing new, and one that uses
 * the fleet needs only the agent's socket.
 *
 * A query uses a connection of its own and closes it. A join's connection *is* the seat:
 * the agent deletes the seat's key when it is closed, by whatever process holds it last,
 * however it ends, so it follows the rules of a local seat's descriptor: close-on-exec
 * unless HC_INHERIT, never 0, 1 or 2, shared with forked children, and given back for
 * all of them (LEAVE) only by the joiner's hc_leave().
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fleet.h"
#include "fleet-proto.h"
#include "fleet-wire.h"
#include "hc-internal.h"
#include "proc.h"
#include "util.h"


#define FLEET_LOST_READS 64         /* messages hc_slot_lost() reads in one call, at most */

/* ---- Seats ---- */

int fleet_join(const char *name, const hc_options *opt, hc_slot **ret) {
        _cleanup_close_ int fd = -EBADF;
        char max[16], timeout[16], pid[16];
        uint64_t fence, rank;
        struct fleet_answer m;
        hc_slot *s;
        int r;

        r = wire_begin(name, opt);
        if (r < 0)
                return r;
        (void) snprintf(max, sizeof max, "%u", opt->max ? opt->max : 1);
        (void) snprintf(timeout, sizeof timeout, "%d", opt->timeout_ms);
        /* 0: the holder will be named by PID (a wrapper naming its command): the agent
         * logs the join with that pid, so that every event of the holding names it */
        (void) snprintf(pid, sizeof pid, "%d", opt->flags & HC_RECORD_LATER ? 0 : (int) self_pid());
        r = wire_request(opt, (const char *[]) { "JOIN", name, max, timeout, pid, opt->tag ? opt->tag : "" },
                    6, wire_deadline(opt->timeout_ms), &m, &fd);
        if (r < 0)
                return r;
        if (!streq(m.field[0], "OK"))
                return wire_answer_error(opt, &m);
        /* a fence is an etcd revision (> 0); an admitted rank is below N */
        if (m.n < 3 || wire_parse_u64(m.field[1], &fence) < 0 || wire_parse_u64(m.field[2], &rank) < 0 ||
            fence == 0 || fence > INT64_MAX || rank >= (opt->max ? opt->max : 1))
                return wire_malformed(opt, "a JOIN's OK needs a fence from 1 to 2^63-1 and a rank below %u",
                                 opt->max ? opt->max : 1);
        if ((opt->flags & HC_INHERIT) && fcntl(fd, F_SETFD, 0) < 0)
                return -errno;
        s = malloc(sizeof *s);
        if (!s)
                return -ENOMEM;
        *s = (hc_slot) {
                .fd = TAKE_FD(fd),
                .index = (unsigned) rank,
                .inherit = opt->flags & HC_INHERIT,
                .pid = self_pid(),
                .fork_count = self_fork_count(),
                .fleet = true,
                .fence = fence,
        };
        *ret = s;
        return 0;
}

int fleet_set_pid(hc_slot *s, pid_t pid) {
        char p[16];

        if (s->pid != self_pid())
                return -ESTALE;
        (void) snprintf(p, sizeof p, "%d", (int) pid);
        return wire_send(s->fd, (const char *[]) { "PID", p }, 2);
}

void fleet_leave(hc_slot *s, bool leave) {
        /* a forked child only drops its reference; the joiner gives the seat back for all */
        if (leave && s->pid == self_pid() && !s->lost)
                (void) send(s->fd, "LEAVE", 5, MSG_NOSIGNAL | MSG_DONTWAIT);
        safe_close(s->fd);
        free(s);
}

_hc_public_ int hc_slot_fence(const hc_slot *slot, uint64_t *ret) {
        hc_assert_return(slot && ret, -EINVAL);
        if (!slot->fleet)
                return -EOPNOTSUPP;
        *ret = slot->fence;
        return 0;
}

_hc_public_ int hc_slot_lost_fd(const hc_slot *slot) {
        hc_assert_return(slot, -EINVAL);
        if (!slot->fleet)
                return -EOPNOTSUPP;
        return slot->fd;
}

_hc_public_ int hc_slot_lost(hc_slot *slot) {
        char buf[HC_FLEET_MESSAGE_MAX];

        hc_assert_return(slot, -EINVAL);
        if (!slot->fleet)
                return -EOPNOTSUPP;
        /* the agent sends nothing else on a seat's connection: a stream of something else
         * is read a bounded number at a time, never for ever */
        for (unsigned i = 0; !slot->lost; i++) {
                ssize_t n = recv(slot->fd, buf, sizeof buf, MSG_DONTWAIT);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 0;
                        if (errno != ECONNRESET)
                                return -errno;
                }
                /* LOST, or the agent hung up; any other message is not for a seat */
                if (n <= 0 || (n >= 4 && memcmp(buf, "LOST", 4) == 0 && (n == 4 || buf[4] == '\0')))
                        slot->lost = true;
                else if (i + 1 >= FLEET_LOST_READS)
                        return 0;
        }
        return 1;
}

/* ---- Queries ---- */

int fleet_count(const char *name, const hc_options *opt) {
        int r = wire_begin(name, opt);

        if (r < 0)
                return r;
        return wire_simple(opt, (const char *[]) { "COUNT", name }, 2, 0);
}

int fleet_wait(const char *name, const hc_options *opt, unsigned below, int timeout_ms) {
        char b[16], t[16];
        int r = wire_begin(name, opt);

        if (r < 0)
                return r;
        (void) snprintf(b, sizeof b, "%u", below);
        (void) snprintf(t, sizeof t, "%d", timeout_ms);
        return wire_simple(opt, (const char *[]) { "WAIT", name, b, t }, 4, timeout_ms);
}

/* Defines NAME: at most MAX, MODE (0600, 0644, 0666), owned by OWNER (NULL: the caller;
 * another user: root only). */
int fleet_create(const char *name, const hc_options *opt, unsigned max, unsigned mode,
                 const char *owner) {
        char m[16], md[8];
        int r = wire_begin(name, opt);

        if (r < 0)
                return r;
        (void) snprintf(m, sizeof m, "%u", max);
        (void) snprintf(md, sizeof md, "%04o", mode & 07777);
        r = wire_simple(opt, (const char *[]) { "CREATE", name, m, md, owner ? owner : "" },
                   owner ? 5 : 4, 0);
        return r < 0 ? r : 0;
}

_hc_public_ int hc_fleet_create(const char *name, const hc_options *opt, const char *owner) {
        hc_assert_return(!opt || (opt->size >= HC_OPTIONS_SIZE_V1 && opt->size <= 4096), -EINVAL);
        return fleet_create(name, opt, opt && opt->max ? opt->max : 1,
                            opt && opt->mode ? opt->mode : 0644, owner);
}

int fleet_remove(const char *name, const hc_options *opt) {
        int r = wire_begin(name, opt);

        if (r < 0)
                return r;
        r = wire_simple(opt, (const char *[]) { "REMOVE", name }, 2, 0);
        return r < 0 ? r : 0;
}

/* One "I rank fence host pid uid joined_usec tag verified" line, the N-th of its listing.
 * The flag is 1 when the agent found the pid to be the joining process or a descendant of
 * it (SO_PEERCRED); an older agent sends none, and its pids are claims. */
static int parse_instance(const hc_options *opt, const struct fleet_answer *m, size_t n,
                          hc_fleet_instance *ret) {
        const char *tag = m->n > 7 ? m->field[7] : "";
        uint64_t rank, fence, pid, uid;
        int64_t joined;
        size_t hl, tl;

        /* in rank order, from 0; a fence is an etcd revision; pids and uids as the kernel's */
        if (m->n < 7 || wire_parse_u64(m->field[1], &rank) < 0 || wire_parse_u64(m->field[2], &fence) < 0 ||
            wire_parse_u64(m->field[4], &pid) < 0 || wire_parse_u64(m->field[5], &uid) < 0 ||
            wire_parse_i64(m->field[6], &joined) < 0 || rank != n || fence == 0 || fence > INT64_MAX ||
            pid > INT32_MAX || uid > UINT32_MAX)
                return wire_malformed(opt, "entry %zu of a listing is not \"I rank fence host pid uid "
                                 "joined_usec tag\" with its numbers in range", n);
        hl = strlen(m->field[3]);
        tl = strlen(tag);
        if (hl > HC_HOST_MAX || tl > HC_TAG_MAX)
                return wire_malformed(opt, "entry %zu of a listing has a %s longer than %d bytes", n,
                                 hl > HC_HOST_MAX ? "host" : "tag",
                                 hl > HC_HOST_MAX ? HC_HOST_MAX : HC_TAG_MAX);
        *ret = (hc_fleet_instance) {
                .instance = {
                        .slot = (unsigned) rank,
                        .pid = (pid_t) pid,
                        .uid = (uid_t) uid,
                        .seq = fence,
                        .joined_usec = joined,
                        .flags = m->n > 8 && streq(m->field[8], "1") ? 0 : HC_INSTANCE_UNVERIFIED,
                },
                .fence = fence,
        };
        memcpy(ret->host, m->field[3], hl + 1);
        memcpy(ret->instance.tag, tag, tl + 1);
        return 0;
}

/* "END n" closes a listing of N entries. */
static int check_end(const hc_options *opt, const struct fleet_answer *m, size_t n) {
        uint64_t v;

        if (m->n < 2 || wire_parse_u64(m->field[1], &v) < 0 || v != n)
                return wire_malformed(opt, "a listing of %zu entries that does not end with \"END %zu\"",
                                 n, n);
        return 0;
}

/* A listing's entries are read until its END, or until HC_FLEET_ENTRIES_MAX of them or the
 * deadline of the whole query: an agent that never ends costs bounded time and memory. */
static int list_full(const char *name, const hc_options *opt, hc_fleet_instance **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ hc_fleet_instance *v = NULL;
        int64_t deadline = wire_deadline(0);
        size_t n = 0, allocated = 0;
        struct fleet_answer m;
        int r;

        r = wire_begin(name, opt);
        if (r < 0)
                return r;
        r = wire_request(opt, (const char *[]) { "LIST", name }, 2, deadline, &m, &fd);
        for (;; r = wire_receive(opt, fd, deadline, &m)) {
                if (r < 0)
                        return r;
                if (streq(m.field[0], "END"))
                        break;
                if (!streq(m.field[0], "I"))
                        return wire_answer_error(opt, &m);
                if (n >= HC_FLEET_ENTRIES_MAX)
                        return wire_malformed(opt, "a listing of more than %d entries", HC_FLEET_ENTRIES_MAX);
                if (n == allocated) {
                        hc_fleet_instance *w;

                        allocated = allocated ? 2 * allocated : 8;
                        if (allocated > HC_FLEET_ENTRIES_MAX)
                                allocated = HC_FLEET_ENTRIES_MAX;
                        w = reallocarray(v, allocated, sizeof *v);
                        if (!w)
                                return -ENOMEM;
                        v = w;
                }
                r = parse_instance(opt, &m, n, &v[n]);
                if (r < 0)
                        return r;
                n++;
        }
        r = check_end(opt, &m, n);
        if (r < 0)
                return r;
        *ret = n > 0 ? TAKE_PTR(v) : NULL;
        return (int) n;
}

_hc_public_ int hc_fleet_status(const hc_options *opt, char *buf, size_t len) {
        static const char *const states[] = {
                [HC_FLEET_STARTING] = HC_FLEET_STATE_STARTING,
                [HC_FLEET_HELD] = HC_FLEET_STATE_HELD,
                [HC_FLEET_LATE] = HC_FLEET_STATE_LATE,
                [HC_FLEET_LOST] = HC_FLEET_STATE_LOST,
                [HC_FLEET_UNREACHABLE] = HC_FLEET_STATE_UNREACHABLE,
        };
        _cleanup_close_ int fd = -EBADF;
        struct fleet_answer m;
        int r;

        hc_assert_return(buf || len == 0, -EINVAL);
        hc_assert_return(!opt || (opt->size >= HC_OPTIONS_SIZE_V1 && opt->size <= 4096), -EINVAL);
        (void) wire_begin(NULL, opt);
        if (len > 0)
                buf[0] = '\0';
        r = wire_request(opt, (const char *[]) { "STATUS" }, 1, wire_deadline(0), &m, &fd);
        if (r < 0)
                return r;
        if (!streq(m.field[0], "OK"))
                return wire_answer_error(opt, &m);
        if (m.n != 3 || strlen(m.field[2]) > HC_FLEET_TEXT_MAX)
                return -EBADMSG;
        for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
                if (streq(m.field[1], states[i])) {
                        if (len > 0)    /* cut to the caller's buffer, as snprintf() does */
                                (void) snprintf(buf, len, "%s", m.field[2]);
                        return (int) i;
                }
        return -EBADMSG;
}

_hc_public_ int hc_fleet_list(const char *name, const hc_options *opt, hc_fleet_instance **ret) {
        hc_assert_return(ret, -EINVAL);
        hc_assert_return(!opt || (opt->size >= HC_OPTIONS_SIZE_V1 && opt->size <= 4096), -EINVAL);
        return list_full(name, opt, ret);
}

int fleet_list(const char *name, const hc_options *opt, hc_instance **ret) {
        _cleanup_free_ hc_fleet_instance *v = NULL;
        hc_instance *w;
        int n;

        n = list_full(name, opt, &v);
        if (n <= 0) {
                if (n == 0)
                        *ret = NULL;
                return n;
        }
        w = calloc((size_t) n, sizeof *w);
        if (!w)
                return -ENOMEM;
        for (int i = 0; i < n; i++)
                w[i] = v[i].instance;
        *ret = w;
        return n;
}

int fleet_primary(const char *name, const hc_options *opt, hc_instance *ret) {
        _cleanup_free_ hc_fleet_instance *v = NULL;
        int n;

        n = list_full(name, opt, &v);
        if (n < 0)
                return n;
        if (n == 0)
                return -ENOENT;
        *ret = v[0].instance;
        return 0;
}

int fleet_is_primary(const char *name, const hc_options *opt, const hc_slot *slot) {
        _cleanup_free_ hc_fleet_instance *v = NULL;
        int n;

        if (!slot->fleet)
                return -EINVAL;
        n = list_full(name, opt, &v);
        if (n < 0)
                return n;
        return n > 0 && v && v[0].fence == slot->fence;
}

int fleet_names(const hc_options *opt, int (*cb)(const char *name, int count, void *userdata),
                void *userdata) {
        _cleanup_close_ int fd = -EBADF;
        int64_t deadline = wire_deadline(0);
        struct fleet_answer m = {};
        size_t n = 0;
        int r;

        (void) wire_begin(NULL, opt);
        r = wire_request(opt, (const char *[]) { "NAMES" }, 1, deadline, &m, &fd);
        for (;; r = wire_receive(opt, fd, deadline, &m)) {
                int count;

                if (r < 0)
                        return r;
                if (streq(m.field[0], "END"))
                        break;
                if (!streq(m.field[0], "N"))
                        return wire_answer_error(opt, &m);
                if (n >= HC_FLEET_ENTRIES_MAX)
                        return wire_malformed(opt, "a listing of more than %d names", HC_FLEET_ENTRIES_MAX);
                /* "N name count max": the name as names are, the numbers as counts */
                count = m.n >= 3 ? wire_parse_count(m.field[2]) : -EBADMSG;
                if (count < 0 || name_check(m.field[1]) < 0 ||
                    (m.n >= 4 && wire_parse_count(m.field[3]) < 0))
                        return wire_malformed(opt, "entry %zu of a listing of names is not \"N name "
                                         "count max\" with a valid name and counts", n);
                n++;
                r = cb(m.field[1], count, userdata);
                if (r != 0)
                        return r;
        }
        return check_end(opt, &m, n);
}
