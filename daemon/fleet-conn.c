/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One client connection of the agent's socket, as the requests see it: the answers
 * written to it (one message each, fields separated by NUL bytes: docs/fleet.md), and
 * whether a request is in flight. A connection carries one request at a time: while one
 * waits for etcd we read no more from it, and watch only for its hang-up. This is the only
 * code that writes to a client; fleet-socket.c accepts, reads and closes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "fleet-access.h"
#include "fleet-conn.h"
#include "fleet-name.h"
#include "fleet.h"

/* We read a request only when the last one is answered and its answer is sent: a client
 * that does not read what it asked for gets nothing more, and costs one answer's memory. */
static void conn_update_events(FleetConn *c) {
        uint32_t events = c->busy || c->n_out > 0 ? EPOLLRDHUP : EPOLLIN;

        if (c->n_out > 0)
                events |= EPOLLOUT;
        if (events == c->events)
                return;
        c->events = events;
        (void) epoll_ctl(c->fleet->conn_epoll, EPOLL_CTL_MOD, c->fd,
                         &(struct epoll_event) { .events = events, .data.ptr = c });
}

/* Sends what is queued; returns -1 when the connection is broken. */
int fleet_conn_flush(FleetConn *c) {
        while (c->n_out > 0) {
                ssize_t n = send(c->fd, c->out[0].iov_base, c->out[0].iov_len,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);

                if (n < 0 && errno == EAGAIN)
                        break;
                if (n < 0)
                        return -1;
                free(c->out[0].iov_base);
                memmove(c->out, c->out + 1, --c->n_out * sizeof *c->out);
        }
        conn_update_events(c);
        return 0;
}

static void conn_queue(FleetConn *c, char *buf, size_t len) {
        struct iovec *a;

        if (c->n_out == 0) {
                ssize_t n = send(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

                if (n >= 0 || errno != EAGAIN) {
                        free(buf);              /* sent, or the hang-up will tell */
                        return;
                }
        }
        /* The client reads slower than we answer (a long LIST): keep the rest. */
        a = realloc(c->out, (c->n_out + 1) * sizeof *a);
        if (!a) {
                free(buf);
                return;
        }
        c->out = a;
        c->out[c->n_out++] = (struct iovec) { .iov_base = buf, .iov_len = len };
        conn_update_events(c);
}

void fleet_conn_send(FleetConn *c, const char *first, ...) {
        size_t len = 0, n;
        const char *s;
        char *buf, *p;
        va_list ap;

        va_start(ap, first);
        for (s = first; s; s = va_arg(ap, const char *))
                len += strlen(s) + 1;
        va_end(ap);
        buf = malloc(len ? len : 1);
        if (!buf)
                return;
        p = buf;
        va_start(ap, first);
        for (s = first; s; s = va_arg(ap, const char *)) {
                n = strlen(s);
                memcpy(p, s, n + 1);            /* the NUL separates it from the next */
                p += n + 1;
        }
        va_end(ap);
        conn_queue(c, buf, len ? len - 1 : 0);  /* no NUL after the last field */
}

void fleet_conn_senderr(FleetConn *c, int error, const char *format, ...) {
        char text[1024], num[16];
        va_list ap;

        va_start(ap, format);
        (void) vsnprintf(text, sizeof text, format, ap);
        va_end(ap);
        (void) snprintf(num, sizeof num, "%i", error);
        fleet_conn_send(c, "ERR", num, text, (char *) NULL);
}

/* The request in flight was answered: read the next one. */
void fleet_conn_done(FleetConn *c) {
        c->call = etcd_call_cancel(c->call);
        c->timer = sd_event_source_disable_unref(c->timer);
        fleet_name_unref(c->wait_name);
        c->wait_name = NULL;
        free(c->query_name);
        c->query_name = NULL;
        c->busy = false;
        conn_update_events(c);
}

/* The connection's user name on this host, "" when its uid has none. */
const char *fleet_conn_user(FleetConn *c) {
        if (!c->user_name_known) {
                if (fleet_user_name(c->uid, c->user_name, sizeof c->user_name) < 0)
                        c->user_name[0] = '\0';
                c->user_name_known = true;
        }
        return c->user_name;
}

/* A request is in flight: read no more until fleet_conn_done(). */
void fleet_conn_begin(FleetConn *c) {
        c->busy = true;
        conn_update_events(c);
}
