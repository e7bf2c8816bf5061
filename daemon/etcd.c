/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The etcd v3 JSON gateway client: libcurl's multi interface inside the daemon's sd-event
 * loop. curl tells us which sockets to watch (on_curl_socket) and when to wake it up
 * (on_curl_timer); we hand every readiness and every expiry back to it with
 * curl_multi_socket_action(), then collect the transfers it finished (collect_done()).
 *
 * Callbacks never run inside libcurl, nor inside etcd_call(): a finished call, and every
 * message of a watch, is queued on the call and handed over from the call's own defer
 * source (on_dispatch). A callback may therefore start, cancel or free anything, the
 * Etcd included. Each call is reference counted: the Etcd holds one reference until the
 * call is detached (finished or cancelled), and on_dispatch holds one while it calls back,
 * so a call cancelled from inside its own callback lives until that callback returns.
 *
 * Failover: a call starts at the endpoint that answered last. A connection failure, or
 * an "unavailable" answer (gRPC 14), moves it on to the next endpoint, each tried once
 * per round within the call's deadline (a new round only while members say they have no
 * leader); each attempt gets the time that is left, and the connection attempt a share
 * of it, so that a black-holed endpoint leaves time for the others.
 *
 * Access: with a user, a call needs a token; with a prefix to check, the check must have
 * passed once. A call that finds access not ready waits (c->waiting) while one internal
 * call at a time (e->auth_call: the authentication, then the check) makes it ready;
 * then every waiting call starts, or every one ends with the failure's text. A call that
 * etcd answers "invalid auth token" forgets the token it carried, unless a newer one came
 * meanwhile, and waits again: one authentication per expiry, whoever hit it. Without a
 * user, once the check has passed, nothing is added to any call.
 */
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "cleanup.h"
#include "etcd.h"
#include "strprintf.h"
#include "time-util.h"

/* The largest unary answer we take (a range over many keys). */
#define ETCD_REPLY_MAX ((size_t) 64 << 20)
/* A watch is idle for as long as nothing changes: TCP keepalives find a dead peer. */
#define ETCD_KEEPIDLE_SEC 10L
#define ETCD_KEEPINTVL_SEC 5L
#define ETCD_KEEPCNT 3
#define ETCD_USER_TIMEOUT_MS 30000
/* The longest token we send back (etcd's simple tokens are ~20 bytes, JWTs a few hundred). */
#define ETCD_TOKEN_MAX 8192
/* Access that etcd refused (a wrong password, a role without the prefix) is not asked
 * again for so long: every call meanwhile fails at once with the same text. */
#define ETCD_REFUSED_USEC (1000 * 1000)
/* A call goes again with a new token at most so many times. */
#define ETCD_REAUTH_MAX 2

typedef struct EtcdSocket EtcdSocket;

/* One socket curl asked us to watch. */
struct EtcdSocket {
        Etcd *etcd;
        curl_socket_t fd;
        sd_event_source *source;
        EtcdSocket *prev, *next;
};

struct Etcd {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;          /* curl's timeout */
        char **endpoints;                /* "http://host:port", no trailing slash */
        size_t n_endpoints;
        size_t current;                  /* answered last: every call starts there */
        uint64_t timeout_usec;
        EtcdCall *calls;                 /* every call not yet detached */
        EtcdSocket *sockets;
        char *cacert, *cert, *key;       /* TLS files, or NULL */
        char *user, *password;           /* NULL: no authentication */
        char *check_prefix;              /* NULL: no check */
        bool checked;                    /* the prefix check passed */
        bool auth_off;                   /* etcd said its authentication is not enabled */
        char *token;                     /* "Authorization: TOKEN"; NULL: none (yet) */
        uint64_t token_gen;              /* counts the tokens */
        EtcdCall *auth_call;          /* the authentication or the check in flight */
        uint64_t refused_until;          /* CLOCK_MONOTONIC: see ETCD_REFUSED_USEC */
        char *refused_text;
};

struct EtcdCall {
        unsigned n_ref;
        Etcd *etcd;                      /* NULL once detached */
        EtcdCall *prev, *next;
        CURL *easy;
        struct curl_slist *headers;
        sd_event_source *dispatch;       /* a defer source: runs the callbacks */
        sd_event_source *again;          /* a timer: the next round over the endpoints */
        bool leaderless;                 /* an endpoint answered "unavailable" this round */
        char *body;                      /* the request, serialised */
        char *path;
        etcd_callback_t cb;              /* unary */
        etcd_stream_callback_t stream_cb;/* watch */
        void *userdata;
        uint64_t timeout_usec;           /* 0: a watch, no deadline */
        uint64_t deadline;               /* CLOCK_MONOTONIC */
        size_t endpoint;                 /* the endpoint of this attempt */
        size_t n_tried;                  /* endpoints that failed this call */
        char *unreachable;               /* why each of them failed */
        char *buf;                       /* the answer (unary, or a watch's error answer) */
        size_t len;
        json_tokener *tok;               /* a watch's stream, across chunks */
        json_object *queue;              /* a watch's messages not yet handed over */
        bool streaming;                  /* the watch is established: failing now ends it */
        bool finished;                   /* r, reply and error are set */
        bool internal;                   /* authentication or check: needs no token */
        bool secret;                     /* the body holds the password */
        bool waiting;                    /* waits for a token or the check */
        bool reauth;                     /* the watch's token was refused: go again */
        bool delivered;                  /* a watch message was queued */
        uint64_t token_gen;              /* of the token this attempt carries */
        unsigned n_reauth;
        int r;
        json_object *reply;
        char *error;
        char errbuf[CURL_ERROR_SIZE];
};

