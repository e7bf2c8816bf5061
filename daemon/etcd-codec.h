/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What etcd's JSON gateway reads and writes, as pure functions (etcd-codec.c): endpoint
 * lists, base64 keys and values, range ends, error bodies.
 */
#ifndef HCD_ETCD_CODEC_H
#define HCD_ETCD_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

/* 0 when ENDPOINTS is a list that etcd_new() accepts, -EINVAL (or -ENOMEM) when not, and
 * -EPERM when an endpoint carries a user name or password ("user:pass@", refused: a
 * password does not belong on a command line): for the command line, which refuses a
 * malformed list as a usage error (and does not echo one with a password). */
int etcd_endpoints_check(const char *endpoints);

/* Splits a comma-separated list of endpoints ("http[s]://host[:port]", spaces around
 * and a trailing slash allowed) into a malloc()ed array of malloc()ed strings without the
 * slash; -EINVAL when one is malformed or the list is empty, -EPERM when one has an '@'
 * (user information). etcd_new() uses it; the agent
 * may, to check its options early. */
int etcd_endpoints_parse(const char *list, char ***ret, size_t *ret_n);

/* Maps an etcd error answer to a negative errno as etcd_callback_t documents, with its
 * text in *RET_TEXT (borrowed from O) and whether it said "unavailable" (gRPC 14: no
 * leader, or a member on its way down); 1 when O carries no error. */
int etcd_error_from_json(json_object *o, const char **ret_text, bool *ret_unavailable);
/* True when TEXT (an error message, or a watch's cancel_reason) says that the request's
 * token is missing, expired or stale: a new one is due. */
bool etcd_error_needs_token(const char *text);
void etcd_endpoints_free(char **endpoints, size_t n);

/* Base64 of etcd's keys and values: a malloc()ed string; NULL on ENOMEM. */
char *etcd_base64(const void *data, size_t len);
/* Decodes TEXT into a malloc()ed NUL-terminated buffer (*RET_LEN without the NUL);
 * -EINVAL when it is not base64. */
int etcd_unbase64(const char *text, char **ret, size_t *ret_len);

/* The end of the range of every key that starts with PREFIX (etcd's "range_end"), as a
 * malloc()ed base64 string. */
char *etcd_prefix_end_base64(const char *prefix);

#endif
