/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fleet agent's socket (SOCK_SEQPACKET) and its protocol (docs/fleet.md): one message
 * per request or answer, fields separated by NUL bytes. A connection carries one request
 * at a time: while one waits for etcd we read no more from it, and watch only for its
 * hang-up, which cancels the request (or gives its seat up). Clients are known by
 * SO_PEERCRED.
 *
 * Where: the system scope's agent listens on HC_FLEET_SYSTEM_SOCKET, in root's own
 * directory, so that no user can take its name or put a symlink there (only root serves
 * the system scope's fleet); any other scope's on DIR/.headcountd.fleet. A stale socket
 * of ours there is replaced. Anything else in its place (a file, a symlink, somebody
 * else's socket, a live one of ours) is not ours to remove: we say so once, serve the
 * local scope meanwhile, and try again every LISTEN_RETRY_USEC until the name is free.
 *
 * Hostile clients. Each uid but root may hold FLEET_USER_CONNECTIONS_MAX connections at
 * most, and never more than a quarter of our descriptors (--fleet-user-connections), and
 * all uids but root together half of them: one over that is accepted, told why (ERR
 * EUSERS) and closed at once. When accept4() still
 * fails for want of descriptors, the listening source is disarmed and armed again by a
 * timer or by the next connection we close: a level-triggered source that cannot be
 * drained would spin. Every warning here is rate-limited. Connections are watched
 * through an epoll instance of our own, drained in batches from one sd-event source:
 * sd-event dispatches one source per iteration and looks at every ready one each time,
 * so thousands of hang-ups at once would cost O(n) each.
 *
 * Mode: 0600 when the scope directory is private (the user scope), 0666 when others may
 * enter it (the system scope, a shared --dir): there the agent decides who may do what.
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "cleanup.h"
#include "escape.h"
#include "fleet-access.h"
#include "fleet-socket.h"
#include "fleet.h"
#include "log.h"
#include "own-dir.h"
#include "time-util.h"

#define LISTEN_RETRY_USEC (1 * USEC_PER_SEC)
#define FIELDS_MAX HC_FLEET_FIELDS_MAX
#define EVENTS_BATCH 256
#define ACCEPT_PAUSE_USEC (100 * UINT64_C(1000))

/* At most one warning a second from the socket, with the number of those left out. */
static void fleet_warn(Fleet *f, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void fleet_warn(Fleet *f, const char *format, ...) {
        uint64_t now = now_usec();
        char text[512];
        va_list ap;

        if (f->warn_usec != 0 && now < f->warn_usec + USEC_PER_SEC) {
                f->warn_suppressed++;
                return;
        }
        va_start(ap, format);
        (void) vsnprintf(text, sizeof text, format, ap);
        va_end(ap);
        if (f->warn_suppressed > 0)
                log_warning("%s (and %u similar warnings in the last %.1f s)", text,
                            f->warn_suppressed, (double) (now - f->warn_usec) / USEC_PER_SEC);
        else
                log_warning("%s", text);
        f->warn_usec = now;
        f->warn_suppressed = 0;
}

static FleetUser *user_get(Fleet *f, uid_t uid) {
        FleetUser *u;

        for (u = f->users; u; u = u->next)
                if (u->uid == uid)
                        return u;
        u = calloc(1, sizeof *u);
        if (!u)
                return NULL;
        u->uid = uid;
        u->next = f->users;
        if (f->users)
                f->users->prev = u;
        f->users = u;
        return u;
}

/* Forgets U once it has no connection left. */
static void user_gc(Fleet *f, FleetUser *u) {
        if (!u || u->n_conns > 0)
                return;
        if (u->prev)
                u->prev->next = u->next;
        else
                f->users = u->next;
        if (u->next)
                u->next->prev = u->prev;
        free(u);
}

static void user_put(Fleet *f, FleetUser *u) {
        if (u) {
                u->n_conns--;
                user_gc(f, u);
        }
}

/* The most connections a uid other than root may hold, and (*RET_ALL) all such uids
 * together: half our descriptors, so that several users together still leave root and
 * our etcd connections room; never less than one uid's cap. */
static unsigned user_connections_max(Fleet *f, unsigned *ret_all) {
        struct rlimit rl;
        rlim_t lim = UINT32_MAX;
        unsigned one;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            rl.rlim_cur < lim)
                lim = rl.rlim_cur;
        one = f->user_connections > 0 ? f->user_connections :
                lim / 4 >= FLEET_USER_CONNECTIONS_MAX ? FLEET_USER_CONNECTIONS_MAX :
                lim / 4 > 0 ? (unsigned) (lim / 4) : 1;
        *ret_all = lim / 2 > one ? (unsigned) (lim / 2) : one;
        return one;
}

static void accept_resume(Fleet *f) {
        f->accept_timer = sd_event_source_disable_unref(f->accept_timer);
        if (f->listen_source)
                (void) sd_event_source_set_enabled(f->listen_source, SD_EVENT_ON);
}

static void conn_free(FleetConn *c) {
        Fleet *f = c->fleet;

        if (c->seat)
                fleet_seat_release(c->seat, false);     /* a hang-up: "died" */
        c->seat = NULL;
        c->call = etcd_call_cancel(c->call);
        c->timer = sd_event_source_disable_unref(c->timer);
        fleet_name_unref(c->wait_name);
        if (c->fd >= 0) {
                (void) epoll_ctl(f->conn_epoll, EPOLL_CTL_DEL, c->fd, NULL);
                (void) close(c->fd);
        }
        if (c->user && c->uid != 0)
                f->n_user_conns--;
        user_put(f, c->user);
        if (f->accept_timer)
                accept_resume(f);               /* a descriptor is free again */
        for (size_t i = 0; i < c->n_out; i++)
                free(c->out[i].iov_base);
        free(c->out);
        free(c->query_name);
        if (c->prev)
                c->prev->next = c->next;
        else
                f->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        free(c);
}

/* A pid a client names for its seat is the kernel's word only when it is the peer that
 * connected or a descendant of it (headcount run names its command); anything else is
 * recorded as the client says, and listed as unverified. */
static bool pid_verified(FleetConn *c, pid_t pid) {
        return pid == c->pid || fleet_pid_descends(pid, c->pid);
}

static bool parse_long(const char *s, long min, long max, long *ret) {
        char *end;
        long v;

        if (!s || !*s)
                return false;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return false;
        *ret = v;
        return true;
}

static void conn_join(FleetConn *c, char **fields, size_t n) {
        Fleet *f = c->fleet;
        const char *tag = n > 5 ? fields[5] : "";
        long max, timeout, pid;
        FleetSeat *s;

        if (c->seat) {
                fleet_conn_senderr(c, EBUSY, "this connection holds a seat already");
                return;
        }
        if (n < 5 || n > 6 || !parse_long(fields[3], -1, INT32_MAX, &timeout) ||
            !parse_long(fields[4], 0, INT32_MAX, &pid)) {
                fleet_conn_senderr(c, EINVAL, "malformed JOIN request");
                return;
        }
        if (hc_name_valid(fields[1]) < 0 || strchr(fields[1], '\\')) {
                fleet_conn_senderr(c, EINVAL, "invalid fleet name: a name is 1 to %d bytes of "
                                   "[A-Za-z0-9._-] and does not start with '.'", HC_NAME_MAX);
                return;
        }
        if (!parse_long(fields[2], 1, HCD_FLEET_MAX_MAX, &max)) {
                fleet_conn_senderr(c, EINVAL, "the maximum is 1 to %d", HCD_FLEET_MAX_MAX);
                return;
        }
        if (strlen(tag) > HC_TAG_MAX) {
                fleet_conn_senderr(c, EINVAL, "the tag is longer than %d bytes", HC_TAG_MAX);
                return;
        }
        s = fleet_seat_new(c, fields[1], (unsigned) max, tag, pid > 0 ? (pid_t) pid : c->pid,
                           timeout);
        if (!s) {
                fleet_conn_senderr(c, ENOMEM, "out of memory");
                return;
        }
        c->seat = s;
        fleet_conn_begin(c);
        (void) fleet_seat_start(f, s);
}

static void conn_message(FleetConn *c, char *buf, size_t len) {
        char *fields[HC_FLEET_FIELDS_MAX];
        size_t n = 0;
        int r;

        /* Fields separated by NULs; a NUL at the very end ends the last one. */
        buf[len] = '\0';
        if (len > 0 && buf[len - 1] == '\0')
                len--;
        for (size_t i = 0; i < len; i++)
                if (buf[i] == '\0' && ++n >= HC_FLEET_FIELDS_MAX) {
                        fleet_conn_senderr(c, EINVAL, "malformed request");
                        return;
                }
        n = 0;
        for (char *p = buf;; p++) {
                fields[n++] = p;
                p += strlen(p);
                if (p >= buf + len)
                        break;
        }
        if (strcmp(fields[0], "JOIN") == 0) {
                conn_join(c, fields, n);
                return;
        }
        if (strcmp(fields[0], "PID") == 0) {
                long pid;

                if (c->seat && c->seat->state == SEAT_HELD && n == 2 &&
                    parse_long(fields[1], 1, INT32_MAX, &pid))
                        fleet_seat_set_pid(c->seat, (pid_t) pid,
                                           c->pid > 0 && pid_verified(c, (pid_t) pid));
                return;                         /* never answered */
        }
        if (strcmp(fields[0], "LEAVE") == 0) {
                if (c->seat) {
                        FleetSeat *s = c->seat;

                        c->seat = NULL;
                        fleet_seat_release(s, true);
                }
                return;
        }
        fleet_conn_begin(c);
        r = fleet_query_start(c, fields, n);
        if (r < 0)
                fleet_conn_senderr(c, -r, "cannot start the request: %s", strerror(-r));
        if (r <= 0)
                fleet_conn_done(c);
}

static void conn_io(FleetConn *c, uint32_t revents) {
        char buf[HC_FLEET_MESSAGE_MAX + 1];
        ssize_t n;

        if ((revents & EPOLLOUT) && fleet_conn_flush(c) < 0) {
                conn_free(c);
                return;
        }
        if (c->busy || c->n_out > 0) {
                /* only a hang-up or room to send can wake us here: at a hang-up the
                 * request in flight goes too */
                if (revents & (EPOLLHUP | EPOLLRDHUP | EPOLLERR))
                        conn_free(c);
                return;
        }
        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return;
        n = recv(c->fd, buf, sizeof buf - 1, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (n <= 0) {
                conn_free(c);                   /* closed: the seat, if any, goes */
                return;
        }
        if ((size_t) n >= sizeof buf) {
                fleet_conn_senderr(c, EMSGSIZE, "request too long");
                return;
        }
        conn_message(c, buf, (size_t) n);
}

/* Every connection that is ready, a batch at a time: O(1) each, however many there are.
 * No handler frees another connection than its own, so the batch stays valid. */
static int on_conns(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        struct epoll_event ev[EVENTS_BATCH];
        int n;

        n = epoll_wait(fd, ev, EVENTS_BATCH, 0);
        for (int i = 0; i < n; i++)
                conn_io(ev[i].data.ptr, ev[i].events);
        return 0;
}

static int on_accept_timer(sd_event_source *es, uint64_t usec, void *userdata) {
        accept_resume(userdata);
        return 0;
}

/* Out of descriptors: listen again after a while, or when a connection closes. */
static void accept_pause(Fleet *f, int error) {
        fleet_warn(f, "Cannot accept fleet clients: %s; trying again in %u ms or when a "
                   "client leaves", strerror(error), (unsigned) (ACCEPT_PAUSE_USEC / 1000));
        if (f->accept_timer)
                return;
        (void) sd_event_source_set_enabled(f->listen_source, SD_EVENT_OFF);
        if (sd_event_add_time_relative(f->event, &f->accept_timer, CLOCK_MONOTONIC,
                                       ACCEPT_PAUSE_USEC, 0, on_accept_timer, f) < 0) {
                f->accept_timer = NULL;
                (void) sd_event_source_set_enabled(f->listen_source, SD_EVENT_ON);
        }
}

/* Over its uid's cap (MAX), or over the cap of all users but root (MAX 0): told why,
 * and closed (never read from). */
static void refuse(Fleet *f, int cfd, uid_t uid, unsigned max) {
        char text[160];
        size_t len;

        if (max > 0)
                len = (size_t) snprintf(text, sizeof text, "ERR%c%i%cuid %u has %u connections to "
                                        "the fleet agent, the most it may have", '\0', EUSERS,
                                        '\0', (unsigned) uid, max);
        else
                len = (size_t) snprintf(text, sizeof text, "ERR%c%i%cthe fleet agent holds as "
                                        "many connections of users other than root as it may",
                                        '\0', EUSERS, '\0');
        (void) send(cfd, text, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        /* a request already queued would make the close a reset, which the client would
         * read instead of our answer */
        for (unsigned i = 0; i < 4 && recv(cfd, text, sizeof text, MSG_DONTWAIT | MSG_TRUNC) > 0; i++)
                ;
        (void) close(cfd);
        if (max > 0)
                fleet_warn(f, "Refused a fleet client of uid %u: it has %u connections already",
                           (unsigned) uid, max);
        else
                fleet_warn(f, "Refused a fleet client of uid %u: users other than root hold "
                           "%u connections already", (unsigned) uid, f->n_user_conns);
}

static int on_accept(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        Fleet *f = userdata;

        for (;;) {
                struct ucred cred;
                socklen_t len = sizeof cred;
                unsigned max, all;
                FleetConn *c;
                FleetUser *u;
                int cfd;

                cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                            errno == ENOMEM)
                                accept_pause(f, errno);
                        else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                fleet_warn(f, "Cannot accept a fleet client: %s",
                                           strerror(errno));
                        return 0;
                }
                if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                        (void) close(cfd);
                        continue;
                }
                u = user_get(f, cred.uid);
                max = user_connections_max(f, &all);
                if (u && cred.uid != 0 && (u->n_conns >= max || f->n_user_conns >= all)) {
                        refuse(f, cfd, cred.uid, u->n_conns >= max ? max : 0);
                        user_gc(f, u);
                        continue;
                }
                c = u ? calloc(1, sizeof *c) : NULL;
                if (c) {
                        c->fleet = f;
                        c->fd = cfd;
                        c->events = EPOLLIN;
                }
                if (!c || epoll_ctl(f->conn_epoll, EPOLL_CTL_ADD, cfd,
                                    &(struct epoll_event) { .events = EPOLLIN, .data.ptr = c }) < 0) {
                        fleet_warn(f, "Cannot take a fleet client: %s", strerror(errno));
                        free(c);
                        user_gc(f, u);
                        (void) close(cfd);
                        continue;
                }
                u->n_conns++;
                if (cred.uid != 0)
                        f->n_user_conns++;
                c->user = u;
                c->pid = cred.pid;
                c->uid = cred.uid;
                c->next = f->conns;
                if (f->conns)
                        f->conns->prev = c;
                f->conns = c;
        }
}

/* Whether we serve the system scope: by the options, or by a --dir that is its directory. */
static bool serves_system(const Fleet *f, const char *dir) {
        char sys[4096];
        struct stat a, b;

        if (f->system_scope)
                return true;
        if (hc_scope_dir(HC_OPTIONS(.scope = HC_SCOPE_SYSTEM), sys, sizeof sys) < 0)
                return false;
        return strcmp(dir, sys) == 0 ||
               (stat(dir, &a) == 0 && stat(sys, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino);
}

static int on_listen_retry(sd_event_source *es, uint64_t usec, void *userdata);

/* Stops listening, and removes the socket we bound: never what somebody put there since. */
static void listen_stop(Fleet *f) {
        struct stat st;

        f->listen_source = sd_event_source_disable_unref(f->listen_source);
        if (f->listen_fd < 0)
                return;
        (void) close(f->listen_fd);
        f->listen_fd = -1;
        if (fstatat(f->dir_fd, f->listen_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISSOCK(st.st_mode) && st.st_dev == f->listen_dev && st.st_ino == f->listen_ino)
                (void) unlinkat(f->dir_fd, f->listen_name, 0);
}

/* Somebody else holds the socket's name (ST: what is there, NULL when it went again):
 * we say so once, and try again from a timer. Returns 1, or < 0 without a timer. */
static int listen_later(Fleet *f, const struct stat *st, bool live) {
        uint64_t now;
        int k;

        if (!f->listen_warned) {
                char owner[300] = "";
                struct passwd pw, *p = NULL;
                char tmp[1024];

                if (st && getpwuid_r(st->st_uid, &pw, tmp, sizeof tmp, &p) == 0 && p && p->pw_name)
                        (void) snprintf(owner, sizeof owner, " (%s)", p->pw_name);
                if (!st)
                        log_warning("Cannot serve the fleet on %s yet: somebody took the name as we "
                                    "bound it; local scopes are served, and we try again every %u s",
                                    f->listen_text, (unsigned) (LISTEN_RETRY_USEC / USEC_PER_SEC));
                else
                        log_warning("Cannot serve the fleet on %s yet: %s owned by uid %u%s is there%s; "
                                    "local scopes are served, and we try again every %u s until it "
                                    "is gone", f->listen_text,
                                    S_ISLNK(st->st_mode) ? "a symlink" : S_ISSOCK(st->st_mode) ?
                                    "a socket" : S_ISREG(st->st_mode) ? "a file" : "something",
                                    (unsigned) st->st_uid, owner,
                                    live ? " and another agent listens on it" : "",
                                    (unsigned) (LISTEN_RETRY_USEC / USEC_PER_SEC));
                f->listen_warned = true;
        }
        k = sd_event_now(f->event, CLOCK_MONOTONIC, &now);
        if (k < 0)
                return log_error_errno(k, "Cannot read the event loop's clock: %m");
        if (f->listen_retry) {
                k = sd_event_source_set_time(f->listen_retry, now + LISTEN_RETRY_USEC);
                if (k >= 0)
                        k = sd_event_source_set_enabled(f->listen_retry, SD_EVENT_ONESHOT);
        } else
                k = sd_event_add_time(f->event, &f->listen_retry, CLOCK_MONOTONIC,
                                      now + LISTEN_RETRY_USEC, 0, on_listen_retry, f);
        if (k < 0)
                return log_error_errno(k, "Cannot arm the fleet socket's retry timer: %m");
        return 1;
}

/* Whether somebody listens on the socket of ours at the name (another agent of ours,
 * for another path to the same scope): then it is not stale, and not ours to replace. */
static bool listen_live(Fleet *f) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd, k;

        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || (size_t) snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%i/%s",
                                        f->dir_fd, f->listen_name) >= sizeof sa.sun_path) {
                if (fd >= 0)
                        (void) close(fd);
                return false;
        }
        k = connect(fd, (struct sockaddr *) &sa, sizeof sa);
        (void) close(fd);
        return k >= 0 || errno == EAGAIN;
}