static void call_unref(EtcdCall *c) {
        if (!c || --c->n_ref > 0)
                return;
        if (c->secret && c->body)
                explicit_bzero(c->body, strlen(c->body));
        free(c->body);
        free(c->path);
        free(c->unreachable);
        free(c->buf);
        if (c->tok)
                json_tokener_free(c->tok);
        json_object_put(c->queue);
        json_object_put(c->reply);
        free(c->error);
        free(c);
}

/* Takes C out of its Etcd and out of curl; the caller then drops the Etcd's reference.
 * What a pending callback needs (r, reply, error, the queue) stays until the last one. */
static void call_detach(EtcdCall *c) {
        Etcd *e = c->etcd;

        if (!e)
                return;
        if (c->easy) {
                (void) curl_multi_remove_handle(e->multi, c->easy);
                curl_easy_cleanup(c->easy);
                c->easy = NULL;
        }
        curl_slist_free_all(c->headers);
        c->headers = NULL;
        c->dispatch = sd_event_source_disable_unref(c->dispatch);
        c->again = sd_event_source_disable_unref(c->again);
        if (c->prev)
                c->prev->next = c->next;
        else
                e->calls = c->next;
        if (c->next)
                c->next->prev = c->prev;
        c->etcd = NULL;
}

static void call_finish(EtcdCall *c, int r, json_object *reply, const char *error) {
        if (c->finished) {
                json_object_put(reply);
                return;
        }
        c->finished = true;
        c->r = r;
        c->reply = reply;
        c->error = error ? strdup(error) : NULL;
        (void) sd_event_source_set_enabled(c->dispatch, SD_EVENT_ONESHOT);
}

/* Hands over the queued messages, then the end; outside of curl and of etcd_call(). */
static int on_dispatch(sd_event_source *s, void *userdata) {
        EtcdCall *c = userdata;
        Etcd *e = c->etcd;

        c->n_ref++;                      /* a callback may cancel C */
        if (c->stream_cb && c->queue) {
                size_t n = json_object_array_length(c->queue);

                for (size_t i = 0; i < n && c->etcd; i++)
                        c->stream_cb(e, 0, json_object_array_get_idx(c->queue, i), NULL,
                                     c->userdata);
                if (c->etcd && n > 0)
                        (void) json_object_array_del_idx(c->queue, 0, n);
        }
        if (c->etcd && c->finished) {
                call_detach(c);
                if (c->stream_cb)
                        c->stream_cb(e, c->r, NULL, c->error, c->userdata);
                else
                        c->cb(e, c->r, c->reply, c->error, c->userdata);
                c->n_ref--;              /* the Etcd's reference; ours goes below */
        }
        call_unref(c);
        return 0;
}

/* Notes why the current endpoint failed. */
static void note_unreachable(EtcdCall *c, const char *why) {
        char *s;

        if (asprintf(&s, "%s%s%s: %s", c->unreachable ?: "cannot reach etcd",
                     c->unreachable ? "; at " : " at ", c->etcd->endpoints[c->endpoint], why) < 0)
                return;
        free(c->unreachable);
        c->unreachable = s;
}

static void call_timed_out(EtcdCall *c) {
        char text[256];

        (void) snprintf(text, sizeof text, "etcd at %s did not answer within %g s",
                        c->etcd->endpoints[c->endpoint], (double) c->timeout_usec / 1e6);
        call_finish(c, -ETIMEDOUT, NULL, text);
}

static int call_start(EtcdCall *c);
static void call_reauth(EtcdCall *c, const char *text);

/* Starts an attempt at endpoint c->endpoint. */
static int call_attempt(EtcdCall *c) {
        Etcd *e = c->etcd;
        _cleanup_free_ char *url = NULL;
        long left_ms = 0;

        if (asprintf(&url, "%s%s", e->endpoints[c->endpoint], c->path) < 0)
                return -ENOMEM;
        if (c->timeout_usec > 0) {
                uint64_t now = now_usec();
                size_t untried = e->n_endpoints - c->n_tried;

                if (now >= c->deadline) {
                        call_timed_out(c);
                        return 0;
                }
                left_ms = (long) ((c->deadline - now + 999) / 1000);
                (void) curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, left_ms);
                (void) curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS,
                                        left_ms / (long) untried > 0 ? left_ms / (long) untried : 1L);
        }
        c->len = 0;
        c->errbuf[0] = '\0';
        if (curl_easy_setopt(c->easy, CURLOPT_URL, url) != CURLE_OK)
                return -ENOMEM;
        if (curl_multi_add_handle(e->multi, c->easy) != CURLM_OK)
                return -ENOMEM;
        return 0;
}

static int on_call_again(sd_event_source *es, uint64_t usec, void *userdata) {
        EtcdCall *c = userdata;
        int r;

        c->again = sd_event_source_disable_unref(c->again);
        r = call_attempt(c);
        if (r < 0)
                call_finish(c, r, NULL, strerror(-r));
        return 0;
}

/* The current endpoint failed: the next one, or the end of the call. A cluster whose
 * members answer "unavailable" is electing a leader (a second or two): the endpoints
 * are tried again every ETCD_AGAIN_USEC while the deadline allows. One where none
 * answers at all is down, and the call ends at once. */
