/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hc_send(): finds the primary, connects to the socket its record names (listen.c),
 * checks who listens there (SO_PEERCRED: our own uid; root only with HC_ALLOW_ROOT),
 * sends one framed message and waits for the framed reply.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "count.h"
#include "files.h"
#include "frame.h"
#include "hc-internal.h"
#include "util.h"

static int64_t usec_after(int timeout_ms) {
        return monotonic_usec() + (int64_t) timeout_ms * 1000;
}

/* Waits until FD is ready for EVENTS or DEADLINE (µs, -1: never) passes. */
static int wait_fd(int fd, short events, int64_t deadline) {
        for (;;) {
                int timeout = -1, n;

                if (deadline >= 0) {
                        int64_t left = deadline - monotonic_usec();
                        if (left <= 0)
                                return -ETIMEDOUT;
                        timeout = left / 1000 >= 0x7fffffff ? 0x7fffffff : (int) (left / 1000) + 1;
                }
                n = poll(&(struct pollfd) { .fd = fd, .events = events }, 1, timeout);
                if (n > 0)
                        return 0;
                if (n < 0 && errno != EINTR)
                        return -errno;
        }
}

static int send_all(int fd, const void *a, size_t a_len, const void *b, size_t b_len,
                    int64_t deadline) {
        size_t done = 0, total = a_len + b_len;

        while (done < total) {
                const uint8_t *p = done < a_len ? (const uint8_t *) a + done
                                                : (const uint8_t *) b + (done - a_len);
                size_t n = done < a_len ? a_len - done : total - done;
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
                int r;

                if (k >= 0) {
                        done += (size_t) k;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return -errno;
                r = wait_fd(fd, POLLOUT, deadline);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Reads exactly LEN bytes. -ECONNRESET when the peer closes before. */
static int recv_all(int fd, void *buf, size_t len, int64_t deadline) {
        size_t done = 0;

        while (done < len) {
                ssize_t k = recv(fd, (uint8_t *) buf + done, len - done, MSG_DONTWAIT);
                int r;

                if (k > 0) {
                        done += (size_t) k;
                        continue;
                }
                if (k == 0)
                        return -ECONNRESET;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return -errno;
                r = wait_fd(fd, POLLIN, deadline);
                if (r < 0)
                        return r;
        }
        return 0;
}

/*
 * Connects to the socket FN of the checked directory DIRFD without following a symlink
 * to it: the file is opened O_PATH|O_NOFOLLOW, checked to be a socket, and connected to
 * through that descriptor.
 */
static int connect_listener(int dirfd, const char *fn, int64_t deadline, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF, pfd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct stat st;
        int n;

        pfd = xopenat(dirfd, fn, O_PATH | O_NOFOLLOW, 0);
        if (pfd < 0)
                return pfd == -ENOENT ? -ENOENT : pfd == -ELOOP ? -EPERM : pfd;
        if (fstat(pfd, &st) < 0)
                return -errno;
        if (!S_ISSOCK(st.st_mode))
                return -ECONNREFUSED;     /* not a socket: nobody listens there */
        n = fd_path(sa.sun_path, sizeof sa.sun_path, pfd, NULL);
        if (n < 0)
                return n;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        fd = fd_above_stdio(fd);
        if (fd < 0)
                return fd;
        for (;;) {
                if (connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return -errno;
                /* The listener's backlog is full. A non-blocking Unix socket cannot wait
                 * for room with poll(), so look again shortly. */
                if (deadline >= 0 && monotonic_usec() >= deadline)
                        return -ETIMEDOUT;
                sleep_usec(2000);
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Finds the primary of SC and the name of its socket. -ENOENT when nobody listens. */
static int find_listener(const struct scope *sc, const hc_options *opt, hc_region **ret_h,
                         uid_t *ret_uid, char *fn, size_t len) {
        hc_region *h = NULL;
        hc_instance primary;
        uint64_t nonce = 0;
        int r;

        r = handle_open(sc, opt, HANDLE_READ_ONLY | HANDLE_FOREIGN, &h);
        if (r < 0)
                return r;
        r = handle_primary(h, &primary, &nonce);
        if (r == 0 && nonce == 0)
                r = -ENOENT;              /* a primary that does not listen */
        if (r == 0)
                r = file_socket_name(fn, len, sc->name, nonce);
        if (r < 0) {
                handle_unref(h);
                return r;
        }
        *ret_h = h;
        *ret_uid = primary.uid;
        return 0;
}

_hc_public_ int hc_send(const char *name, const hc_options *opt, const void *msg, size_t len,
                        void **ret_reply, size_t *ret_len) {
        _cleanup_close_ int fd = -EBADF;
        char fn[FILE_NAME_MAX];
        hc_region *h = NULL;
        bool allow_root = opt && (opt->flags & HC_ALLOW_ROOT);
        uid_t uid = 0;
        uint8_t *reply = NULL;
        int timeout = opt ? opt->timeout_ms : 0;
        struct frame f;
        struct ucred cred;
        socklen_t cred_len = sizeof cred;
        struct scope sc;
        int64_t deadline;
        size_t max;
        int r, w;

        hc_assert_return(msg || len == 0, -EINVAL);
        hc_assert_return(timeout >= -1, -EINVAL);
        r = scope_resolve(name, opt, &sc);
        if (r < 0)
                return r;
        r = frame_message_max(opt, &max);
        if (r < 0)
                return r;
        if (len > max)
                return -EMSGSIZE;
        deadline = timeout < 0 ? -1 : usec_after(timeout ? timeout : HC_SEND_TIMEOUT_DEFAULT_MS);

        r = find_listener(&sc, opt, &h, &uid, fn, sizeof fn);
        if (r < 0)
                return r;
        /* what the record claims, checked before we connect; the kernel's word follows */
        if (uid != geteuid() && !(allow_root && (uid == 0 || geteuid() == 0))) {
                handle_unref(h);
                return -EPERM;
        }
        r = connect_listener(h->dirfd, fn, deadline, &fd);
        handle_unref(h);
        if (r == -EACCES)
                return -EPERM;            /* a socket of another user */
        if (r < 0)
                return r;
        /* the credentials the listener had when it called listen() */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) < 0)
                return -errno;
        /* our own uid; root only when asked for (HC_ALLOW_ROOT), as root may be anyone */
        if (cred.uid != geteuid() && !(allow_root && (cred.uid == 0 || geteuid() == 0)))
                return -EPERM;

        f = (struct frame) { .magic = FRAME_REQUEST, .size = (uint32_t) len };
        w = send_all(fd, &f, sizeof f, msg, len, deadline);
        if (w == -ETIMEDOUT)
                return w;
        /* On a write error the listener may have refused us: its reason is there to read. */
        r = recv_all(fd, &f, sizeof f, deadline);
        if (r < 0)
                return r == -ECONNRESET && w < 0 && w != -EPIPE ? w : r;
        if (f.magic != FRAME_REPLY)
                return -EBADMSG;
        if (f.status != 0)
                return f.status > 0 && f.status < 4096 ? -f.status : -EBADMSG;
        if (w < 0)
                return w;
        if (f.size > max)
                return -EMSGSIZE;
        reply = malloc((size_t) f.size + 1);
        if (!reply)
                return -ENOMEM;
        r = recv_all(fd, reply, f.size, deadline);
        if (r < 0) {
                free(reply);
                return r == -ECONNRESET ? -EBADMSG : r;
        }
        reply[f.size] = '\0';
        if (ret_reply)
                *ret_reply = reply;
        else
                free(reply);
        if (ret_len)
                *ret_len = f.size;
        return 0;
}

