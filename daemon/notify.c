/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sd_notify() without the wait. libsystemd's sd_notify() sends on a blocking socket: when
 * the receiver's queue is full (net.unix.max_dgram_qlen datagrams, 10 by default), it
 * sleeps until the receiver reads. A service manager that is slow to read, or a harness
 * that listens on $NOTIFY_SOCKET and reads only the line it waits for, would then stop
 * the whole event loop, every count and log line with it. We send with MSG_DONTWAIT
 * instead and let the caller try again later: a STATUS= line describes a state, so only
 * the latest one matters.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "notify.h"

int notify_send(const char *text) {
        const char *e = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        socklen_t len;
        size_t n;
        int fd, k;

        if (!e || !e[0])
                return 0;
        n = strlen(e);
        if ((e[0] != '/' && e[0] != '@') || n >= sizeof sa.sun_path)
                return sd_notify(false, text);    /* another kind of address: libsystemd's way */
        memcpy(sa.sun_path, e, n);
        if (e[0] == '@')
                sa.sun_path[0] = '\0';            /* abstract: exactly N bytes, no NUL */
        len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + (e[0] == '/'));

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        k = sendto(fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *) &sa, len) < 0 ?
                -errno : 1;
        (void) close(fd);
        return k == -EWOULDBLOCK ? -EAGAIN : k;
}
