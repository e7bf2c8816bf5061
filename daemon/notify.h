/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Notifications to the service manager (sd_notify(3)) that never block the event loop. */
#ifndef HCD_NOTIFY_H
#define HCD_NOTIFY_H

/* Sends TEXT ("STATUS=...", "WATCHDOG=1", ...) to $NOTIFY_SOCKET. Returns 1 when it was
 * sent, 0 when there is no socket, -EAGAIN when the manager's queue is full (send it again
 * later), or -errno. */
int notify_send(const char *text);

#endif
