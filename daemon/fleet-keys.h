/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fleet's keys in etcd, and the requests and answers about them (fleet-keys.c).
 */
#ifndef HCD_FLEET_KEYS_H
#define HCD_FLEET_KEYS_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

/* The largest N a name may have. */
#define HCD_FLEET_MAX_MAX 1000000

/* A user name as fleet names record their owners: they outlive uids across hosts. */
#define FLEET_USER_MAX 64

/* A name's definition, the value of NAME/max: {"max":N,"owner":"USER","mode":"0644"},
 * with "join":true when a join made it (it lives as long as the name's seat keys); a plain
 * decimal (written by older agents) reads as owner root, mode 0666, made by CREATE. */
typedef struct FleetDef {
        unsigned max;                    /* 0: no definition */
        unsigned mode;                   /* 0600, 0644, 0666 (group bits equal other bits) */
        char owner[FLEET_USER_MAX + 1];
        bool persistent;                 /* made by CREATE (or an older agent), not a join */
        int64_t mod_revision;
} FleetDef;

char *fleet_key(const char *prefix, const char *name, const char *suffix);
json_object *fleet_range_request(const char *key, bool prefix, bool count_only,
                                 int64_t max_create_revision);
json_object *fleet_count_request(const char *prefix, const char *name, bool list);
int64_t fleet_held(json_object *reply, json_object **ret_seats);
int fleet_reply_def(json_object *reply, FleetDef *ret);
json_object *fleet_rank_request(const char *prefix, const char *name, int64_t max_create_revision);
int64_t json_kvs_length(json_object *reply);
int64_t json_int(json_object *o, const char *field);
json_object *json_unwrap_result(json_object *reply);
/* What a definition's read (or a transaction's failure branch that read the same) found:
 * NAME/max's key-value (NULL: absent), the number of seat keys, the whole prefix's range
 * (RET_ALL may be NULL). */
void fleet_read_parts(json_object *reply, json_object **ret_kv, int64_t *ret_seats,
                      json_object **ret_all);
bool fleet_user_name_valid(const char *s);
int fleet_mode_parse(const char *s, unsigned *ret);
int fleet_def_parse(json_object *kv, FleetDef *ret);
char *fleet_def_format(unsigned max, const char *owner, unsigned mode, bool by_join);
json_object *fleet_txn_compare(const char *key, const char *range_end_b64, const char *target,
                               const char *result, const char *field, json_object *value);

#endif
