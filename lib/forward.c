/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Forwarding work to the primary: its listening socket, the framing, and hc_send().
 *
 * The socket. "<dir>/.<name>.sock": hidden, because a region may be called "web.sock".
 * Only one listener per region: it holds an OFD write lock on HC_LOCK_LISTEN of the
 * region file, through a description of its own, for as long as it listens. Whoever
 * gets that lock knows that any socket file by that name is stale (its listener is gone,
 * however it went), so it binds a new socket under a temporary name, gives it the region
 * file's mode, and renames it over the old one: a crashed primary's socket never blocks
 * the next primary, and a sender never sees a moment without a socket file once the new
 * one listens. Temporaries ("<socket>~<hex>") can only be left by a listener that died
 * between bind() and rename(); the next lock holder removes them.
 *
 * The protocol. One request and one reply per connection, each a struct frame followed
 * by its bytes. A reply frame with a non-zero status carries no bytes and tells the
 * sender why it was refused (EPERM: wrong uid; EMSGSIZE; EBADMSG: bad frame). The
 * listener never blocks: it reads what has arrived, keeps partial messages per peer, and
 * a peer that has not delivered its whole message (or taken its whole reply) within the
 * peer timeout is dropped. Closing a Unix stream socket with unread data makes the peer
 * see ECONNRESET only after it has read what we sent before (unix_stream_read_generic()
 * returns queued data before the error), so a refused sender still gets the status.
 *
 * The one descriptor the caller polls is an epoll set over the listening socket, the
 * peers being read or written, and a timerfd armed for the earliest peer deadline. It is
 * level-triggered, so the caller may stop calling hc_listener_receive() at any point and
 * is woken again for what is left.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hc-internal.h"
#include "region.h"

#define FRAME_REQUEST UINT32_C(0x48434d31)       /* "HCM1" */
#define FRAME_REPLY UINT32_C(0x48435231)         /* "HCR1" */
#define MESSAGE_MAX_LIMIT ((size_t) 1 << 30)
#define PEERS_MAX 1024                           /* connections being read at once */
#define ARGS_MAGIC "HCARGS1"                     /* 8 bytes with its NUL */
#define SOCKET_SUFFIX ".sock"
#define SOCKET_NAME_MAX (HC_NAME_MAX + 32)

struct frame {
        uint32_t magic;          /* FRAME_REQUEST or FRAME_REPLY */
        uint32_t size;           /* bytes that follow */
        int32_t status;          /* replies: 0, or the errno that refused the request */
        uint32_t reserved;       /* zero */
};

enum peer_state {
        PEER_HEADER,             /* reading the frame */
        PEER_BODY,               /* reading the bytes */
        PEER_READY,              /* complete, queued for hc_listener_receive() */
        PEER_HANDED,             /* the caller has it as an hc_message */
        PEER_WRITING,            /* the reply is going out in the background */
};

struct peer {
        hc_message msg;          /* first: what the caller sees */
        hc_listener *l;
        struct peer *prev, *next;        /* in l->peers or l->ready */
        int fd;
        enum peer_state state;
        int64_t deadline;        /* CLOCK_MONOTONIC µs: dropped when reached */
        struct frame in;
        size_t in_got;           /* bytes of IN read */
        uint8_t *buf;            /* the message, then the reply frame and bytes */
        size_t got;              /* bytes of the message read, or of the reply written */
        size_t out_len;          /* bytes of the reply frame and bytes */
};

struct peer_list {
        struct peer *head, *tail;
};

struct hc_listener {
        unsigned n_ref;          /* the listener, plus each message handed out */
        bool closed;             /* hc_listener_free() was called */
        int epfd;                /* what the caller polls */
        int sock;                /* listening socket */
        int tfd;                 /* timerfd for the earliest peer deadline */
        int lock_fd;             /* region file description holding HC_LOCK_LISTEN */
        int dirfd;               /* the scope directory */
        char sock_name[SOCKET_NAME_MAX];
        dev_t sock_dev;          /* the socket file we made, to remove only ours */
        ino_t sock_ino;
        uid_t uid;               /* peers must have it (or be root with allow_root) */
        bool allow_root;
        size_t message_max;
        int peer_timeout_ms;
        int64_t armed;           /* the timer's expiry, 0: disarmed */
        struct peer_list peers;  /* being read or written */
        struct peer_list ready;  /* complete, not yet received */
        unsigned n_peers;        /* in peers */
};

