/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fleet scope's client. Every call goes to the local headcountd that runs with --etcd
 * (the agent), over its SOCK_SEQPACKET socket DIR/.headcountd.fleet; the agent holds the
 * seats in etcd (docs/fleet.md, "The agent's socket protocol"). Nothing here touches a
 * region, and nothing here speaks HTTP: a program that only uses local scopes loads
 * nothing new, and one that uses the fleet needs only this socket.
 *
 * Finding the agent: the local scope directory is opt->dir, else $HEADCOUNT_DIR, else the
 * user scope's; when nobody listens there and none of them was named, the system scope's.
 * The agent is trusted only when the kernel says (SO_PEERCRED) that it runs as root, as
 * our effective uid, or as the directory's owner.
 *
 * A message is a list of text fields separated by NUL bytes, one message per packet. A
 * query uses a connection of its own and closes it. A join's connection *is* the seat:
 * the agent deletes the seat's key when it is closed, by whatever process holds it last,
 * however it ends, so it follows the rules of a local seat's descriptor: close-on-exec
 * unless HC_INHERIT, never 0, 1 or 2, shared with forked children, and given back for
 * all of them (LEAVE) only by the joiner's hc_leave(). The agent enforces the timeouts;
 * we wait for its answer up to FLEET_GRACE_MS longer before we give up on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fleet.h"
#include "hc-internal.h"
#include "proc.h"
#include "scope.h"
#include "util.h"

#define FLEET_MESSAGE_MAX 4096
#define FLEET_FIELDS_MAX 10
#define FLEET_GRACE_MS 60000        /* beyond the agent's own timeout, or for a query */

/* One message from the agent, split into its fields. */
struct answer {
        char buf[FLEET_MESSAGE_MAX + 1];
        const char *field[FLEET_FIELDS_MAX];
        size_t n;
};

static bool streq(const char *a, const char *b) {
        return a && strcmp(a, b) == 0;
}

/* ---- Errors for the caller ---- */

static bool has_error_text(const hc_options *opt) {
        return opt && opt->size >= offsetof(hc_options, error_text_size) + sizeof(size_t) &&
               opt->error_text && opt->error_text_size > 0;
}