/* The epoll instance that watches every connection. */
static int conns_open(Fleet *f) {
        int fd, k;

        if (f->conn_source)
                return 0;
        fd = epoll_create1(EPOLL_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Cannot make an epoll instance: %m");
        k = sd_event_add_io(f->event, &f->conn_source, fd, EPOLLIN, on_conns, f);
        if (k < 0) {
                (void) close(fd);
                f->conn_source = NULL;
                return log_error_errno(k, "Cannot watch the fleet's connections: %m");
        }
        f->conn_epoll = fd;
        return 0;
}

static void conns_close(Fleet *f) {
        if (!f->conn_source)
                return;
        f->conn_source = sd_event_source_disable_unref(f->conn_source);
        (void) close(f->conn_epoll);
        f->conn_epoll = -1;
}

void fleet_set_caps(Fleet *f, unsigned connections, unsigned names) {
        f->user_connections = connections;
        f->user_names = names > 0 ? names : FLEET_USER_NAMES_DEFAULT;
}


/* Binds and listens: 0, 1 when the name is taken (we try again later), < 0 on failure. */
static int listen_try(Fleet *f) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct stat st;
        mode_t old;
        int fd, k;

        if (fstatat(f->dir_fd, f->listen_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid())
                        return listen_later(f, &st, false);
                if (listen_live(f))
                        return listen_later(f, &st, true);
                /* ours, and nobody listens: left by an agent that died */
                if (unlinkat(f->dir_fd, f->listen_name, 0) < 0 && errno != ENOENT)
                        return log_error_errno(errno, "Cannot remove the stale %s: %m", f->listen_text);
        } else if (errno != ENOENT)
                return log_error_errno(errno, "Cannot look at %s: %m", f->listen_text);

        /* By its path, which is what `ss -x` shows; through the directory we opened when
         * the path is too long for an address. */
        if ((size_t) snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", f->listen_dir,
                              f->listen_name) >= sizeof sa.sun_path &&
            (size_t) snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%i/%s", f->dir_fd,
                              f->listen_name) >= sizeof sa.sun_path)
                return log_error_errno(ENAMETOOLONG, "Cannot serve the fleet on %s: %m", f->listen_text);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return log_error_errno(errno, "Cannot make the fleet socket: %m");
        old = umask(f->listen_shared ? 0111 : 0177);
        k = bind(fd, (struct sockaddr *) &sa, sizeof sa);
        if (k < 0)
                k = -errno;
        (void) umask(old);
        if (k == -EADDRINUSE) {
                /* taken between our look and the bind */
                (void) close(fd);
                return listen_later(f, fstatat(f->dir_fd, f->listen_name, &st,
                                               AT_SYMLINK_NOFOLLOW) == 0 ? &st : NULL, false);
        }
        if (k < 0) {
                (void) close(fd);
                return log_error_errno(k, "Cannot bind the fleet socket %s: %m", f->listen_text);
        }
        if (fstatat(f->dir_fd, f->listen_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                f->listen_dev = st.st_dev;
                f->listen_ino = st.st_ino;
        }
        f->listen_fd = fd;
        if (listen(f->listen_fd, SOMAXCONN) < 0)
                return log_error_errno(errno, "Cannot listen on %s: %m", f->listen_text);
        k = conns_open(f);
        if (k < 0)
                return k;
        k = sd_event_add_io(f->event, &f->listen_source, f->listen_fd, EPOLLIN, on_accept, f);
        if (k < 0)
                return log_error_errno(k, "Cannot watch the fleet socket: %m");
        if (f->listen_warned)
                log_info("Serving the fleet on %s now: its name is free", f->listen_text);
        else
                log_debug("Serving the fleet on %s (mode %s)", f->listen_text,
                          f->listen_shared ? "0666" : "0600");
        f->listen_warned = false;
        return 0;
}