static void list_add(struct peer_list *list, struct peer *p) {
        p->next = NULL;
        p->prev = list->tail;
        if (list->tail)
                list->tail->next = p;
        else
                list->head = p;
        list->tail = p;
}

static void list_del(struct peer_list *list, struct peer *p) {
        if (p->prev)
                p->prev->next = p->next;
        else
                list->head = p->next;
        if (p->next)
                p->next->prev = p->prev;
        else
                list->tail = p->prev;
        p->prev = p->next = NULL;
}

/* ---- Options ---- */

static bool opt_has(const hc_options *opt, size_t end) {
        return opt && opt->size >= end;
}

static int opt_message_max(const hc_options *opt, size_t *ret) {
        size_t v = 0;

        if (opt_has(opt, offsetof(hc_options, message_max) + sizeof opt->message_max))
                v = opt->message_max;
        if (v > MESSAGE_MAX_LIMIT)
                return -EINVAL;
        *ret = v ? v : HC_MESSAGE_MAX_DEFAULT;
        return 0;
}

static int opt_peer_timeout(const hc_options *opt, int *ret) {
        int v = 0;

        if (opt_has(opt, offsetof(hc_options, peer_timeout_ms) + sizeof opt->peer_timeout_ms))
                v = opt->peer_timeout_ms;
        if (v < 0)
                return -EINVAL;
        *ret = v ? v : HC_PEER_TIMEOUT_DEFAULT_MS;
        return 0;
}

/* ---- Names and addresses ---- */

static int socket_name(const char *name, char *buf, size_t len) {
        int n = snprintf(buf, len, ".%s" SOCKET_SUFFIX, name);

        return n < 0 || (size_t) n >= len ? -ENAMETOOLONG : 0;
}

/* The address of FN in the scope directory: its path when that fits in sun_path, else
 * the same file reached through our descriptor of the directory. */
static int socket_addr(const struct scope *sc, int dirfd, const char *fn, struct sockaddr_un *ret,
                       socklen_t *ret_len) {
        int n;

        *ret = (struct sockaddr_un) { .sun_family = AF_UNIX };
        n = snprintf(ret->sun_path, sizeof ret->sun_path, "%s/%s", sc->dir, fn);
        if (n < 0 || (size_t) n >= sizeof ret->sun_path)
                n = snprintf(ret->sun_path, sizeof ret->sun_path, "/proc/self/fd/%d/%s", dirfd, fn);
        if (n < 0 || (size_t) n >= sizeof ret->sun_path)
                return -ENAMETOOLONG;
        *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + (size_t) n + 1);
        return 0;
}

/* Removes the region's socket (called when the region is retired) and any temporaries. */
void listen_socket_remove(int dirfd, const char *name) {
        char fn[SOCKET_NAME_MAX];
        struct stat st;

        if (socket_name(name, fn, sizeof fn) < 0)
                return;
        if (fstatat(dirfd, fn, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode))
                (void) unlinkat(dirfd, fn, 0);
}

/* Removes "<socket>~*" temporaries: only ever left by a listener that died between its
 * bind() and its rename(). Called with the listen lock held, so none is in use. */
static void remove_temporaries(int dirfd, const char *fn) {
        _cleanup_close_ int dfd = -EBADF;
        size_t len = strlen(fn);
        struct dirent *de;
        DIR *d;

        dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return;
        d = fdopendir(dfd);
        if (!d)
                return;
        dfd = -EBADF;
        while ((de = readdir(d))) {
                struct stat st;

                if (strncmp(de->d_name, fn, len) != 0 || de->d_name[len] != '~')
                        continue;
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode))
                        (void) unlinkat(dirfd, de->d_name, 0);
        }
        (void) closedir(d);
}

/* ---- The listener ---- */

static int64_t usec_after(int timeout_ms) {
        return now_usec() + (int64_t) timeout_ms * 1000;
}