#define ETCD_AGAIN_USEC (100 * 1000)
static void call_next(EtcdCall *c, int r_last) {
        Etcd *e = c->etcd;
        int r;

        if (++c->n_tried >= e->n_endpoints) {
                if (c->leaderless && c->timeout_usec > 0 &&
                    now_usec() + 2 * ETCD_AGAIN_USEC < c->deadline &&
                    sd_event_add_time_relative(e->event, &c->again, CLOCK_MONOTONIC,
                                               ETCD_AGAIN_USEC, 0, on_call_again, c) >= 0) {
                        c->n_tried = 0;
                        c->leaderless = false;
                        c->endpoint = (c->endpoint + 1) % e->n_endpoints;
                        return;
                }
                call_finish(c, r_last, NULL, c->unreachable ?: "cannot reach etcd");
                return;
        }
        c->endpoint = (c->endpoint + 1) % e->n_endpoints;
        r = call_attempt(c);
        if (r < 0)
                call_finish(c, r, NULL, strerror(-r));
}

/* A unary answer, or a watch's answer other than 200, is complete in c->buf. */
static void call_answered(EtcdCall *c, long status) {
        Etcd *e = c->etcd;
        json_object *o = json_tokener_parse(c->buf ?: "");
        const char *text = NULL;
        bool unavailable;
        char msg[768];
        int r;

        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                if (c->buf && strstr(c->buf, "CommonName")) {
                        /* the gateway's words when our certificate has a CN and etcd runs
                         * with --client-cert-auth: it would take the CN for the user */
                        (void) snprintf(msg, sizeof msg, "etcd at %s refuses our client "
                                        "certificate: it has a CommonName (CN), which etcd's "
                                        "JSON gateway does not accept with --client-cert-auth; "
                                        "use a certificate without a CN, and an etcd user "
                                        "(--etcd-user) for identity", e->endpoints[c->endpoint]);
                        e->current = c->endpoint;
                        call_finish(c, -EACCES, NULL, msg);
                        return;
                }
                (void) snprintf(msg, sizeof msg, "etcd at %s answered HTTP %ld, not a JSON object",
                                e->endpoints[c->endpoint], status);
                call_finish(c, -EINVAL, NULL, msg);
                return;
        }
        r = etcd_error_from_json(o, &text, &unavailable);
        if (r < 0 && !c->internal && e->user && etcd_error_needs_token(text)) {
                e->current = c->endpoint;
                call_reauth(c, text);
                json_object_put(o);
                return;
        }
        if (r < 0 && unavailable) {
                c->leaderless = true;
                note_unreachable(c, text);
                json_object_put(o);
                call_next(c, -EHOSTUNREACH);
                return;
        }
        e->current = c->endpoint;
        if (r < 0 || status != 200) {
                if (r > 0) {
                        (void) snprintf(msg, sizeof msg, "etcd at %s answered HTTP %ld",
                                        e->endpoints[c->endpoint], status);
                        text = msg;
                        r = -EIO;
                }
                call_finish(c, r, NULL, text);
                json_object_put(o);
                return;
        }
        call_finish(c, 0, o, NULL);
}

/* Whether curl's error text is a TLS alert about our certificate (or its absence). */
static bool alert_about_us(const char *text) {
        return strstr(text, "alert") &&
                (strstr(text, "certificate required") || strstr(text, "bad certificate") ||
                 strstr(text, "unknown ca") || strstr(text, "certificate unknown") ||
                 strstr(text, "unsupported certificate") || strstr(text, "certificate expired") ||
                 strstr(text, "certificate revoked") || strstr(text, "access denied"));
}

/* Why a transfer failed, in words that name the cause: the TLS failures say which file
 * and which option, since the fix is there. */
static const char *failure_text(EtcdCall *c, CURLcode code, long status, long oserr,
                                char *buf, size_t size) {
        Etcd *e = c->etcd;
        const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(code);
        bool https = strncmp(e->endpoints[c->endpoint], "https:", 6) == 0;
        curl_off_t appconnect = 0;
        long connects = 0;

        switch (code) {
        case CURLE_PEER_FAILED_VERIFICATION:
                if (e->cacert)
                        (void) snprintf(buf, size, "its TLS certificate fails verification with "
                                        "the CA in %s (--etcd-cacert): %s", e->cacert, detail);
                else
                        (void) snprintf(buf, size, "its TLS certificate fails verification with "
                                        "this host's CAs (give etcd's CA with --etcd-cacert): %s",
                                        detail);
                return buf;
        case CURLE_SSL_CACERT_BADFILE:
                (void) snprintf(buf, size, "cannot use the CA file %s (--etcd-cacert): %s",
                                e->cacert ?: "(the system's)", detail);
                return buf;
        case CURLE_SSL_CERTPROBLEM:
                (void) snprintf(buf, size, "cannot use the client certificate %s or its key %s "
                                "(--etcd-cert, --etcd-key): %s", e->cert ?: "(none)",
                                e->key ?: e->cert ?: "(none)", detail);
                return buf;
        default:
                break;
        }
        (void) curl_easy_getinfo(c->easy, CURLINFO_APPCONNECT_TIME_T, &appconnect);
        (void) curl_easy_getinfo(c->easy, CURLINFO_NUM_CONNECTS, &connects);
        /* TLS 1.3 checks the client's certificate after the client is done with the
         * handshake: a refusal then arrives as an alert on the first read, or, when etcd
         * has already closed, as a broken connection before any answer on the connection
         * just made (a reused one that breaks is a member going away). */
        if (https && (alert_about_us(detail) ||
                      (appconnect > 0 && connects > 0 && status == 0 &&
                       (code == CURLE_SEND_ERROR || code == CURLE_RECV_ERROR ||
                        code == CURLE_GOT_NOTHING)))) {
                if (e->cert)
                        (void) snprintf(buf, size, "it refused our client certificate %s "
                                        "(is it signed by a CA in etcd's --trusted-ca-file, "
                                        "for client authentication?): %s", e->cert, detail);
                else
                        (void) snprintf(buf, size, "it requires a client certificate (give "
                                        "--etcd-cert and --etcd-key): %s", detail);
                return buf;
        }
        if (code == CURLE_SSL_CONNECT_ERROR) {
                (void) snprintf(buf, size, "TLS handshake failed: %s", detail);
                return buf;
        }
        return oserr > 0 ? strerror((int) oserr) : detail;
}

