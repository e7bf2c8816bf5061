/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A client of etcd v3's JSON gateway (the /v3/... paths), driven by the daemon's sd-event
 * loop through libcurl's multi interface. It knows HTTP, JSON and etcd's endpoints and
 * error codes; it knows nothing of seats (that is fleet.c).
 *
 * Every call is a POST of one JSON object. The endpoints are tried in turn: a call that
 * cannot connect to one, or that one answers "unavailable" (no leader, leader changed),
 * goes to the next, until the call's deadline. Integers that etcd sends as strings
 * ("revision": "12") are read with json_object_get_int64(), which accepts both.
 */
#ifndef HCD_ETCD_H
#define HCD_ETCD_H

#include <json-c/json.h>
#include <stdint.h>
#include <systemd/sd-event.h>

typedef struct Etcd Etcd;
typedef struct EtcdCall EtcdCall;

/*
 * The result of a unary call. R is 0 and REPLY the parsed response object (borrowed: valid
 * only during the callback; json_object_get() it to keep it), or R is negative, REPLY is
 * NULL and ERROR a one-line explanation (etcd's own message, or which endpoint could not
 * be reached and why). R:
 *   -EHOSTUNREACH  no endpoint could be reached (connection refused, DNS, reset)
 *   -ETIMEDOUT     the deadline passed
 *   -EACCES        etcd refused: authentication or permission (gRPC 7, 16)
 *   -ENOSPC        etcd refused: no space, quota exceeded (gRPC 8)
 *   -ENOENT        etcd says not found (gRPC 5: "requested lease not found")
 *   -EINVAL        etcd says the request is invalid (gRPC 3), or a non-JSON answer
 *   -EIO           any other error answer
 */
typedef void (*etcd_callback_t)(Etcd *e, int r, json_object *reply, const char *error,
                                void *userdata);

/*
 * A watch stream: called once per message the stream delivers (R = 0, MESSAGE the object
 * under "result", borrowed), and exactly once at its end (R < 0 as above, or R = 0 with
 * MESSAGE NULL when the server closed the stream). After the end call the EtcdCall is gone.
 */
typedef void (*etcd_stream_callback_t)(Etcd *e, int r, json_object *message,
                                       const char *error, void *userdata);

/* ENDPOINTS: "http://127.0.0.1:2379[,http://...]" (-EINVAL when malformed or empty).
 * TIMEOUT_USEC bounds every unary call, all endpoints included. */
int etcd_new(sd_event *event, const char *endpoints, uint64_t timeout_usec, Etcd **ret);
Etcd *etcd_free(Etcd *e);       /* cancels every call without calling back; NULL-safe */

/* POSTs REQUEST (borrowed: serialised at once) to PATH ("/v3/kv/range"). CB is called
 * exactly once, never from within etcd_call(). *RET (may be NULL) lets the caller cancel. */
int etcd_call(Etcd *e, const char *path, json_object *request, etcd_callback_t cb,
              void *userdata, EtcdCall **ret);

/* Same with its own deadline instead of the default (keepalives: shorter). */
int etcd_call_timeout(Etcd *e, const char *path, json_object *request, uint64_t timeout_usec,
                      etcd_callback_t cb, void *userdata, EtcdCall **ret);

/* Opens a watch: POSTs {"create_request": CREATE_REQUEST} to /v3/watch and streams the
 * answers (chunked, one JSON object each). No deadline; cancel it to stop. */
int etcd_watch(Etcd *e, json_object *create_request, etcd_stream_callback_t cb,
               void *userdata, EtcdCall **ret);

/* Stops a call or watch: its callback is not called. NULL-safe; returns NULL. */
EtcdCall *etcd_call_cancel(EtcdCall *c);

/* The endpoint that answered last (or the first), for messages. */
const char *etcd_endpoint(const Etcd *e);

/* Base64 of etcd's keys and values: a malloc()ed string; NULL on ENOMEM. */
char *etcd_base64(const void *data, size_t len);
/* Decodes TEXT into a malloc()ed NUL-terminated buffer (*RET_LEN without the NUL);
 * -EINVAL when it is not base64. */
int etcd_unbase64(const char *text, char **ret, size_t *ret_len);

/* The end of the range of every key that starts with PREFIX (etcd's "range_end"), as a
 * malloc()ed base64 string. */
char *etcd_prefix_end_base64(const char *prefix);

#endif
