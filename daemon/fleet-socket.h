/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fleet agent's socket: where it listens, whom it accepts, what it reads (fleet-socket.c).
 */
#ifndef HCD_FLEET_SOCKET_H
#define HCD_FLEET_SOCKET_H

#include <stdbool.h>

typedef struct Fleet Fleet;

int fleet_socket_open(Fleet *f, const char *dir, bool shared);
void fleet_set_caps(Fleet *f, unsigned connections, unsigned names);
void fleet_socket_close(Fleet *f);

#endif