/* curl finished a transfer of C with CODE. */
static void call_done(EtcdCall *c, CURLcode code) {
        Etcd *e = c->etcd;
        long status = 0, oserr = 0;
        char whybuf[CURL_ERROR_SIZE + 512];
        const char *why;

        (void) curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
        (void) curl_easy_getinfo(c->easy, CURLINFO_OS_ERRNO, &oserr);
        (void) curl_multi_remove_handle(e->multi, c->easy);
        if (c->reauth) {                 /* the write callback stopped it for a new token */
                c->reauth = false;
                e->current = c->endpoint;
                call_reauth(c, "invalid auth token");
                return;
        }
        if (c->finished)                 /* the write callback ended it */
                return;
        if (code == CURLE_OK) {
                if (c->stream_cb && status == 200) {
                        e->current = c->endpoint;
                        call_finish(c, 0, NULL, NULL);     /* the server ended the watch */
                } else
                        call_answered(c, status);
                return;
        }
        why = failure_text(c, code, status, oserr, whybuf, sizeof whybuf);
        if (c->stream_cb && c->streaming) {
                char text[sizeof whybuf + 256];

                (void) snprintf(text, sizeof text, "lost the watch on etcd at %s: %s",
                                e->endpoints[c->endpoint], why);
                call_finish(c, -EHOSTUNREACH, NULL, text);
                return;
        }
        if (c->timeout_usec > 0 && now_usec() >= c->deadline) {
                call_timed_out(c);
                return;
        }
        note_unreachable(c, code == CURLE_OPERATION_TIMEDOUT ? "connection timed out" : why);
        call_next(c, -EHOSTUNREACH);
}

