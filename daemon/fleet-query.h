/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fleet agent's requests that take no seat, on the socket and on D-Bus (fleet-query.c).
 */
#ifndef HCD_FLEET_QUERY_H
#define HCD_FLEET_QUERY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct Fleet Fleet;
typedef struct FleetConn FleetConn;
typedef struct FleetName FleetName;

/* FleetNames' answer: the names a caller may read, with their counts. */
typedef struct FleetNameList {
        struct {
                char *name;
                unsigned count;
        } *v;
        size_t n, size;
} FleetNameList;

FleetNameList *fleet_name_list_new(void);
int fleet_name_list_add(FleetNameList *l, const char *name, unsigned count);
FleetNameList *fleet_name_list_free(FleetNameList *l);

/* A request on connection C (FIELDS: its words): 1 when it is answered later, 0 when it
 * was answered, or a negative errno. */
int fleet_query_start(FleetConn *c, char **fields, size_t n);
void fleet_name_counted(FleetName *n, int r);
/* answered through the hooks; UID is the bus caller's euid ((uid_t) -1: unknown) */
int fleet_bus_count(Fleet *f, uint64_t id, uid_t uid, const char *name);
int fleet_bus_names(Fleet *f, uint64_t id, uid_t uid);
void fleet_bus_calls_free(Fleet *f);

#endif