/* Makes sure the timer goes off no later than DEADLINE. An early expiry costs a look. */
static void timer_arm(hc_listener *l, int64_t deadline) {
        struct itimerspec its = {};
        int64_t d;

        if (l->armed && l->armed <= deadline)
                return;
        d = deadline - now_usec();
        if (d < 1)
                d = 1;
        its.it_value.tv_sec = d / 1000000;
        its.it_value.tv_nsec = (long) (d % 1000000) * 1000;
        if (timerfd_settime(l->tfd, 0, &its, NULL) == 0)
                l->armed = deadline;
}

/* Best effort: tells a peer why it is being dropped. Never blocks. */
static void send_status(int fd, int status) {
        struct frame f = { .magic = FRAME_REPLY, .status = status };

        (void) send(fd, &f, sizeof f, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void peer_free(struct peer *p) {
        safe_close(p->fd);
        free(p->buf);
        free(p);
}

/* Drops a peer the listener owns (in l->peers), telling it STATUS when non-zero. */
static void peer_drop(hc_listener *l, struct peer *p, int status) {
        if (status)
                send_status(p->fd, status);
        (void) epoll_ctl(l->epfd, EPOLL_CTL_DEL, p->fd, NULL);
        list_del(&l->peers, p);
        l->n_peers--;
        peer_free(p);
}

static void listener_unref(hc_listener *l) {
        if (__atomic_sub_fetch(&l->n_ref, 1, __ATOMIC_ACQ_REL) == 0)
                free(l);
}

static void accept_peers(hc_listener *l) {
        for (unsigned i = 0; i < 64; i++) {
                struct ucred cred;
                socklen_t len = sizeof cred;
                struct peer *p;
                int fd;

                fd = accept4(l->sock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        return;           /* EAGAIN, or out of descriptors: try later */
                }
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                        safe_close(fd);
                        continue;
                }
                if (cred.uid != l->uid && !(cred.uid == 0 && l->allow_root)) {
                        send_status(fd, EPERM);
                        safe_close(fd);
                        continue;
                }
                if (l->n_peers >= PEERS_MAX) {
                        send_status(fd, EBUSY);
                        safe_close(fd);
                        continue;
                }
                p = calloc(1, sizeof *p);
                if (!p) {
                        safe_close(fd);
                        return;
                }
                p->l = l;
                p->fd = fd;
                p->state = PEER_HEADER;
                p->msg.pid = cred.pid;
                p->msg.uid = cred.uid;
                p->msg.gid = cred.gid;
                p->deadline = usec_after(l->peer_timeout_ms);
                if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &(struct epoll_event) {
                                .events = EPOLLIN, .data.ptr = p }) < 0) {
                        peer_free(p);
                        continue;
                }
                list_add(&l->peers, p);
                l->n_peers++;
                timer_arm(l, p->deadline);
        }
}

/* Reads what PEER has sent; moves it to the ready queue when its message is complete. */
static void peer_read(hc_listener *l, struct peer *p) {
        for (;;) {
                ssize_t n;

                if (p->state == PEER_HEADER)
                        n = read(p->fd, (uint8_t *) &p->in + p->in_got, sizeof p->in - p->in_got);
                else
                        n = read(p->fd, p->buf + p->got, p->in.size - p->got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        peer_drop(l, p, 0);       /* gone before its message was whole */
                        return;
                }
                if (p->state == PEER_HEADER) {
                        p->in_got += (size_t) n;
                        if (p->in_got < sizeof p->in)
                                continue;
                        if (p->in.magic != FRAME_REQUEST || p->in.status != 0) {
                                peer_drop(l, p, EBADMSG);
                                return;
                        }
                        if (p->in.size > l->message_max) {
                                peer_drop(l, p, EMSGSIZE);
                                return;
                        }
                        p->buf = malloc((size_t) p->in.size + 1);
                        if (!p->buf) {
                                peer_drop(l, p, ENOMEM);
                                return;
                        }
                        p->state = PEER_BODY;
                } else
                        p->got += (size_t) n;
                if (p->got == p->in.size)
                        break;
        }

        p->buf[p->in.size] = '\0';
        p->msg.data = p->buf;
        p->msg.size = p->in.size;
        (void) epoll_ctl(l->epfd, EPOLL_CTL_DEL, p->fd, NULL);
        list_del(&l->peers, p);
        l->n_peers--;
        p->state = PEER_READY;
        list_add(&l->ready, p);
}