static void collect_done(Etcd *e) {
        CURLMsg *m;
        int left;

        while ((m = curl_multi_info_read(e->multi, &left))) {
                EtcdCall *c = NULL;

                if (m->msg != CURLMSG_DONE)
                        continue;
                if (curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &c) == CURLE_OK && c)
                        call_done(c, m->data.result);
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Etcd *e = userdata;
        int running, action = (revents & (EPOLLIN | EPOLLHUP) ? CURL_CSELECT_IN : 0) |
                              (revents & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                              (revents & EPOLLERR ? CURL_CSELECT_ERR : 0);

        (void) curl_multi_socket_action(e->multi, fd, action, &running);
        collect_done(e);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Etcd *e = userdata;
        int running;

        (void) curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        collect_done(e);
        return 0;
}

static void socket_free(EtcdSocket *k) {
        Etcd *e = k->etcd;

        sd_event_source_disable_unref(k->source);
        if (k->prev)
                k->prev->next = k->next;
        else
                e->sockets = k->next;
        if (k->next)
                k->next->prev = k->prev;
        free(k);
}

/* curl's CURLMOPT_SOCKETFUNCTION: watch FD for WHAT, or no longer. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userdata, void *socketp) {
        Etcd *e = userdata;
        EtcdSocket *k = socketp;
        uint32_t events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);

        if (what == CURL_POLL_REMOVE) {
                if (k) {
                        (void) curl_multi_assign(e->multi, fd, NULL);
                        socket_free(k);
                }
                return 0;
        }
        if (k)
                return sd_event_source_set_io_events(k->source, events) < 0 ? -1 : 0;
        k = calloc(1, sizeof *k);
        if (!k)
                return -1;
        if (sd_event_add_io(e->event, &k->source, fd, events, on_io, e) < 0) {
                free(k);
                return -1;
        }
        k->etcd = e;
        k->fd = fd;
        k->next = e->sockets;
        if (k->next)
                k->next->prev = k;
        e->sockets = k;
        (void) curl_multi_assign(e->multi, fd, k);
        return 0;
}

/* curl's CURLMOPT_TIMERFUNCTION: wake it up in TIMEOUT_MS (-1: never). It must not be
 * called back from in here, so even 0 goes through the loop. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userdata) {
        Etcd *e = userdata;
        uint64_t when;

        if (timeout_ms < 0)
                return sd_event_source_set_enabled(e->timer, SD_EVENT_OFF) < 0 ? -1 : 0;
        when = now_usec() + (uint64_t) timeout_ms * 1000;
        return sd_event_source_set_time(e->timer, when) < 0 ||
               sd_event_source_set_enabled(e->timer, SD_EVENT_ONESHOT) < 0 ? -1 : 0;
}

/* A unary answer, or a watch's error answer: kept whole. */
static bool buffer_append(EtcdCall *c, const char *p, size_t n) {
        char *b;

        if (c->len + n > ETCD_REPLY_MAX)
                return false;
        b = realloc(c->buf, c->len + n + 1);
        if (!b)
                return false;
        memcpy(b + c->len, p, n);
        c->len += n;
        b[c->len] = '\0';
        c->buf = b;
        return true;
}

/* One message of a watch. */
static bool stream_message(EtcdCall *c, json_object *o) {
        json_object *result;
        const char *text = NULL;
        bool unavailable;
        int r;

        if (json_object_object_get_ex(o, "result", &result) &&
            json_object_is_type(result, json_type_object)) {
                json_object *canceled = NULL, *reason = NULL;

                /* A watch whose token etcd refused is created and canceled at once: it
                 * goes again with a new token, and the caller never hears of it. */
                if (!c->delivered && c->etcd->user &&
                    json_object_object_get_ex(result, "canceled", &canceled) &&
                    json_object_get_boolean(canceled) &&
                    json_object_object_get_ex(result, "cancel_reason", &reason) &&
                    etcd_error_needs_token(json_object_get_string(reason))) {
                        c->reauth = true;
                        return false;
                }
                if (!c->queue && !(c->queue = json_object_new_array()))
                        return false;
                c->delivered = true;
                (void) json_object_array_add(c->queue, json_object_get(result));
                (void) sd_event_source_set_enabled(c->dispatch, SD_EVENT_ONESHOT);
                return true;
        }
        r = etcd_error_from_json(o, &text, &unavailable);
        if (r > 0)
                call_finish(c, -EINVAL, NULL, "etcd sent a watch message without a result");
        else
                call_finish(c, r, NULL, text);
        return false;
}

/* Splits a watch's stream into its JSON objects, across chunks. */
static bool stream_feed(EtcdCall *c, const char *p, size_t n) {
        while (n > 0) {
                json_object *o;
                size_t used;
                bool ok;

                o = json_tokener_parse_ex(c->tok, p, (int) (n > INT32_MAX ? INT32_MAX : n));
                if (json_tokener_get_error(c->tok) == json_tokener_continue)
                        return true;
#if JSON_C_VERSION_NUM >= ((0 << 16) | (15 << 8))
                used = json_tokener_get_parse_end(c->tok);
#else
                used = (size_t) c->tok->char_offset;
#endif
                if (!o) {
                        call_finish(c, -EINVAL, NULL, "etcd sent a watch message that is not JSON");
                        return false;
                }
                ok = stream_message(c, o);
                json_object_put(o);
                if (!ok)
                        return false;
                json_tokener_reset(c->tok);
                p += used;
                n -= used;
        }
        return true;
}

static size_t on_curl_write(char *p, size_t size, size_t nmemb, void *userdata) {
        EtcdCall *c = userdata;
        size_t n = size * nmemb;
        long status = 0;

        if (c->finished)
                return 0;
        if (c->stream_cb) {
                (void) curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
                if (status == 200) {
                        c->streaming = true;
                        c->etcd->current = c->endpoint;
                        return stream_feed(c, p, n) ? n : 0;
                }
        }
        if (!buffer_append(c, p, n)) {
                call_finish(c, -EIO, NULL, "etcd's answer is too large");
                return 0;
        }
        return n;
}

/* TCP keepalive probes stop after ETCD_KEEPCNT (curl sets the idle time and interval),
 * and unacknowledged data fails the connection after ETCD_USER_TIMEOUT_MS. */
static int on_curl_sockopt(void *userdata, curl_socket_t fd, curlsocktype purpose) {
        int cnt = ETCD_KEEPCNT, timeout = ETCD_USER_TIMEOUT_MS;

        if (purpose == CURLSOCKTYPE_IPCXN) {
                (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
                (void) setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof timeout);
        }
        return CURL_SOCKOPT_OK;
}

/* The request headers: JSON, no "Expect: 100-continue", and the token when there is one. */
static struct curl_slist *headers_new(const char *token) {
        struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json"), *n;

        if (!h)
                return NULL;
        n = curl_slist_append(h, "Expect:");
        if (n && token)
                n = curl_slist_append(h, token);
        if (!n) {
                curl_slist_free_all(h);
                return NULL;
        }
        return h;
}

static int auth_begin(Etcd *e);

static bool auth_ready(const Etcd *e) {
        return (!e->user || e->token || e->auth_off) && (!e->check_prefix || e->checked);
}

/* A call that waited for access longer than its deadline. */
static int on_wait_expired(sd_event_source *es, uint64_t usec, void *userdata) {
        EtcdCall *c = userdata;
        char text[256];

        c->again = sd_event_source_disable_unref(c->again);
        c->waiting = false;
        (void) snprintf(text, sizeof text, "etcd at %s did not answer within %g s "
                        "(authentication or the prefix check still in progress)",
                        c->etcd->endpoints[c->endpoint], (double) c->timeout_usec / 1e6);
        call_finish(c, -ETIMEDOUT, NULL, text);
        return 0;
}

/* Starts C when access is ready (with the token), else queues it until it is. */
static int call_start(EtcdCall *c) {
        Etcd *e = c->etcd;
        struct curl_slist *h;
        int r;

        if (!c->internal && !auth_ready(e)) {
                if (e->refused_until > 0 && now_usec() < e->refused_until) {
                        call_finish(c, -EHOSTUNREACH, NULL, e->refused_text);
                        return 0;
                }
                if (c->timeout_usec > 0 && !c->again) {
                        r = sd_event_add_time(e->event, &c->again, CLOCK_MONOTONIC, c->deadline,
                                              0, on_wait_expired, c);
                        if (r < 0)
                                return r;
                }
                c->waiting = true;
                return auth_begin(e);
        }
        c->waiting = false;
        c->again = sd_event_source_disable_unref(c->again);
        h = headers_new(e->token);
        if (!h)
                return -ENOMEM;
        curl_slist_free_all(c->headers);
        c->headers = h;
        (void) curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers);
        c->token_gen = e->token_gen;
        return call_attempt(c);
}

