/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Who may do what with a fleet name, and which pids a client may claim (fleet-access.c).
 */
#ifndef HCD_FLEET_ACCESS_H
#define HCD_FLEET_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "fleet-keys.h"

/* What a request needs of a name. */
enum {
        FLEET_ACCESS_READ = 04,          /* COUNT, LIST, WAIT, NAMES */
        FLEET_ACCESS_JOIN = 02,          /* JOIN */
        FLEET_ACCESS_OWNER = 01000,      /* CREATE over it, REMOVE */
};

int fleet_user_name(uid_t uid, char *buf, size_t size);
int fleet_access(uid_t uid, const char *user, const FleetDef *d, int want);
int fleet_access_error(const char *name, uid_t uid, const char *user, const FleetDef *d,
                       int want, char *buf, size_t size);
bool fleet_pid_descends(pid_t pid, pid_t ancestor);

#endif