static void error_text(const hc_options *opt, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void error_text(const hc_options *opt, const char *format, ...) {
        va_list ap;

        if (!has_error_text(opt))
                return;
        va_start(ap, format);
        (void) vsnprintf(opt->error_text, opt->error_text_size, format, ap);
        va_end(ap);
}

/* Every call starts with no text, and with its name checked before anything is asked. */
static int begin(const char *name, const hc_options *opt) {
        if (has_error_text(opt))
                opt->error_text[0] = '\0';
        return name ? name_check(name) : 0;
}

/* ---- Numbers and fields ---- */

static int parse_u64(const char *s, uint64_t *ret) {
        uint64_t v = 0;

        if (!s || !*s)
                return -EBADMSG;
        for (; *s; s++) {
                if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
                        return -EBADMSG;
                v = v * 10 + (uint64_t) (*s - '0');
        }
        *ret = v;
        return 0;
}

static int parse_i64(const char *s, int64_t *ret) {
        uint64_t v;
        int r;

        if (!s)
                return -EBADMSG;
        r = parse_u64(*s == '-' ? s + 1 : s, &v);
        if (r < 0 || v > INT64_MAX)
                return -EBADMSG;
        *ret = s[0] == '-' ? -(int64_t) v : (int64_t) v;
        return 0;
}

/* A count of the agent's: 0..INT_MAX. */
static int parse_count(const char *s) {
        uint64_t v;

        if (parse_u64(s, &v) < 0 || v > INT32_MAX)
                return -EBADMSG;
        return (int) v;
}

/* Copies S into BUF of LEN bytes, cut to fit. */
static void copy_cut(char *buf, size_t len, const char *s) {
        size_t n = strnlen(s, len - 1);

        memcpy(buf, s, n);
        buf[n] = '\0';
}

/* ---- The connection ---- */

/* Connects to the agent in DIR: the descriptor, -EHOSTDOWN when nobody listens there. */
static int connect_in(const hc_options *opt, const char *dir, int *ret_fd) {
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct ucred cred;
        socklen_t len = sizeof cred;
        struct stat st;
        int r;

        dfd = xopenat(AT_FDCWD, dir, O_PATH | O_DIRECTORY, 0);
        if (dfd < 0)
                return dfd == -ENOENT ? -EHOSTDOWN : dfd;
        if (fstat(dfd, &st) < 0)
                return -errno;
        /* through the directory we looked at, whatever the length of its path */
        if (strlen(dir) + 1 + strlen(FLEET_SOCKET) < sizeof sa.sun_path)
                (void) snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", dir, FLEET_SOCKET);
        else {
                r = fd_path(sa.sun_path, sizeof sa.sun_path, dfd, FLEET_SOCKET);
                if (r < 0)
                        return r;
        }
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        fd = fd_above_stdio(fd);
        if (fd < 0)
                return fd;
        while (connect(fd, (const struct sockaddr *) &sa, sizeof sa) < 0) {
                if (errno == EINTR)
                        continue;
                if (errno == ENOENT || errno == ECONNREFUSED)
                        return -EHOSTDOWN;
                return -errno;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return -errno;
        if (cred.uid != 0 && cred.uid != geteuid() && cred.uid != st.st_uid) {
                error_text(opt, "the fleet socket in %s is served by uid %u, which is neither "
                           "root, nor us, nor the directory's owner", dir, (unsigned) cred.uid);
                return -EPERM;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Finds the agent (see the top of this file) and connects to it. */
static int agent_connect(const hc_options *opt, int *ret_fd) {
        struct scope sc, sys;
        int r;

        r = scope_resolve_fleet(opt, false, &sc);
        if (r < 0)
                return r;
        r = connect_in(opt, sc.dir, ret_fd);
        if (r != -EHOSTDOWN)
                return r;
        if (!sc.user_default || scope_resolve_fleet(opt, true, &sys) < 0) {
                error_text(opt, "no headcountd serves the fleet scope in %s", sc.dir);
                return r;
        }
        r = connect_in(opt, sys.dir, ret_fd);
        if (r == -EHOSTDOWN)
                error_text(opt, "no headcountd serves the fleet scope in %s (nor in %s)",
                           sc.dir, sys.dir);
        return r;
}

/* Sends N fields as one message. */
static int send_fields(int fd, const char *const *field, size_t n) {
        char buf[FLEET_MESSAGE_MAX];
        size_t len = 0;
        ssize_t k;

        for (size_t i = 0; i < n; i++) {
                size_t l = strlen(field[i]);

                if (len + l + 1 > sizeof buf)
                        return -EMSGSIZE;
                memcpy(buf + len, field[i], l);
                len += l;
                if (i + 1 < n)
                        buf[len++] = '\0';
        }
        do
                k = send(fd, buf, len, MSG_NOSIGNAL);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return errno == EPIPE ? -ECONNRESET : -errno;
        return 0;
}

/* The monotonic time until which we wait for an answer: -1 for ever. */
static int64_t answer_deadline(int timeout_ms) {
        if (timeout_ms < 0)
                return -1;
        return monotonic_usec() + ((int64_t) timeout_ms + FLEET_GRACE_MS) * 1000;
}

/* Waits for the next message until DEADLINE and splits it into fields. */
static int receive(const hc_options *opt, int fd, int64_t deadline, struct answer *m) {
        ssize_t n;

        for (;;) {
                struct timespec ts;
                int r;

                if (deadline >= 0 && deadline_wait(deadline, INT64_MAX, &ts) < 0) {
                        error_text(opt, "headcountd did not answer in time");
                        return -ETIMEDOUT;
                }
                r = ppoll(&(struct pollfd) { .fd = fd, .events = POLLIN }, 1,
                          deadline >= 0 ? &ts : NULL, NULL);
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r <= 0)
                        continue;
                n = recv(fd, m->buf, FLEET_MESSAGE_MAX, MSG_DONTWAIT | MSG_TRUNC);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (n < 0 && errno != ECONNRESET)
                        return -errno;
                break;
        }
        if (n <= 0) {
                error_text(opt, "headcountd closed the connection");
                return -ECONNRESET;
        }
        if (n > FLEET_MESSAGE_MAX)
                return -EBADMSG;
        m->buf[n] = '\0';
        m->n = 0;
        for (const char *p = m->buf; p <= m->buf + n; p += strlen(p) + 1) {
                if (m->n == FLEET_FIELDS_MAX)
                        return -EBADMSG;
                m->field[m->n++] = p;
        }
        return 0;
}

/* An answer that is not the expected one: the error it stands for. */
static int answer_error(const hc_options *opt, const struct answer *m) {
        const char *what = m->field[0];
        uint64_t e;

        if (streq(what, "ERR")) {
                if (m->n < 2 || parse_u64(m->field[1], &e) < 0 || e == 0 || e > 4095)
                        e = EIO;
                error_text(opt, "%s", m->n >= 3 ? m->field[2] : strerror((int) e));
                return -(int) e;
        }
        if (streq(what, "BUSY"))
                return -EBUSY;
        if (streq(what, "TIMEDOUT"))
                return -ETIMEDOUT;
        error_text(opt, "headcountd sent an unexpected answer");
        return -EBADMSG;
}

/* Connects, sends FIELDS, and reads the first answer into M; the connection in *ret_fd. */
static int request(const hc_options *opt, const char *const *field, size_t n, int timeout_ms,
                   struct answer *m, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        r = agent_connect(opt, &fd);
        if (r < 0)
                return r;
        r = send_fields(fd, field, n);
        /* an agent that refuses a connection at once (too many of our uid's) says why
         * before it closes it: that answer is still there to read */
        if (r < 0 && r != -ECONNRESET)
                return r;
        r = receive(opt, fd, answer_deadline(timeout_ms), m);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* A query whose answer is "OK [count]": the count (or 0), or an error. */
static int simple(const hc_options *opt, const char *const *field, size_t n, int timeout_ms) {
        _cleanup_close_ int fd = -EBADF;
        struct answer m;
        int r;

        r = request(opt, field, n, timeout_ms, &m, &fd);
        if (r < 0)
                return r;
        if (!streq(m.field[0], "OK"))
                return answer_error(opt, &m);
        if (m.n < 2 || m.field[1][0] == '\0')
                return 0;
        return parse_count(m.field[1]);
}

/* ---- Seats ---- */

int fleet_join(const char *name, const hc_options *opt, hc_slot **ret) {
        _cleanup_close_ int fd = -EBADF;
        char max[16], timeout[16], pid[16];
        uint64_t fence, rank;
        struct answer m;
        hc_slot *s;
        int r;

        r = begin(name, opt);
        if (r < 0)
                return r;
        (void) snprintf(max, sizeof max, "%u", opt->max ? opt->max : 1);
        (void) snprintf(timeout, sizeof timeout, "%d", opt->timeout_ms);
        (void) snprintf(pid, sizeof pid, "%d", (int) self_pid());
        r = request(opt, (const char *[]) { "JOIN", name, max, timeout, pid, opt->tag ? opt->tag : "" },
                    6, opt->timeout_ms, &m, &fd);
        if (r < 0)
                return r;
        if (!streq(m.field[0], "OK"))
                return answer_error(opt, &m);
        if (m.n < 3 || parse_u64(m.field[1], &fence) < 0 || parse_u64(m.field[2], &rank) < 0 ||
            rank > UINT32_MAX)
                return -EBADMSG;
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
        return send_fields(s->fd, (const char *[]) { "PID", p }, 2);
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
        char buf[FLEET_MESSAGE_MAX];

        hc_assert_return(slot, -EINVAL);
        if (!slot->fleet)
                return -EOPNOTSUPP;
        while (!slot->lost) {
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
        }
        return 1;
}

/* ---- Queries ---- */

int fleet_count(const char *name, const hc_options *opt) {
        int r = begin(name, opt);

        if (r < 0)
                return r;
        return simple(opt, (const char *[]) { "COUNT", name }, 2, 0);
}

int fleet_wait(const char *name, const hc_options *opt, unsigned below, int timeout_ms) {
        char b[16], t[16];
        int r = begin(name, opt);

        if (r < 0)
                return r;
        (void) snprintf(b, sizeof b, "%u", below);
        (void) snprintf(t, sizeof t, "%d", timeout_ms);
        return simple(opt, (const char *[]) { "WAIT", name, b, t }, 4, timeout_ms);
}

/* Defines NAME: at most MAX, MODE (0600, 0644, 0666), owned by OWNER (NULL: the caller;
 * another user: root only). */
int fleet_create(const char *name, const hc_options *opt, unsigned max, unsigned mode,
                 const char *owner) {
        char m[16], md[8];
        int r = begin(name, opt);

        if (r < 0)
                return r;
        (void) snprintf(m, sizeof m, "%u", max);
        (void) snprintf(md, sizeof md, "%04o", mode & 07777);
        r = simple(opt, (const char *[]) { "CREATE", name, m, md, owner ? owner : "" },
                   owner ? 5 : 4, 0);
        return r < 0 ? r : 0;
}

_hc_public_ int hc_fleet_create(const char *name, const hc_options *opt, const char *owner) {
        hc_assert_return(!opt || (opt->size >= HC_OPTIONS_SIZE_V1 && opt->size <= 4096), -EINVAL);
        return fleet_create(name, opt, opt && opt->max ? opt->max : 1,
                            opt && opt->mode ? opt->mode : 0644, owner);
}

int fleet_remove(const char *name, const hc_options *opt) {
        int r = begin(name, opt);

        if (r < 0)
                return r;
        r = simple(opt, (const char *[]) { "REMOVE", name }, 2, 0);
        return r < 0 ? r : 0;
}

/* One "I rank fence host pid uid joined_usec tag verified" line. The flag is 1 when the
 * agent found the pid to be the joining process or a descendant of it (SO_PEERCRED); an
 * older agent sends none, and its pids are claims. */
static int parse_instance(const struct answer *m, hc_fleet_instance *ret) {
        uint64_t rank, fence, pid, uid;
        int64_t joined;

        if (m->n < 7 || parse_u64(m->field[1], &rank) < 0 || parse_u64(m->field[2], &fence) < 0 ||
            parse_u64(m->field[4], &pid) < 0 || parse_u64(m->field[5], &uid) < 0 ||
            parse_i64(m->field[6], &joined) < 0 || rank > UINT32_MAX || pid > INT32_MAX ||
            uid > UINT32_MAX)
                return -EBADMSG;
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
        copy_cut(ret->host, sizeof ret->host, m->field[3]);
        copy_cut(ret->instance.tag, sizeof ret->instance.tag, m->n > 7 ? m->field[7] : "");
        return 0;
}

/* "END n" closes a listing of N entries. */
static int check_end(const struct answer *m, size_t n) {
        uint64_t v;

        if (m->n < 2 || parse_u64(m->field[1], &v) < 0 || v != n)
                return -EBADMSG;
        return 0;
}

static int list_full(const char *name, const hc_options *opt, hc_fleet_instance **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ hc_fleet_instance *v = NULL;
        size_t n = 0, allocated = 0;
        struct answer m;
        int r;

        r = begin(name, opt);
        if (r < 0)
                return r;
        r = request(opt, (const char *[]) { "LIST", name }, 2, 0, &m, &fd);
        for (;; r = receive(opt, fd, answer_deadline(0), &m)) {
                if (r < 0)
                        return r;
                if (streq(m.field[0], "END"))
                        break;
                if (!streq(m.field[0], "I"))
                        return answer_error(opt, &m);
                if (n == allocated) {
                        hc_fleet_instance *w;

                        allocated = allocated ? 2 * allocated : 8;
                        w = reallocarray(v, allocated, sizeof *v);
                        if (!w)
                                return -ENOMEM;
                        v = w;
                }
                r = parse_instance(&m, &v[n]);
                if (r < 0)
                        return r;
                n++;
        }
        r = check_end(&m, n);
        if (r < 0)
                return r;
        if (n > INT32_MAX)
                return -EBADMSG;
        *ret = n > 0 ? TAKE_PTR(v) : NULL;
        return (int) n;
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
        struct answer m = {};
        size_t n = 0;
        int r;

        (void) begin(NULL, opt);
        r = request(opt, (const char *[]) { "NAMES" }, 1, 0, &m, &fd);
        for (;; r = receive(opt, fd, answer_deadline(0), &m)) {
                int count;

                if (r < 0)
                        return r;
                if (streq(m.field[0], "END"))
                        break;
                if (!streq(m.field[0], "N"))
                        return answer_error(opt, &m);
                if (m.n < 3 || name_check(m.field[1]) < 0)
                        return -EBADMSG;
                count = parse_count(m.field[2]);
                if (count < 0)
                        return count;
                n++;
                r = cb(m.field[1], count, userdata);
                if (r != 0)
                        return r;
        }
        return check_end(&m, n);
}