/* etcd refused C's token (expired, or none when one is now needed): the token goes,
 * unless a newer one came since C left, and C waits for the next one. */
static void call_reauth(EtcdCall *c, const char *text) {
        Etcd *e = c->etcd;
        int r;

        if (c->n_reauth++ >= ETCD_REAUTH_MAX) {
                call_finish(c, -EACCES, NULL, text);
                return;
        }
        if (c->token_gen == e->token_gen) {
                free(e->token);
                e->token = NULL;
                e->auth_off = false;
        }
        c->len = 0;
        c->streaming = false;
        c->n_tried = 0;
        c->leaderless = false;
        if (c->tok)
                json_tokener_reset(c->tok);
        r = call_start(c);
        if (r < 0)
                call_finish(c, r, NULL, strerror(-r));
}

static int call_new(Etcd *e, const char *path, json_object *request, uint64_t timeout_usec,
                    etcd_callback_t cb, etcd_stream_callback_t stream_cb, void *userdata,
                    bool internal, EtcdCall **ret) {
        EtcdCall *c;
        const char *body;
        int r;

        if (!e || !path || path[0] != '/' || !request || (!cb && !stream_cb))
                return -EINVAL;
        body = json_object_to_json_string_ext(request, JSON_C_TO_STRING_PLAIN);
        if (!body)
                return -ENOMEM;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        *c = (EtcdCall) {
                .n_ref = 1, .etcd = e, .next = e->calls, .cb = cb, .stream_cb = stream_cb,
                .userdata = userdata, .timeout_usec = timeout_usec, .endpoint = e->current,
                .deadline = timeout_usec > 0 ? now_usec() + timeout_usec : 0,
                .body = strdup(body), .path = strdup(path), .easy = curl_easy_init(),
                .internal = internal,
        };
        if (c->next)
                c->next->prev = c;
        e->calls = c;
        if (!c->body || !c->path || !c->easy ||
            (stream_cb && !(c->tok = json_tokener_new()))) {
                r = -ENOMEM;
                goto fail;
        }
        r = sd_event_add_defer(e->event, &c->dispatch, on_dispatch, c);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(c->dispatch, SD_EVENT_OFF);

        /* Setting these options fails only for options this libcurl lacks. */
        (void) curl_easy_setopt(c->easy, CURLOPT_PRIVATE, (char *) c);
        (void) curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
        (void) curl_easy_setopt(c->easy, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
        (void) curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
        (void) curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(c->body));
        (void) curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_curl_write);
        (void) curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
        (void) curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->errbuf);
        (void) curl_easy_setopt(c->easy, CURLOPT_TCP_KEEPALIVE, 1L);
        (void) curl_easy_setopt(c->easy, CURLOPT_TCP_KEEPIDLE, ETCD_KEEPIDLE_SEC);
        (void) curl_easy_setopt(c->easy, CURLOPT_TCP_KEEPINTVL, ETCD_KEEPINTVL_SEC);
        (void) curl_easy_setopt(c->easy, CURLOPT_SOCKOPTFUNCTION, on_curl_sockopt);
        if (stream_cb)                   /* no deadline, but connecting has one */
                (void) curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS,
                                        (long) (e->timeout_usec / 1000 ?: 1));
        if (e->cacert)
                (void) curl_easy_setopt(c->easy, CURLOPT_CAINFO, e->cacert);
        if (e->cert)
                (void) curl_easy_setopt(c->easy, CURLOPT_SSLCERT, e->cert);
        if (e->key)
                (void) curl_easy_setopt(c->easy, CURLOPT_SSLKEY, e->key);
        r = call_start(c);
        if (r < 0)
                goto fail;
        if (ret)
                *ret = c;
        return 0;
fail:
        call_detach(c);
        call_unref(c);
        return r;
}

/* Access failed: every call that waits for it ends with TEXT. A refusal (etcd
 * answered) holds for ETCD_REFUSED_USEC; failing to reach etcd does not. */
static void auth_fail(Etcd *e, int r, const char *text) {
        bool refused = r != -EHOSTUNREACH && r != -ETIMEDOUT;

        free(e->refused_text);
        e->refused_text = strdup(text);
        e->refused_until = refused && e->refused_text ? now_usec() + ETCD_REFUSED_USEC : 0;
        /* ERR EHOSTUNREACH for the caller: this etcd cannot be used as configured */
        if (r != -ETIMEDOUT)
                r = -EHOSTUNREACH;
        for (EtcdCall *c = e->calls; c; c = c->next)
                if (c->waiting) {
                        c->waiting = false;
                        c->again = sd_event_source_disable_unref(c->again);
                        call_finish(c, r, NULL, text);
                }
}

/* The next step towards access, or, when it is ready, every waiting call starts. */
static void auth_next(Etcd *e) {
        int r;

        if (!auth_ready(e)) {
                r = auth_begin(e);
                if (r < 0)
                        auth_fail(e, r, strerror(-r));
                return;
        }
        e->refused_until = 0;
        for (EtcdCall *c = e->calls; c; c = c->next)
                if (c->waiting) {
                        r = call_start(c);
                        if (r < 0)
                                call_finish(c, r, NULL, strerror(-r));
                }
}

/* "etcd at URL TEXT" (TEXT starts with a verb), or TEXT when it names an endpoint already
 * ("cannot reach etcd at URL: ..."). */
