/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The primary's listener: its socket, and the peers it reads and answers.
 *
 * The socket. The primary binds ".NAME.<nonce>.sock" in the scope directory, <nonce>
 * being 64 random bits drawn for this listener, and then publishes the nonce in its own
 * record. Nobody can take the name before us (they cannot guess it; bind() fails on a
 * name that exists, and we draw again), a crashed primary's socket has a name nobody
 * will ask for again (the next primary publishes its own), and nothing another user
 * plants in the directory is ever in the way. Only one listener per region: it holds an
 * OFD write lock on HC_LOCK_LISTEN of lock file 0 (which only those who may write the
 * region can open: a read lock on the region file would keep every listener out) through
 * a description of its own for as long as it listens, and
 * whoever gets that lock removes the dead sockets of its own uid that the region's
 * earlier listeners left. The socket is 0600: only our uid (and root) can connect, and
 * the listener checks every peer's credentials anyway.
 *
 * The listener never blocks: it reads what has arrived, keeps partial messages per
 * peer, and a peer that has not delivered its whole message (or taken its whole reply)
 * within the peer timeout is dropped. Closing a Unix stream socket with unread data makes
 * the peer see ECONNRESET only after it has read what we sent before
 * (unix_stream_read_generic() returns queued data before the error), so a refused sender
 * still gets the status.
 *
 * The one descriptor the caller polls is an epoll set over the listening socket, the
 * peers being read or written, and a timerfd armed for the earliest peer deadline. It is
 * level-triggered, so the caller may stop calling hc_listener_receive() at any point and
 * is woken again for what is left.
 */
#include <errno.h>
#include <fcntl.h>
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
#include <unistd.h>

#include "count.h"
#include "files.h"
#include "fleet.h"
#include "format.h"
#include "frame.h"
#include "hc-internal.h"
#include "join.h"
#include "proc.h"
#include "util.h"

#define PEERS_MAX 1024                           /* connections being read at once */

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
        hc_region *h;            /* the region */
        int lock_fd;             /* lock file 0; holds HC_LOCK_LISTEN */
        char sock_name[FILE_NAME_MAX];
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

static int opt_peer_timeout(const hc_options *opt, int *ret) {
        int v = 0;

        if (opt && opt->size >= offsetof(hc_options, peer_timeout_ms) + sizeof opt->peer_timeout_ms)
                v = opt->peer_timeout_ms;
        if (v < 0)
                return -EINVAL;
        *ret = v ? v : HC_PEER_TIMEOUT_DEFAULT_MS;
        return 0;
}
/* ---- The listener ---- */

static int64_t usec_after(int timeout_ms) {
        return monotonic_usec() + (int64_t) timeout_ms * 1000;
}

