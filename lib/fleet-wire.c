/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fleet scope's client, its wire (fleet-wire.h): every call goes to the local
 * headcountd that runs with --etcd (the agent), over its SOCK_SEQPACKET socket; the agent
 * holds the seats in etcd (docs/fleet.md, "The agent's socket protocol").
 *
 * Finding the agent: the local scope directory is opt->dir, else $HEADCOUNT_DIR, else the
 * user scope's; when nobody listens there and none of them was named, the system scope's.
 * The directory passes the trust checks of every local call (lib/scope.c); the system
 * scope's agent listens on HC_FLEET_SYSTEM_SOCKET, in root's own directory, and never in
 * the scope's directory, which any user may write to. The socket must be a socket owned by
 * root or us (root alone for the system scope), reached without following a symlink, and
 * the kernel must say (SO_PEERCRED) that the agent runs as root or as our effective uid.
 * Anything else is -EPERM with a line that names what was refused, and is never talked to.
 *
 * Every answer is bounded (lib/fleet-proto.h): its size, its number of fields, each text
 * field's length, each number's range, a listing's number of entries, and the time a whole
 * query may take; anything else is -EBADMSG. The agent enforces the timeouts; we wait for
 * its answer up to FLEET_GRACE_MS longer before we give up on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fleet-wire.h"
#include "fleet-proto.h"
#include "hc-internal.h"
#include "proc.h"
#include "scope.h"
#include "util.h"

#define FLEET_GRACE_MS 60000        /* beyond the agent's own timeout, or for a whole query */


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
int wire_begin(const char *name, const hc_options *opt) {
        if (has_error_text(opt))
                opt->error_text[0] = '\0';
        return name ? name_check(name) : 0;
}

/* ---- Numbers and fields ---- */