/* Writes what is left of PEER's reply. 1: done or failed (the peer is gone), 0: more to
 * write later, or -errno when it failed. */
static int peer_write(struct peer *p) {
        while (p->got < p->out_len) {
                ssize_t n = send(p->fd, p->buf + p->got, p->out_len - p->got,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                if (n < 0)
                        return -errno;
                p->got += (size_t) n;
        }
        return 1;
}

static void expire_peers(hc_listener *l) {
        int64_t now = now_usec(), next = 0;
        struct peer *p, *q;

        (void) timerfd_settime(l->tfd, 0, &(struct itimerspec) {}, NULL);
        l->armed = 0;
        for (p = l->peers.head; p; p = q) {
                q = p->next;
                if (p->deadline <= now)
                        peer_drop(l, p, p->state == PEER_WRITING ? 0 : ETIMEDOUT);
                else if (!next || p->deadline < next)
                        next = p->deadline;
        }
        if (next)
                timer_arm(l, next);
}

/* One round of pending events. Returns 0, or -errno when epoll itself fails. */
static int listener_dispatch(hc_listener *l) {
        struct epoll_event ev[32];
        bool expire = false;
        int n;

        n = epoll_wait(l->epfd, ev, (int) ELEMENTSOF(ev), 0);
        if (n < 0)
                return errno == EINTR ? 0 : -errno;
        for (int i = 0; i < n; i++) {
                struct peer *p = ev[i].data.ptr;

                if (ev[i].data.ptr == l) {
                        accept_peers(l);
                        continue;
                }
                if (ev[i].data.ptr == &l->tfd) {
                        expire = true;    /* after the batch: it may free peers in it */
                        continue;
                }
                if (p->state == PEER_WRITING) {
                        if (peer_write(p) != 0)
                                peer_drop(l, p, 0);
                } else
                        peer_read(l, p);
        }
        if (expire) {
                uint64_t ticks;
                (void) read(l->tfd, &ticks, sizeof ticks);
                expire_peers(l);
        }
        return n;
}

_hc_public_ int hc_listener_receive(hc_listener *l, hc_message **ret) {
        hc_assert_return(l && ret, -EINVAL);
        hc_assert_return(!l->closed, -EINVAL);

        /* Bounded, so that a descriptor the kernel keeps reporting (accept() failing for
         * want of descriptors) cannot hold the caller here. */
        for (unsigned round = 0; round < 64; round++) {
                struct peer *p = l->ready.head;
                int r;

                if (p) {
                        list_del(&l->ready, p);
                        p->state = PEER_HANDED;
                        __atomic_add_fetch(&l->n_ref, 1, __ATOMIC_RELAXED);
                        *ret = &p->msg;
                        return 0;
                }
                r = listener_dispatch(l);
                if (r < 0)
                        return r;
                if (r == 0 && !l->ready.head)
                        break;
        }
        return -EAGAIN;
}

_hc_public_ int hc_listener_fd(const hc_listener *l) {
        hc_assert_return(l && !l->closed, -EINVAL);
        return l->epfd;
}

_hc_public_ hc_message *hc_message_free(hc_message *m) {
        struct peer *p = (struct peer *) m;
        hc_listener *l;

        if (!m)
                return NULL;
        l = p->l;
        peer_free(p);
        listener_unref(l);
        return NULL;
}

_hc_public_ int hc_message_reply(hc_message *m, const void *data, size_t len) {
        struct peer *p = (struct peer *) m;
        hc_listener *l;
        struct frame f;
        int r;

        hc_assert_return(m, -EINVAL);
        l = p->l;
        if ((!data && len > 0) || len > l->message_max) {
                send_status(p->fd, EMSGSIZE);
                hc_message_free(m);
                return -EMSGSIZE;
        }

        free(p->buf);
        p->msg.data = NULL;
        p->buf = malloc(sizeof f + len);
        if (!p->buf) {
                hc_message_free(m);
                return -ENOMEM;
        }
        f = (struct frame) { .magic = FRAME_REPLY, .size = (uint32_t) len };
        memcpy(p->buf, &f, sizeof f);
        if (len)
                memcpy(p->buf + sizeof f, data, len);
        p->out_len = sizeof f + len;
        p->got = 0;

        r = peer_write(p);
        if (r == 0 && !l->closed) {
                /* the sender is slow to read: the rest goes out from the event loop */
                p->state = PEER_WRITING;
                p->deadline = usec_after(l->peer_timeout_ms);
                if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, p->fd, &(struct epoll_event) {
                                .events = EPOLLOUT, .data.ptr = p }) == 0) {
                        list_add(&l->peers, p);
                        l->n_peers++;
                        timer_arm(l, p->deadline);
                        listener_unref(l);
                        return 0;
                }
                r = -errno;
        }
        if (r == 0) {
                /* the listener is gone: no loop to finish it in, so wait a bounded time */
                int64_t deadline = usec_after(l->peer_timeout_ms);
                while (r == 0) {
                        int64_t left = deadline - now_usec();
                        if (left <= 0) {
                                r = -ETIMEDOUT;
                                break;
                        }
                        (void) poll(&(struct pollfd) { .fd = p->fd, .events = POLLOUT }, 1,
                                    left / 1000 >= 0x7fffffff ? 0x7fffffff : (int) (left / 1000) + 1);
                        r = peer_write(p);
                }
        }
        hc_message_free(m);
        return r < 0 ? r : 0;
}