/* Makes sure the timer goes off no later than DEADLINE. An early expiry costs a look. */
static void timer_arm(hc_listener *l, int64_t deadline) {
        struct itimerspec its = {};
        int64_t d;

        if (l->armed && l->armed <= deadline)
                return;
        d = deadline - monotonic_usec();
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
        int64_t now = monotonic_usec(), next = 0;
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
                /* no read() of the timerfd: expire_peers() disarms it with
                 * timerfd_settime(), which clears its count and its readiness */
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
                        int64_t left = deadline - monotonic_usec();
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
        if (l->h && l->sock_name[0] &&
            fstatat(l->h->dirfd, l->sock_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            st.st_ino == l->sock_ino && st.st_dev == l->sock_dev)
                (void) unlinkat(l->h->dirfd, l->sock_name, 0);
        l->sock = safe_close(l->sock);
        l->epfd = safe_close(l->epfd);
        l->tfd = safe_close(l->tfd);
        l->lock_fd = safe_close(l->lock_fd);
        l->h = handle_unref(l->h);
        l->closed = true;
}

_hc_public_ hc_listener *hc_listener_free(hc_listener *l) {
        if (!l)
                return NULL;
        listener_close(l);
        listener_unref(l);
        return NULL;
}


/* 1 when SLOT is the primary of the region H, 0 when not. */
static int slot_primary(hc_region *h, const hc_slot *slot) {
        hc_instance inst;
        int r;

        if (slot->h->r.region_id != h->r.region_id)
                return 0;
        r = handle_primary(h, &inst, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        return inst.slot == slot->index && inst.seq == slot->rec.seq;
}

/* Binds a listening socket under a fresh random name. */
static int listener_bind(hc_listener *l, uint64_t *ret_nonce) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct stat st;
        int r;

        l->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (l->sock < 0)
                return -errno;
        l->sock = fd_above_stdio(l->sock);
        if (l->sock < 0)
                return l->sock;
        for (unsigned attempt = 0;; attempt++) {
                uint64_t nonce = 0;

                if (getrandom(&nonce, sizeof nonce, GRND_NONBLOCK) != (ssize_t) sizeof nonce)
                        nonce ^= (uint64_t) monotonic_usec() << 16 ^ (uint64_t) getpid();
                nonce |= 1;               /* 0 means "not listening" */
                r = file_socket_name(l->sock_name, sizeof l->sock_name, l->h->sc.name, nonce);
                if (r < 0)
                        return r;
                /* through our descriptor of the checked directory: no path to swap */
                r = fd_path(sa.sun_path, sizeof sa.sun_path, l->h->dirfd, l->sock_name);
                if (r < 0)
                        return r;
                if (bind(l->sock, (struct sockaddr *) &sa, sizeof sa) == 0) {
                        *ret_nonce = nonce;
                        break;
                }
                if (errno != EADDRINUSE || attempt >= 8) {
                        l->sock_name[0] = '\0';
                        return -errno;
                }
        }
        /* a socket's mode lives on its file: chmod the name, not the descriptor */
        if (fchmodat(l->h->dirfd, l->sock_name, 0600, 0) < 0 ||
            fstatat(l->h->dirfd, l->sock_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            listen(l->sock, SOMAXCONN) < 0)
                return -errno;
        l->sock_dev = st.st_dev;
        l->sock_ino = st.st_ino;
        HC_HOOK("listen-bound");
        return 0;
}

_hc_public_ int hc_listen(const char *name, const hc_options *opt, const hc_slot *slot,
                          hc_listener **ret) {
        struct scope sc;
        hc_listener *l;
        uint64_t nonce = 0;
        int r;

        hc_assert_return(slot && ret, -EINVAL);
        if (slot->fleet)
                return -EOPNOTSUPP;       /* the fleet primary may be on another host */
        r = scope_resolve(name, opt, &sc);
        if (r < 0)
                return r;
        if (opt && (opt->flags & ~(unsigned) (HC_NO_CREATE | HC_INHERIT | HC_WATCH | HC_ALLOW_ROOT |
                                                  HC_RECORD_LATER | HC_ANY_OWNER | HC_LOCK_TRY)))
                return -EINVAL;

        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        *l = (hc_listener) {
                .n_ref = 1,
                .epfd = -EBADF, .sock = -EBADF, .tfd = -EBADF, .lock_fd = -EBADF,
                .uid = geteuid(),
                .allow_root = opt && (opt->flags & HC_ALLOW_ROOT),
        };
        r = frame_message_max(opt, &l->message_max);
        if (r < 0)
                goto fail;
        r = opt_peer_timeout(opt, &l->peer_timeout_ms);
        if (r < 0)
                goto fail;
        r = handle_open(&sc, opt, 0, &l->h);
        if (r < 0)
                goto fail;
        if (!l->h->r.writable) {
                r = -EACCES;
                goto fail;
        }
        if (region_unlinked(&l->h->r) != 0) {
                r = -ENOENT;              /* retired since */
                goto fail;
        }
        if (slot->h->r.region_id != l->h->r.region_id || slot->pid != self_pid()) {
                r = -EINVAL;              /* a seat of another region, or of another process */
                goto fail;
        }
        r = region_open_lock_file(l->h->dirfd, &sc, &l->h->r, 0, O_RDWR, &l->lock_fd);
        if (r < 0) {
                l->lock_fd = -EBADF;
                r = r == -ESTALE ? -ENOENT : r;   /* retired since */
                goto fail;
        }
        r = ofd_lock(l->lock_fd, F_WRLCK, HC_LOCK_LISTEN, 1);
        if (r < 0) {
                r = r == -EAGAIN ? -EBUSY : r;
                goto fail;
        }
        /* Checked with the lock held: a primary that listens cannot be replaced by a
         * secondary that checked before the primary took the lock. */
        r = slot_primary(l->h, slot);
        if (r <= 0) {
                r = r < 0 ? r : -EBUSY;
                goto fail;
        }
        r = listener_bind(l, &nonce);
        if (r < 0)
                goto fail;
        files_remove_sockets(l->h->dirfd, sc.name, nonce);

        l->epfd = fd_above_stdio(epoll_create1(EPOLL_CLOEXEC));
        l->tfd = fd_above_stdio(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
        if (l->epfd < 0 || l->tfd < 0 ||
            epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->sock, &(struct epoll_event) {
                        .events = EPOLLIN, .data.ptr = l }) < 0 ||
            epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->tfd, &(struct epoll_event) {
                        .events = EPOLLIN, .data.ptr = &l->tfd }) < 0) {
                r = -errno;
                goto fail;
        }
        /* last: senders find us only once we listen */
        r = slot_set_listen_id((hc_slot *) slot, nonce);
        if (r < 0)
                goto fail;
        *ret = l;
        return 0;

fail:
        listener_close(l);
        free(l);
        return r;
}

_hc_public_ int hc_slot_is_primary(const char *name, const hc_options *opt, const hc_slot *slot) {
        struct scope sc;
        hc_region *h = NULL;
        int r;

        hc_assert_return(slot, -EINVAL);
        if (fleet_scope(opt))
                return fleet_is_primary(name, opt, slot);
        if (slot->fleet)
                return -EINVAL;           /* a fleet seat, asked about a local region */
        r = scope_resolve(name, opt, &sc);
        if (r < 0)
                return r;
        r = handle_open(&sc, opt, HANDLE_READ_ONLY | HANDLE_FOREIGN, &h);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = slot_primary(h, slot);
        handle_unref(h);
        return r;
}