static int on_listen_retry(sd_event_source *es, uint64_t usec, void *userdata) {
        Fleet *f = userdata;

        if (f->stopping || f->listen_fd >= 0)
                return 0;
        if (listen_try(f) < 0) {
                /* a failure after start-up (descriptors, memory) never stops the daemon:
                 * try again */
                listen_stop(f);
                (void) listen_later(f, NULL, false);
        }
        return 0;
}

/*
 * Starts serving the fleet on the socket of DIR's scope (SHARED: others may enter DIR).
 * A name that somebody else holds is no failure: see the top of this file.
 */
int fleet_socket_open(Fleet *f, const char *dir, bool shared) {
        size_t len, n;
        int k;

        f->listen_shared = shared;
        if (serves_system(f, dir)) {
                if (geteuid() != 0)
                        return log_error_errno(EPERM, "Cannot serve the fleet for the system scope "
                                               "as uid %u: only root may, on %s; run as root, or "
                                               "serve a directory of your own with --dir",
                                               (unsigned) geteuid(), HC_FLEET_SYSTEM_SOCKET);
                f->dir_fd = own_dir_open(HC_FLEET_SYSTEM_DIR, 0755);     /* we are root: checked above */
                if (f->dir_fd < 0)
                        return log_error_errno(f->dir_fd, "Cannot use %s for the fleet socket "
                                               "(it must be root's own directory): %m",
                                               HC_FLEET_SYSTEM_DIR);
                f->listen_name = HC_FLEET_SYSTEM_NAME;
                f->listen_shared = true;
                f->listen_dir = strdup(HC_FLEET_SYSTEM_DIR);
                f->listen_text = strdup(HC_FLEET_SYSTEM_SOCKET);
                if (!f->listen_dir || !f->listen_text)
                        return log_oom();
        } else {
                f->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (f->dir_fd < 0)
                        return log_error_errno(errno, "Cannot open the scope directory: %m");
                f->listen_name = HC_FLEET_SOCKET;
                len = ESCAPE_TEXT_SIZE(strlen(dir)) + 1 + strlen(HC_FLEET_SOCKET);
                f->listen_dir = strdup(dir);
                f->listen_text = malloc(len);
                if (!f->listen_dir || !f->listen_text)
                        return log_oom();
                (void) escape_text(dir, f->listen_text, len);
                n = strlen(f->listen_text);
                (void) snprintf(f->listen_text + n, len - n, "/%s", HC_FLEET_SOCKET);
        }
        k = listen_try(f);
        return k < 0 ? k : 0;
}

void fleet_socket_close(Fleet *f) {
        FleetConn *next;

        for (FleetConn *c = f->conns; c; c = next) {
                next = c->next;
                conn_free(c);
        }
        f->accept_timer = sd_event_source_disable_unref(f->accept_timer);
        conns_close(f);
        f->listen_retry = sd_event_source_disable_unref(f->listen_retry);
        listen_stop(f);
        if (f->dir_fd >= 0)
                f->dir_fd = (close(f->dir_fd), -1);
        free(f->listen_text);
        f->listen_text = NULL;
        free(f->listen_dir);
        f->listen_dir = NULL;
}