static void listener_close(hc_listener *l) {
        struct stat st;
        struct peer *p;

        for (int i = 0; i < 2; i++) {
                struct peer_list *list = i == 0 ? &l->peers : &l->ready;

                p = list->head;
                while (p) {
                        struct peer *next = p->next;
                        peer_free(p);
                        p = next;
                }
                list->head = list->tail = NULL;
        }
        l->n_peers = 0;
        /* our socket file goes before our lock: the next listener replaces it anyway */
        if (l->dirfd >= 0 && l->sock_name[0] &&
            fstatat(l->dirfd, l->sock_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            st.st_ino == l->sock_ino && st.st_dev == l->sock_dev)
                (void) unlinkat(l->dirfd, l->sock_name, 0);
        l->sock = safe_close(l->sock);
        l->epfd = safe_close(l->epfd);
        l->tfd = safe_close(l->tfd);
        l->dirfd = safe_close(l->dirfd);
        l->lock_fd = safe_close(l->lock_fd);
        l->closed = true;
}

_hc_public_ hc_listener *hc_listener_free(hc_listener *l) {
        if (!l)
                return NULL;
        listener_close(l);
        listener_unref(l);
        return NULL;
}

/* 1 when SLOT is the primary of the region SC names, 0 when not. */
static int slot_primary(const char *name, const hc_options *opt, const hc_slot *slot) {
        hc_instance inst;
        int r;

        r = hc_primary(name, opt, &inst);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        return inst.slot == slot->index && inst.seq == slot->rec.seq;
}

/* Binds a listening socket under a temporary name and moves it over the real one. */
static int listener_bind(hc_listener *l, const struct scope *sc, mode_t mode) {
        char tmp[SOCKET_NAME_MAX + 24];
        struct sockaddr_un sa;
        socklen_t sa_len;
        uint64_t rnd = 0;
        struct stat st;
        int r;

        (void) getrandom(&rnd, sizeof rnd, GRND_NONBLOCK);
        rnd ^= (uint64_t) now_usec() ^ ((uint64_t) getpid() << 32);
        if ((size_t) snprintf(tmp, sizeof tmp, "%s~%016llx", l->sock_name,
                              (unsigned long long) rnd) >= sizeof tmp)
                return -ENAMETOOLONG;
        r = socket_addr(sc, l->dirfd, tmp, &sa, &sa_len);
        if (r < 0)
                return r;

        l->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (l->sock < 0)
                return -errno;
        if (bind(l->sock, (struct sockaddr *) &sa, sa_len) < 0)
                return -errno;
        /* a socket's mode lives on its file: chmod the name, not the descriptor */
        if (fchmodat(l->dirfd, tmp, mode, 0) < 0 ||
            fstatat(l->dirfd, tmp, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            listen(l->sock, SOMAXCONN) < 0) {
                r = -errno;
                (void) unlinkat(l->dirfd, tmp, 0);
                return r;
        }
        HC_HOOK("listen-bound");
        if (renameat(l->dirfd, tmp, l->dirfd, l->sock_name) < 0) {
                r = -errno;
                (void) unlinkat(l->dirfd, tmp, 0);
                return r;
        }
        l->sock_dev = st.st_dev;
        l->sock_ino = st.st_ino;
        return 0;
}

_hc_public_ int hc_listen(const char *name, const hc_options *opt, const hc_slot *slot,
                          hc_listener **ret) {
        struct hc_region_header h;
        struct scope sc;
        hc_listener *l;
        struct stat st;
        int r;

        hc_assert_return(slot && ret, -EINVAL);
        r = scope_resolve(name, opt, &sc);
        if (r < 0)
                return r;
        if (opt && (opt->flags & ~(unsigned) (HC_NO_CREATE | HC_INHERIT | HC_WATCH | HC_ALLOW_ROOT)))
                return -EINVAL;

        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        *l = (hc_listener) {
                .n_ref = 1,
                .epfd = -EBADF, .sock = -EBADF, .tfd = -EBADF, .lock_fd = -EBADF, .dirfd = -EBADF,
                .uid = geteuid(),
                .allow_root = opt && (opt->flags & HC_ALLOW_ROOT),
        };
        r = opt_message_max(opt, &l->message_max);
        if (r < 0)
                goto fail;
        r = opt_peer_timeout(opt, &l->peer_timeout_ms);
        if (r < 0)
                goto fail;
        r = socket_name(sc.name, l->sock_name, sizeof l->sock_name);
        if (r < 0)
                goto fail;

        r = scope_open_dir(&sc, false, &l->dirfd);
        if (r < 0)
                goto fail;
        r = region_open_file(&sc, opt, O_RDWR, false, &l->lock_fd, &h);
        if (r < 0)
                goto fail;
        if (fstat(l->lock_fd, &st) < 0) {
                r = -errno;
                goto fail;
        }
        r = file_trust(&st, sc.system);
        if (r < 0)
                goto fail;
        if (st.st_nlink == 0) {
                r = -ENOENT;              /* retired since */
                goto fail;
        }
        if (slot->region_id != h.region_id) {
                r = -EINVAL;              /* a seat of another region */
                goto fail;
        }
        if (fcntl(l->lock_fd, F_OFD_SETLK, &(struct flock) {
                        .l_type = F_WRLCK, .l_whence = SEEK_SET,
                        .l_start = HC_LOCK_LISTEN, .l_len = 1 }) < 0) {
                r = errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
                goto fail;
        }
        /* Checked with the lock held: a primary that listens cannot be replaced by a
         * secondary that checked before the primary took the lock. */
        r = slot_primary(name, opt, slot);
        if (r <= 0) {
                r = r < 0 ? r : -EBUSY;
                goto fail;
        }

        remove_temporaries(l->dirfd, l->sock_name);
        r = listener_bind(l, &sc, st.st_mode & 0777);
        if (r < 0)
                goto fail;

        l->epfd = epoll_create1(EPOLL_CLOEXEC);
        l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (l->epfd < 0 || l->tfd < 0 ||
            epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->sock, &(struct epoll_event) {
                        .events = EPOLLIN, .data.ptr = l }) < 0 ||
            epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->tfd, &(struct epoll_event) {
                        .events = EPOLLIN, .data.ptr = &l->tfd }) < 0) {
                r = -errno;
                goto fail;
        }
        *ret = l;
        return 0;

fail:
        listener_close(l);
        free(l);
        return r;
}