static char *auth_text(Etcd *e, const char *text) {
        char *t;

        for (size_t i = 0; i < e->n_endpoints; i++)
                if (strstr(text, e->endpoints[i]))
                        return strdup(text);
        return asprintf(&t, "etcd at %s %s", e->endpoints[e->current], text) < 0 ? NULL : t;
}

static void on_authenticated(Etcd *e, int r, json_object *reply, const char *error,
                             void *userdata) {
        char *text = NULL, *t = NULL;   /* freed by hand: the analyzer does not follow
                                         * a cleanup attribute through auth_text() */
        json_object *o = NULL;
        const char *token;
        size_t n;

        e->auth_call = NULL;
        if (r < 0 && error && strstr(error, "authentication is not enabled")) {
                /* users before 'etcdctl auth enable': go on without a token; the first
                 * call refused for want of one asks again */
                e->auth_off = true;
                auth_next(e);
                return;
        }
        if (r < 0) {
                if (error && strstr(error, "authentication failed"))
                        t = strprintf("refused user '%s': wrong user name or password "
                                      "(%s)", e->user, error);
                else if (r == -EHOSTUNREACH || r == -ETIMEDOUT || !error)
                        t = strdup(error ?: strerror(-r));      /* says why it was not heard */
                else
                        t = strprintf("did not authenticate user '%s': %s", e->user, error);
                text = t ? auth_text(e, t) : NULL;
                free(t);
                auth_fail(e, r == -EHOSTUNREACH || r == -ETIMEDOUT ? r : -EACCES,
                             text ?: "cannot authenticate with etcd");
                free(text);
                return;
        }
        token = json_object_object_get_ex(reply, "token", &o) ? json_object_get_string(o) : NULL;
        n = token ? strlen(token) : 0;
        /* it goes back in a header: printable ASCII without spaces, and bounded */
        if (n == 0 || n > ETCD_TOKEN_MAX || strspn(token, "!\"#$%&'()*+,-./0123456789:;<=>?@"
                                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
                                                    "abcdefghijklmnopqrstuvwxyz{|}~") != n) {
                text = auth_text(e, "answered no usable token to the authentication");
                auth_fail(e, -EIO, text ?: "etcd answered no usable token");
                free(text);
                return;
        }
        free(e->token);
        if (asprintf(&e->token, "Authorization: %s", token) < 0) {
                e->token = NULL;
                auth_fail(e, -ENOMEM, strerror(ENOMEM));
                return;
        }
        e->token_gen++;
        auth_next(e);
}

static void on_checked(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        char *text, *t = NULL;          /* freed by hand, as in on_authenticated() */

        e->auth_call = NULL;
        if (r >= 0) {
                e->checked = true;
                auth_next(e);
                return;
        }
        if (e->user && etcd_error_needs_token(error)) {
                /* the token expired between the authentication and the check */
                free(e->token);
                e->token = NULL;
                e->auth_off = false;
                auth_next(e);
                return;
        }
        if (etcd_error_needs_token(error))
                t = strprintf("requires authentication (%s): give the agent an etcd user "
                              "(--etcd-user) and its password", error);
        else if (r == -EACCES && e->user && !strstr(error ?: "", "CommonName"))
                t = strprintf("says user '%s' may not read and write the keys under '%s' "
                              "(%s): grant its role readwrite on that prefix (etcdctl role "
                              "grant-permission ROLE --prefix=true readwrite %s)", e->user,
                              e->check_prefix, error ? error : strerror(-r), e->check_prefix);
        else if (r == -EACCES && !strstr(error ?: "", "CommonName"))
                t = strprintf("refuses reads and writes of the keys under '%s' (%s)",
                              e->check_prefix, error ? error : strerror(-r));
        else if (r == -EHOSTUNREACH || r == -ETIMEDOUT || strstr(error ?: "", "CommonName"))
                t = strdup(error ?: strerror(-r));
        else
                t = strprintf("failed the check of the keys under '%s': %s",
                              e->check_prefix, error ? error : strerror(-r));
        text = t ? auth_text(e, t) : NULL;
        free(t);
        auth_fail(e, r, text ?: error ?: strerror(-r));
        free(text);
}

/* A transaction that writes nothing: its compare (a version below 0) never holds, so the
 * put is only checked for permission and the range runs. */
static json_object *check_request(const char *prefix) {
        _cleanup_free_ char *key = etcd_base64(prefix, strlen(prefix));
        _cleanup_free_ char *end = etcd_prefix_end_base64(prefix);
        json_object *req, *cmp, *put, *range, *a;

        if (!key || !end)
                return NULL;
        req = json_object_new_object();
        if (!req)
                return NULL;
        cmp = json_object_new_object();
        json_object_object_add(cmp, "key", json_object_new_string(key));
        json_object_object_add(cmp, "target", json_object_new_string("VERSION"));
        json_object_object_add(cmp, "result", json_object_new_string("LESS"));
        json_object_object_add(cmp, "version", json_object_new_int64(0));
        a = json_object_new_array();
        json_object_array_add(a, cmp);
        json_object_object_add(req, "compare", a);
        put = json_object_new_object();
        json_object_object_add(put, "key", json_object_new_string(key));
        json_object_object_add(put, "value", json_object_new_string(""));
        a = json_object_new_object();
        json_object_object_add(a, "request_put", put);
        put = a;
        a = json_object_new_array();
        json_object_array_add(a, put);
        json_object_object_add(req, "success", a);
        range = json_object_new_object();
        json_object_object_add(range, "key", json_object_new_string(key));
        json_object_object_add(range, "range_end", json_object_new_string(end));
        json_object_object_add(range, "limit", json_object_new_int64(1));
        json_object_object_add(range, "keys_only", json_object_new_boolean(true));
        a = json_object_new_object();
        json_object_object_add(a, "request_range", range);
        range = a;
        a = json_object_new_array();
        json_object_array_add(a, range);
        json_object_object_add(req, "failure", a);
        return req;
}

