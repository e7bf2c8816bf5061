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
 *
 * A secured etcd: https endpoints are verified against a CA file, and a client
 * certificate is shown when one is configured (libcurl does the TLS). With a user, the
 * client authenticates (/v3/auth/authenticate) before its first call and sends the token as
 * the Authorization header of every call, watches included. A call that etcd answers
 * "invalid auth token" (tokens expire: etcd's --auth-token-ttl) waits for a new token and
 * goes again: one authentication per expiry, shared by every call that hit it. The
 * caller sees only the call's outcome. Before its first call the client may also check
 * that it can read and write a prefix, so that a role without it is named at once.
 */
#ifndef HCD_ETCD_H
#define HCD_ETCD_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "etcd-codec.h"

typedef struct Etcd Etcd;
typedef struct EtcdCall EtcdCall;

/*
 * The result of a unary call. R is 0 and REPLY the parsed response object (borrowed: valid
 * only during the callback; json_object_get() it to keep it), or R is negative, REPLY is
 * NULL and ERROR a one-line explanation (etcd's own message, or which endpoint could not
 * be reached and why). R:
 *   -EHOSTUNREACH  no endpoint could be reached (connection refused, DNS, reset), or
 *                  etcd cannot be used as configured: TLS failed (etcd's certificate is
 *                  not trusted, ours is refused or missing, a file cannot be read), the
 *                  user's authentication or the prefix check was refused; ERROR names
 *                  which, in one line
 *   -ETIMEDOUT     the deadline passed
 *   -EACCES        etcd refused: authentication or permission (gRPC 7, 16)
 *   -ENOSPC        etcd refused: no space, quota exceeded (gRPC 8)
 *   -ENOENT        etcd says not found (gRPC 5: "requested lease not found")
 *   -EINVAL        etcd says the request is invalid (gRPC 3), or a non-JSON answer
 *   -EIO           any other error answer
 * Each endpoint is tried at most once per call, starting with the one that answered last:
 * -EHOSTUNREACH comes as soon as every endpoint failed to connect or answered
 * "unavailable" (gRPC 14), with ERROR naming each ("cannot reach etcd at URL: Connection
 * refused; at URL2: ..."), and -ETIMEDOUT when the deadline passed first ("etcd at URL did
 * not answer within 3 s"). A connection that breaks before the answer (reset, empty reply)
 * counts as a failure to connect: the request may have been applied, so requests must be
 * safe to repeat (guard transactions with compares).
 * REPLY is the JSON object as etcd sent it: a streaming RPC called once, such as
 * /v3/lease/keepalive, answers {"result": {"ID": ..., "TTL": ...}} (TTL absent, that is
 * 0, when the lease is gone), and an {"error": ...} object in a 200 answer is mapped as
 * above.
 */
typedef void (*etcd_callback_t)(Etcd *e, int r, json_object *reply, const char *error,
                                void *userdata);

/*
 * A watch stream: called once per message the stream delivers (R = 0, MESSAGE the object
 * under "result", borrowed), and exactly once at its end (R < 0 as above, or R = 0 with
 * MESSAGE NULL when the server closed the stream). After the end call the EtcdCall is gone.
 * The first message is {"created": true, ...}. A message with "canceled": true (a
 * compacted start revision: "compact_revision"; or an error, "cancel_reason") means etcd
 * ended the watch but left the stream open: cancel it and watch again. An endpoint that
 * cannot be reached moves the watch to the next one until it is established; a
 * connection lost after that ends it with -EHOSTUNREACH (TCP keepalives notice a dead
 * peer within about 25 s).
 */
typedef void (*etcd_stream_callback_t)(Etcd *e, int r, json_object *message,
                                       const char *error, void *userdata);

typedef struct EtcdConfig {
        /* "http://127.0.0.1:2379[,https://...]" (-EINVAL when malformed or empty) */
        const char *endpoints;
        uint64_t timeout_usec;           /* bounds every unary call, all endpoints included */
        const char *cacert;              /* PEM file of the CAs for https; NULL: the system's */
        const char *cert;                /* PEM file of the client certificate, or NULL */
        const char *key;                 /* its private key; NULL: in CERT's file */
        const char *user;                /* etcd user to authenticate as; NULL: none */
        const char *password;            /* USER's password (copied, never logged) */
        /* When set: before the first call, a transaction that would write the key PREFIX
         * and reads the range under it (its compare never holds, so it writes nothing):
         * a role that lacks the prefix fails every call with a text that says so. */
        const char *check_prefix;
} EtcdConfig;

/* Copies what it needs of CONFIG. -EINVAL for a bad endpoint list or option. */
int etcd_new(sd_event *event, const EtcdConfig *config, Etcd **ret);
Etcd *etcd_free(Etcd *e);       /* cancels every call without calling back; NULL-safe */

/* POSTs REQUEST (borrowed: serialised at once) to PATH ("/v3/kv/range"). CB is called
 * exactly once, never from within etcd_call(). *RET (may be NULL) lets the caller cancel;
 * it is valid until CB returns. On failure (-EINVAL for a bad argument, -ENOMEM) nothing
 * was started and CB is never called. Callbacks run from the event loop (a defer source),
 * never from inside libcurl: they may start and cancel calls and watches, their own
 * included, and even etcd_free() the client. */
int etcd_call(Etcd *e, const char *path, json_object *request, etcd_callback_t cb,
              void *userdata, EtcdCall **ret);

/* Same with its own deadline instead of the default (keepalives: shorter). */
int etcd_call_timeout(Etcd *e, const char *path, json_object *request, uint64_t timeout_usec,
                      etcd_callback_t cb, void *userdata, EtcdCall **ret);

/* Opens a watch: POSTs {"create_request": CREATE_REQUEST} to /v3/watch and streams the
 * answers (chunked, one JSON object each). No deadline; cancel it to stop. */
int etcd_watch(Etcd *e, json_object *create_request, etcd_stream_callback_t cb,
               void *userdata, EtcdCall **ret);

/* Stops a call or watch: its callback is not called again (not even the end call), even
 * when its answer has already arrived. NULL-safe; returns NULL. C must not have ended
 * (after its last callback returned, it is gone). */
EtcdCall *etcd_call_cancel(EtcdCall *c);

/* The endpoint that answered last (or the first), for messages. */
const char *etcd_endpoint(const Etcd *e);

#endif