int wire_parse_u64(const char *s, uint64_t *ret) {
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

int wire_parse_i64(const char *s, int64_t *ret) {
        uint64_t v;
        int r;

        if (!s)
                return -EBADMSG;
        r = wire_parse_u64(*s == '-' ? s + 1 : s, &v);
        if (r < 0 || v > INT64_MAX)
                return -EBADMSG;
        *ret = s[0] == '-' ? -(int64_t) v : (int64_t) v;
        return 0;
}

/* A count of the agent's: 0..INT_MAX. */
int wire_parse_count(const char *s) {
        uint64_t v;

        if (wire_parse_u64(s, &v) < 0 || v > INT32_MAX)
                return -EBADMSG;
        return (int) v;
}

/* An answer that breaks the protocol: -EBADMSG, saying how. */
int wire_malformed(const hc_options *opt, const char *format, ...) __attribute__((format(printf, 2, 3)));
int wire_malformed(const hc_options *opt, const char *format, ...) {
        char why[256];
        va_list ap;

        va_start(ap, format);
        (void) vsnprintf(why, sizeof why, format, ap);
        va_end(ap);
        error_text(opt, "headcountd sent a malformed answer: %s", why);
        return -EBADMSG;
}

/* ---- Finding the agent, and whether to believe it ---- */

/* "uid 1001 (alice)", or "uid 1001" for a uid without a name. */
static void owner_text(char *buf, size_t len, uid_t uid) {
        char tmp[1024];
        struct passwd pw, *p = NULL;

        if (getpwuid_r(uid, &pw, tmp, sizeof tmp, &p) == 0 && p && p->pw_name)
                (void) snprintf(buf, len, "uid %u (%s)", (unsigned) uid, p->pw_name);
        else
                (void) snprintf(buf, len, "uid %u", (unsigned) uid);
}

static const char *type_text(mode_t mode) {
        return S_ISLNK(mode) ? "a symlink" : S_ISDIR(mode) ? "a directory" :
               S_ISREG(mode) ? "a regular file" : S_ISSOCK(mode) ? "a socket" : "a special file";
}

/* The directory DIR failed the trust checks: -EPERM, with a text that names it, its owner
 * and the rule it breaks. NOFOLLOW: DIR itself was checked, not what a symlink points to. */
static int untrusted_dir(const hc_options *opt, const char *dir, bool nofollow, const char *rule) {
        char owner[300];
        struct stat st;

        if ((nofollow ? lstat(dir, &st) : stat(dir, &st)) < 0) {
                error_text(opt, "not trusting the fleet scope's directory %s: %s", dir, rule);
                return -EPERM;
        }
        owner_text(owner, sizeof owner, st.st_uid);
        if (!S_ISDIR(st.st_mode))
                error_text(opt, "not trusting the fleet scope's directory %s: it is %s owned by "
                           "%s; %s", dir, type_text(st.st_mode), owner, rule);
        else
                error_text(opt, "not trusting the fleet scope's directory %s: it is owned by %s, "
                           "mode %04o; %s", dir, owner, (unsigned) (st.st_mode & 07777), rule);
        return -EPERM;
}

/*
 * Opens the directory where SC's agent listens, as every local call opens a scope
 * directory (scope_open_dir(): the user scope's must be ours alone and no symlink, a named
 * one ours or root's and sticky when others may write to it), or for the system scope the
 * agent's own root-only directory. -EHOSTDOWN when it does not exist.
 */
static int agent_dir_open(const hc_options *opt, const struct scope *sc, int *ret_dfd) {
        _cleanup_close_ int dfd = -EBADF;
        struct stat st;
        int r;

        if (!sc->system) {
                r = scope_open_dir(sc, false, &dfd);
                if (r == -ENOENT)
                        return -EHOSTDOWN;
                if (r == -EPERM || r == -ENOTDIR)
                        return untrusted_dir(opt, sc->dir, sc->user_default, sc->user_default ?
                                             "the user scope's directory must be ours alone (0700) "
                                             "and no symlink" :
                                             "it must be ours or root's, and sticky if others may "
                                             "write to it");
                if (r < 0) {
                        error_text(opt, "cannot open the fleet scope's directory %s: %s", sc->dir,
                                   strerror(-r));
                        return r;
                }
                *ret_dfd = TAKE_FD(dfd);
                return 0;
        }
        /* The system scope's agent listens in root's own directory, never in the scope's
         * directory (1777), where any user could take the name first. */
        dfd = xopenat(AT_FDCWD, HC_FLEET_SYSTEM_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
        if (dfd == -ENOENT)
                return -EHOSTDOWN;
        if (dfd >= 0 && fstat(dfd, &st) < 0)
                return -errno;
        if (dfd == -ELOOP || dfd == -ENOTDIR || (dfd >= 0 && (st.st_uid != 0 || (st.st_mode & 0022))))
                return untrusted_dir(opt, HC_FLEET_SYSTEM_DIR, true, "the system scope's agent must "
                                     "listen in a directory only root can write to");
        if (dfd < 0) {
                error_text(opt, "cannot open %s: %s", HC_FLEET_SYSTEM_DIR, strerror(-dfd));
                return dfd;
        }
        *ret_dfd = TAKE_FD(dfd);
        return 0;
}

/* Whether UID may be the agent, or own its socket: root, us, and for the system scope
 * root alone. Never the directory's owner: that is nobody else than these two once the
 * directory passed its checks, and a directory that did not is not used at all. */
static bool agent_uid_trusted(uid_t uid, bool system) {
        return uid == 0 || (!system && uid == geteuid());
}

/*
 * Connects to the agent of scope SC: the descriptor, -EHOSTDOWN when nobody listens
 * there, -EPERM (with a text) when what is there is not to be believed.
 *
 * The socket must be a socket, not a symlink, owned by root or us, and its peer
 * (SO_PEERCRED) must run as root or us. We connect to the very inode we checked, through
 * /proc/self/fd of an O_PATH descriptor opened without following a symlink: a symlink or
 * another socket put in its place after the check is never reached. Without /proc we
 * connect by path and check afterwards that the name still is the socket we checked (in
 * a sticky directory nobody but root and us can take away a file of ours or root's).
 */
static int connect_in(const hc_options *opt, const struct scope *sc, int *ret_fd) {
        _cleanup_close_ int dfd = -EBADF, sfd = -EBADF, fd = -EBADF;
        const char *dir = sc->system ? HC_FLEET_SYSTEM_DIR : sc->dir;
        const char *name = sc->system ? HC_FLEET_SYSTEM_NAME : HC_FLEET_SOCKET;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char owner[300];
        struct ucred cred;
        socklen_t len = sizeof cred;
        struct stat st, now;
        bool by_path = false;
        int r;

        r = agent_dir_open(opt, sc, &dfd);
        if (r < 0)
                return r;
        sfd = xopenat(dfd, name, O_PATH | O_NOFOLLOW, 0);
        if (sfd == -ENOENT)
                return -EHOSTDOWN;
        if (sfd < 0) {
                error_text(opt, "cannot open the fleet socket %s/%s: %s", dir, name, strerror(-sfd));
                return sfd;
        }
        if (fstat(sfd, &st) < 0)
                return -errno;
        if (!S_ISSOCK(st.st_mode) || !agent_uid_trusted(st.st_uid, sc->system)) {
                owner_text(owner, sizeof owner, st.st_uid);
                error_text(opt, "not trusting %s/%s: it is %s owned by %s, where the agent's "
                           "socket must be a socket owned by %s", dir, name, type_text(st.st_mode),
                           owner, sc->system ? "root" : "root or us");
                return -EPERM;
        }

        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        fd = fd_above_stdio(fd);
        if (fd < 0)
                return fd;
        r = fd_path(sa.sun_path, sizeof sa.sun_path, sfd, NULL);
        if (r < 0)
                return r;
        for (;;) {
                if (connect(fd, (const struct sockaddr *) &sa, sizeof sa) >= 0)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno == ENOENT && !by_path && access("/proc/self/fd", F_OK) < 0) {
                        /* no /proc: by name, checked again below */
                        if ((size_t) snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", dir, name) >=
                            sizeof sa.sun_path)
                                return -ENAMETOOLONG;
                        by_path = true;
                        continue;
                }
                if (errno == ENOENT || errno == ECONNREFUSED)
                        return -EHOSTDOWN;      /* a socket nobody listens on any more */
                r = -errno;
                error_text(opt, "cannot connect to the fleet socket %s/%s: %s", dir, name, strerror(-r));
                return r;
        }
        if (by_path && (fstatat(dfd, name, &now, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISSOCK(now.st_mode) ||
                        now.st_dev != st.st_dev || now.st_ino != st.st_ino)) {
                error_text(opt, "not trusting %s/%s: it was replaced while we connected", dir, name);
                return -EPERM;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return -errno;
        if (!agent_uid_trusted(cred.uid, sc->system)) {
                owner_text(owner, sizeof owner, cred.uid);
                error_text(opt, "not trusting the agent on %s/%s: it runs as %s, where it must "
                           "run as %s", dir, name, owner, sc->system ? "root" : "root or us");
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
        r = connect_in(opt, &sc, ret_fd);
        if (r != -EHOSTDOWN)
                return r;
        if (!sc.user_default || scope_resolve_fleet(opt, true, &sys) < 0) {
                error_text(opt, "no headcountd serves the fleet scope in %s", sc.dir);
                return r;
        }
        r = connect_in(opt, &sys, ret_fd);
        if (r == -EHOSTDOWN)
                error_text(opt, "no headcountd serves the fleet scope in %s (nor in %s)",
                           sc.dir, sys.dir);
        return r;
}

/* Sends N fields as one message. */
int wire_send(int fd, const char *const *field, size_t n) {
        char buf[HC_FLEET_MESSAGE_MAX];
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
int64_t wire_deadline(int timeout_ms) {
        if (timeout_ms < 0)
                return -1;
        return monotonic_usec() + ((int64_t) timeout_ms + FLEET_GRACE_MS) * 1000;
}

/* Waits for the next message until DEADLINE and splits it into fields. */
int wire_receive(const hc_options *opt, int fd, int64_t deadline, struct fleet_answer *m) {
        ssize_t n;

        m->n = 0;
        m->field[0] = NULL;             /* no answer yet: no field to look at */

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
                n = recv(fd, m->buf, HC_FLEET_MESSAGE_MAX, MSG_DONTWAIT | MSG_TRUNC);
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
        if (n > HC_FLEET_MESSAGE_MAX)
                return wire_malformed(opt, "a message longer than %d bytes", HC_FLEET_MESSAGE_MAX);
        m->buf[n] = '\0';
        m->n = 0;
        for (const char *p = m->buf; p <= m->buf + n; p += strlen(p) + 1) {
                if (m->n == HC_FLEET_FIELDS_MAX)
                        return wire_malformed(opt, "more than %d fields in a message", HC_FLEET_FIELDS_MAX);
                m->field[m->n++] = p;
        }
        return 0;
}

/* An answer that is not the expected one: the error it stands for. */
int wire_answer_error(const hc_options *opt, const struct fleet_answer *m) {
        const char *what = m->field[0];
        uint64_t e;

        if (streq(what, "ERR")) {
                if (m->n < 2 || wire_parse_u64(m->field[1], &e) < 0 || e == 0 || e > 4095)
                        return wire_malformed(opt, "an ERR without an errno");
                if (m->n >= 3 && strlen(m->field[2]) > HC_FLEET_TEXT_MAX)
                        return wire_malformed(opt, "an error text longer than %d bytes", HC_FLEET_TEXT_MAX);
                error_text(opt, "%s", m->n >= 3 && m->field[2][0] ? m->field[2] : strerror((int) e));
                return -(int) e;
        }
        if (streq(what, "BUSY"))
                return -EBUSY;
        if (streq(what, "TIMEDOUT"))
                return -ETIMEDOUT;
        return wire_malformed(opt, "an unexpected answer");
}

/* Connects, sends FIELDS, and reads the first answer into M by DEADLINE (wire_deadline());
 * the connection in *ret_fd. */
int wire_request(const hc_options *opt, const char *const *field, size_t n, int64_t deadline,
                   struct fleet_answer *m, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        r = agent_connect(opt, &fd);
        if (r < 0)
                return r;
        r = wire_send(fd, field, n);
        /* an agent that refuses a connection at once (too many of our uid's) says why
         * before it closes it: that answer is still there to read */
        if (r < 0 && r != -ECONNRESET)
                return r;
        r = wire_receive(opt, fd, deadline, m);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* A query whose answer is "OK [count]": the count (or 0), or an error. */
int wire_simple(const hc_options *opt, const char *const *field, size_t n, int timeout_ms) {
        _cleanup_close_ int fd = -EBADF;
        struct fleet_answer m;
        int r;

        r = wire_request(opt, field, n, wire_deadline(timeout_ms), &m, &fd);
        if (r < 0)
                return r;
        if (!streq(m.field[0], "OK"))
                return wire_answer_error(opt, &m);
        if (m.n < 2 || m.field[1][0] == '\0')
                return 0;
        r = wire_parse_count(m.field[1]);
        if (r < 0)
                return wire_malformed(opt, "a count that is no number from 0 to %d", INT32_MAX);
        return r;
}