/* Starts the next step towards access unless one is in flight. */
static int auth_begin(Etcd *e) {
        json_object *req;
        int r;

        if (e->auth_call)
                return 0;
        if (e->user && !e->token && !e->auth_off) {
                req = json_object_new_object();
                if (!req)
                        return -ENOMEM;
                json_object_object_add(req, "name", json_object_new_string(e->user));
                json_object_object_add(req, "password", json_object_new_string(e->password));
                r = call_new(e, "/v3/auth/authenticate", req, e->timeout_usec, on_authenticated,
                             NULL, NULL, true, &e->auth_call);
                if (r >= 0)
                        e->auth_call->secret = true;
        } else if (e->check_prefix && !e->checked) {
                req = check_request(e->check_prefix);
                if (!req)
                        return -ENOMEM;
                r = call_new(e, "/v3/kv/txn", req, e->timeout_usec, on_checked, NULL, NULL,
                             true, &e->auth_call);
        } else
                return 0;
        json_object_put(req);
        if (r < 0)
                e->auth_call = NULL;
        return r;
}

int etcd_call_timeout(Etcd *e, const char *path, json_object *request, uint64_t timeout_usec,
                      etcd_callback_t cb, void *userdata, EtcdCall **ret) {
        if (!cb || timeout_usec == 0)
                return -EINVAL;
        return call_new(e, path, request, timeout_usec, cb, NULL, userdata, false, ret);
}

int etcd_call(Etcd *e, const char *path, json_object *request, etcd_callback_t cb,
              void *userdata, EtcdCall **ret) {
        if (!e)
                return -EINVAL;
        return etcd_call_timeout(e, path, request, e->timeout_usec, cb, userdata, ret);
}

int etcd_watch(Etcd *e, json_object *create_request, etcd_stream_callback_t cb,
               void *userdata, EtcdCall **ret) {
        json_object *o;
        int r;

        if (!e || !create_request || !cb)
                return -EINVAL;
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        (void) json_object_object_add(o, "create_request", json_object_get(create_request));
        r = call_new(e, "/v3/watch", o, 0, NULL, cb, userdata, false, ret);
        json_object_put(o);
        return r;
}

EtcdCall *etcd_call_cancel(EtcdCall *c) {
        if (c && c->etcd) {
                call_detach(c);
                call_unref(c);
        }
        return NULL;
}

const char *etcd_endpoint(const Etcd *e) {
        return e ? e->endpoints[e->current] : NULL;
}

/* *DST = a copy of SRC (NULL stays NULL); false on ENOMEM. */
static bool copy_option(char **dst, const char *src) {
        *dst = src ? strdup(src) : NULL;
        return !src || *dst;
}

int etcd_new(sd_event *event, const EtcdConfig *config, Etcd **ret) {
        Etcd *e;
        int r;

        if (!event || !config || !config->endpoints || config->timeout_usec == 0 || !ret ||
            (config->user && (!config->user[0] || !config->password)) ||
            (config->key && !config->cert))
                return -EINVAL;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return -EIO;
        e = calloc(1, sizeof *e);
        if (!e) {
                curl_global_cleanup();
                return -ENOMEM;
        }
        e->event = sd_event_ref(event);
        e->timeout_usec = config->timeout_usec;
        if (!copy_option(&e->cacert, config->cacert) || !copy_option(&e->cert, config->cert) ||
            !copy_option(&e->key, config->key) || !copy_option(&e->user, config->user) ||
            !copy_option(&e->password, config->user ? config->password : NULL) ||
            !copy_option(&e->check_prefix, config->check_prefix)) {
                r = -ENOMEM;
                goto fail;
        }
        r = etcd_endpoints_parse(config->endpoints, &e->endpoints, &e->n_endpoints);
        if (r < 0)
                goto fail;
        r = sd_event_add_time(event, &e->timer, CLOCK_MONOTONIC, 0, 1, on_timer, e);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(e->timer, SD_EVENT_OFF);
        e->multi = curl_multi_init();
        if (!e->multi ||
            curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
            curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e) != CURLM_OK ||
            curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e) != CURLM_OK) {
                r = -ENOMEM;
                goto fail;
        }
        *ret = e;
        return 0;
fail:
        etcd_free(e);
        return r;
}

Etcd *etcd_free(Etcd *e) {
        if (!e)
                return NULL;
        for (EtcdCall *c = e->calls, *next; c; c = next) {
                next = c->next;
                call_detach(c);
                call_unref(c);
        }
        if (e->multi)
                (void) curl_multi_cleanup(e->multi);
        for (EtcdSocket *k = e->sockets, *next; k; k = next) {
                next = k->next;
                socket_free(k);
        }
        sd_event_source_disable_unref(e->timer);
        etcd_endpoints_free(e->endpoints, e->n_endpoints);
        if (e->password)
                explicit_bzero(e->password, strlen(e->password));
        free(e->password);
        free(e->user);
        free(e->cacert);
        free(e->cert);
        free(e->key);
        free(e->check_prefix);
        free(e->token);
        free(e->refused_text);
        sd_event_unref(e->event);
        free(e);
        curl_global_cleanup();
        return NULL;
}