_hc_public_ int hc_slot_is_primary(const char *name, const hc_options *opt, const hc_slot *slot) {
        hc_assert_return(slot, -EINVAL);
        return slot_primary(name, opt, slot);
}

/* ---- Sending ---- */

/* Waits until FD is ready for EVENTS or DEADLINE (µs, -1: never) passes. */
static int wait_fd(int fd, short events, int64_t deadline) {
        for (;;) {
                int timeout = -1, n;

                if (deadline >= 0) {
                        int64_t left = deadline - now_usec();
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

static int connect_listener(const struct scope *sc, int dirfd, int64_t deadline, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        char fn[SOCKET_NAME_MAX];
        struct sockaddr_un sa;
        socklen_t sa_len;
        int r;

        r = socket_name(sc->name, fn, sizeof fn);
        if (r < 0)
                return r;
        r = socket_addr(sc, dirfd, fn, &sa, &sa_len);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        for (;;) {
                if (connect(fd, (struct sockaddr *) &sa, sa_len) == 0)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return -errno;
                /* The listener's backlog is full. A non-blocking Unix socket cannot wait
                 * for room with poll(), so look again shortly. */
                if (deadline >= 0 && now_usec() >= deadline)
                        return -ETIMEDOUT;
                (void) nanosleep(&(struct timespec) { .tv_nsec = 2000000 }, NULL);
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

_hc_public_ int hc_send(const char *name, const hc_options *opt, const void *msg, size_t len,
                        void **ret_reply, size_t *ret_len) {
        _cleanup_close_ int dirfd = -EBADF, fd = -EBADF;
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
        r = opt_message_max(opt, &max);
        if (r < 0)
                return r;
        if (len > max)
                return -EMSGSIZE;
        deadline = timeout < 0 ? -1 : usec_after(timeout ? timeout : HC_SEND_TIMEOUT_DEFAULT_MS);

        r = scope_open_dir(&sc, false, &dirfd);
        if (r < 0)
                return r;
        r = connect_listener(&sc, dirfd, deadline, &fd);
        if (r < 0)
                return r;
        /* the credentials the listener had when it called listen() */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) < 0)
                return -errno;
        if (cred.uid != geteuid() && cred.uid != 0 &&
            !(geteuid() == 0 && opt && (opt->flags & HC_ALLOW_ROOT)))
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

/* ---- Arguments ---- */

_hc_public_ int hc_args_pack(const char *cwd, char *const argv[], void **ret, size_t *ret_len) {
        _cleanup_free_ char *own_cwd = NULL;
        size_t total = sizeof ARGS_MAGIC, n;
        char *buf, *p;

        hc_assert_return(argv && ret && ret_len, -EINVAL);
        if (!cwd) {
                own_cwd = getcwd(NULL, 0);
                if (!own_cwd)
                        return -errno;
                cwd = own_cwd;
        }
        total += strlen(cwd) + 1;
        for (size_t i = 0; argv[i]; i++) {
                n = strlen(argv[i]) + 1;
                if (total > UINT32_MAX - n)
                        return -E2BIG;
                total += n;
        }
        buf = malloc(total);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, ARGS_MAGIC, sizeof ARGS_MAGIC);
        p = stpcpy(buf + sizeof ARGS_MAGIC, cwd) + 1;
        for (size_t i = 0; argv[i]; i++)
                p = stpcpy(p, argv[i]) + 1;
        *ret = buf;
        *ret_len = total;
        return 0;
}

_hc_public_ int hc_args_unpack(const void *data, size_t len, char **ret_cwd, char ***ret_argv) {
        const char *s = data;
        size_t argc = 0, strings;
        char **block, *copy;

        hc_assert_return(data && ret_cwd && ret_argv, -EINVAL);
        if (len <= sizeof ARGS_MAGIC || memcmp(s, ARGS_MAGIC, sizeof ARGS_MAGIC) != 0 ||
            s[len - 1] != '\0')
                return -EBADMSG;
        s += sizeof ARGS_MAGIC;
        strings = len - sizeof ARGS_MAGIC;
        for (size_t i = 0; i < strings; i++)
                if (s[i] == '\0')
                        argc++;
        argc--;                           /* the first string is the directory */
        if (argc > INT32_MAX)
                return -EBADMSG;
        block = malloc((argc + 1) * sizeof(char *) + strings);
        if (!block)
                return -ENOMEM;
        copy = (char *) (block + argc + 1);
        memcpy(copy, s, strings);
        *ret_cwd = copy;
        copy += strlen(copy) + 1;
        for (size_t i = 0; i < argc; i++) {
                block[i] = copy;
                copy += strlen(copy) + 1;
        }
        block[argc] = NULL;
        *ret_argv = block;
        return (int) argc;
}
