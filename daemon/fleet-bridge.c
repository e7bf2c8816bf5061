/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fleet thread and the bridge to it: see fleet-bridge.h. The fleet thread runs the
 * whole agent (fleet.c and its modules) in an sd-event loop of its own; only this file
 * knows both threads.
 *
 * Rules that keep the two apart:
 *  - Fleet, Etcd (libcurl) and the agent's socket are used by the fleet thread only; the
 *    Manager and every sd-bus object by the main thread only. A D-Bus call's message stays
 *    in the main thread: the fleet thread sees an id and a name, and answers with numbers
 *    and text that the main thread turns into the reply.
 *  - Everything the threads share is a field below marked "lock".
 *  - Each side drains its queue after reading its eventfd, so that no wake-up is lost: a
 *    message queued after the drain writes the eventfd again.
 * log.c is the one module both threads use directly: its state is set before the thread
 * starts and only read after, and each line is written whole (one sd_journal_send() or
 * one fprintf() on stderr, which stdio locks).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cleanup.h"
#include "fleet-bridge.h"
#include "fleet.h"
#include "fleet-proto.h"
#include "log.h"

typedef enum MsgType {
        /* to the fleet thread */
        MSG_BUS_COUNT,
        MSG_BUS_NAMES,
        /* to the main thread */
        MSG_COUNT_CHANGED,
        MSG_ANSWER,
        MSG_NAMES,
        MSG_EXITED,
} MsgType;

typedef struct BridgeMsg {
        MsgType type;
        uint64_t id;                     /* a D-Bus call's */
        uid_t uid;                       /* MSG_BUS_*: the caller's euid, (uid_t) -1 unknown */
        int error;                       /* MSG_ANSWER, MSG_NAMES: 0 or a positive errno */
        unsigned count;                  /* MSG_ANSWER, MSG_COUNT_CHANGED; MSG_EXITED: exit code */
        char *text;                      /* a name, or an error's text */
        FleetNameList *names;            /* MSG_NAMES */
        struct BridgeMsg *next;
} BridgeMsg;

/* A D-Bus call the fleet thread works on (main thread only). */
typedef struct PendingCall {
        uint64_t id;
        sd_bus_message *msg;
        struct PendingCall *next;
} PendingCall;

/* Who may touch each field: "set" (before the thread starts; read-only after), "lock"
 * (under lock), "main" (the main thread only), "fleet" (the fleet thread only). */
struct FleetBridge {
        FleetConfig config;                      /* set */
        char *dir;                               /* set */
        pthread_mutex_t lock;
        pthread_cond_t cond;                     /* signals "started" */
        BridgeMsg *to_fleet, **to_fleet_tail;    /* lock */
        BridgeMsg *to_main, **to_main_tail;      /* lock */
        sd_event *main_event;                    /* main: the main thread's loop */
        FleetBridgeHooks hooks;                  /* main */
        pthread_t thread;                        /* main */
        sd_event_source *main_source;            /* main */
        PendingCall *calls;                      /* main: D-Bus calls not answered yet */
        uint64_t next_id;                        /* main */
        sd_event *event;                         /* fleet: its own loop */
        sd_event_source *fleet_source;           /* fleet */
        Fleet *fleet;                            /* fleet */
        FleetHealth posted;                      /* lock: as the fleet thread last said it */
        FleetHealth health;                      /* main: as the main thread last heard it */
        int fleet_wake_fd;                       /* set: eventfd, wakes the fleet loop */
        int main_wake_fd;                        /* set: eventfd, wakes the main loop */
        int start_result;                        /* lock */
        int exit_code;                           /* main */
        bool started;                            /* lock: the thread's start-up is over */
        bool stop_asked;                         /* lock: a flag, not a message: it cannot fail */
        bool posted_changed;                     /* lock */
        bool joinable;                           /* main */
        bool ever_held;                          /* main */
        bool stop_sent;                          /* main */
        bool stopping;                           /* fleet: the stop was begun */
};

static void wake(int fd) {
        uint64_t one = 1;

        /* only a full counter can refuse, and then the reader is woken anyway */
        (void) !write(fd, &one, sizeof one);
}

static void drain(int fd) {
        uint64_t v;

        (void) !read(fd, &v, sizeof v);
}

static void msg_free_list(BridgeMsg *m) {
        while (m) {
                BridgeMsg *next = m->next;

                free(m->text);
                fleet_name_list_free(m->names);
                free(m);
                m = next;
        }
}

static BridgeMsg *msg_new(MsgType type, uint64_t id, const char *text) {
        BridgeMsg *m = calloc(1, sizeof *m);

        if (!m)
                return NULL;
        m->type = type;
        m->id = id;
        if (text && !(m->text = strdup(text))) {
                free(m);
                return NULL;
        }
        return m;
}

/* Queues M for the fleet thread (TO_FLEET) or the main thread, and wakes it. */
static void msg_post(FleetBridge *b, BridgeMsg *m, bool to_fleet) {
        (void) pthread_mutex_lock(&b->lock);
        if (to_fleet) {
                *b->to_fleet_tail = m;
                b->to_fleet_tail = &m->next;
        } else {
                *b->to_main_tail = m;
                b->to_main_tail = &m->next;
        }
        (void) pthread_mutex_unlock(&b->lock);
        wake(to_fleet ? b->fleet_wake_fd : b->main_wake_fd);
}

/* ---- The fleet thread ---- */

static void post_health(void *userdata, FleetState state, const char *text,
                        unsigned seats_held) {
        FleetBridge *b = userdata;
        bool changed;

        (void) pthread_mutex_lock(&b->lock);
        changed = b->posted.state != state || b->posted.seats_held != seats_held ||
                strncmp(b->posted.text, text, sizeof b->posted.text - 1) != 0;
        if (changed) {
                b->posted.state = state;
                b->posted.seats_held = seats_held;
                (void) snprintf(b->posted.text, sizeof b->posted.text, "%s", text);
                b->posted_changed = true;
        }
        (void) pthread_mutex_unlock(&b->lock);
        if (changed)
                wake(b->main_wake_fd);
}

static void post_count(void *userdata, const char *name, unsigned count) {
        FleetBridge *b = userdata;
        BridgeMsg *m = msg_new(MSG_COUNT_CHANGED, 0, name);

        if (!m) {
                log_oom();
                return;
        }
        m->count = count;
        msg_post(b, m, false);
}

static void post_answer(void *userdata, uint64_t id, int error, const char *text,
                        unsigned count) {
        FleetBridge *b = userdata;
        BridgeMsg *m = msg_new(MSG_ANSWER, id, error ? (text ? text : strerror(error)) : NULL);

        if (!m) {
                /* the call is answered when the daemon stops, if not before */
                log_oom();
                return;
        }
        m->error = error;
        m->count = count;
        msg_post(b, m, false);
}

static void post_names(void *userdata, uint64_t id, FleetNameList *names) {
        FleetBridge *b = userdata;
        BridgeMsg *m = msg_new(MSG_NAMES, id, NULL);

        if (!m) {
                fleet_name_list_free(names);
                post_answer(b, id, ENOMEM, "out of memory", 0);
                return;
        }
        m->names = names;
        msg_post(b, m, false);
}

static int on_fleet_wake(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        FleetBridge *b = userdata;
        BridgeMsg *list;
        bool stop;

        drain(fd);
        (void) pthread_mutex_lock(&b->lock);
        list = b->to_fleet;
        b->to_fleet = NULL;
        b->to_fleet_tail = &b->to_fleet;
        stop = b->stop_asked;
        (void) pthread_mutex_unlock(&b->lock);

        for (BridgeMsg *m = list; m; m = m->next) {
                int r;

                switch (m->type) {
                case MSG_BUS_COUNT:
                case MSG_BUS_NAMES:
                        r = m->type == MSG_BUS_COUNT ?
                                fleet_bus_count(b->fleet, m->id, m->uid, m->text) :
                                fleet_bus_names(b->fleet, m->id, m->uid);
                        if (r < 0)
                                post_answer(b, m->id, -r, NULL, 0);
                        break;
                default:
                        break;
                }
        }
        msg_free_list(list);
        /* once: the loop ends when the lease is revoked (a second at most) */
        if (stop && !b->stopping) {
                b->stopping = true;
                if (fleet_stop(b->fleet, 0) == 0)
                        (void) sd_event_exit(b->event, 0);
        }
        return 0;
}

static void *fleet_thread(void *userdata) {
        FleetBridge *b = userdata;
        BridgeMsg *exited;
        int r;

        /* /proc/PID/task/TID/comm tells this thread from the main one */
        (void) pthread_setname_np(pthread_self(), FLEET_THREAD_NAME);
        r = sd_event_new(&b->event);
        if (r >= 0)
                r = sd_event_add_io(b->event, &b->fleet_source, b->fleet_wake_fd, EPOLLIN,
                                    on_fleet_wake, b);
        if (r < 0)
                log_error_errno(r, "Cannot create the fleet agent's event loop: %m");
        else
                r = fleet_new(&(FleetHooks) {
                                .health = post_health,
                                .count = post_count,
                                .answer = post_answer,
                                .names = post_names,
                                .userdata = b,
                        }, b->event, &b->config, b->dir, &b->fleet);

        (void) pthread_mutex_lock(&b->lock);
        b->started = true;
        b->start_result = r;
        (void) pthread_cond_signal(&b->cond);
        (void) pthread_mutex_unlock(&b->lock);

        if (r >= 0) {
                r = sd_event_loop(b->event);
                if (r < 0)
                        log_error_errno(r, "The fleet agent's event loop failed: %m");
        }
        b->fleet = fleet_free(b->fleet);
        b->fleet_source = sd_event_source_disable_unref(b->fleet_source);
        b->event = sd_event_unref(b->event);

        exited = msg_new(MSG_EXITED, 0, NULL);
        if (exited) {
                exited->count = r < 0 ? 1 : 0;
                msg_post(b, exited, false);
        } else
                wake(b->main_wake_fd);  /* the main thread sees the thread gone at least */
        return NULL;
}

/* ---- The main thread ---- */

static PendingCall *call_take(FleetBridge *b, uint64_t id) {
        for (PendingCall **p = &b->calls; *p; p = &(*p)->next)
                if ((*p)->id == id) {
                        PendingCall *c = *p;

                        *p = c->next;
                        return c;
                }
        return NULL;
}

static void call_answer(FleetBridge *b, BridgeMsg *m) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        PendingCall *c = call_take(b, m->id);
        int k = 0;

        if (!c)
                return;
        if (m->error)
                (void) sd_bus_reply_method_errnof(c->msg, m->error, "%s", m->text ? m->text : "");
        else if (m->type == MSG_ANSWER)
                (void) sd_bus_reply_method_return(c->msg, "u", (uint32_t) m->count);
        else {
                k = sd_bus_message_new_method_return(c->msg, &reply);
                if (k >= 0)
                        k = sd_bus_message_open_container(reply, 'a', "(su)");
                for (size_t i = 0; k >= 0 && m->names && i < m->names->n; i++)
                        k = sd_bus_message_append(reply, "(su)", m->names->v[i].name,
                                                  (uint32_t) m->names->v[i].count);
                if (k >= 0)
                        k = sd_bus_message_close_container(reply);
                if (k >= 0)
                        (void) sd_bus_send(NULL, reply, NULL);
                else
                        (void) sd_bus_reply_method_errnof(c->msg, -k, "Cannot build the answer: %m");
        }
        sd_bus_message_unref(c->msg);
        free(c);
}

static void thread_join(FleetBridge *b) {
        if (!b->joinable)
                return;
        (void) pthread_join(b->thread, NULL);
        b->joinable = false;
}

static int on_main_wake(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        FleetBridge *b = userdata;
        bool health_changed;
        BridgeMsg *list;

        drain(fd);
        (void) pthread_mutex_lock(&b->lock);
        list = b->to_main;
        b->to_main = NULL;
        b->to_main_tail = &b->to_main;
        health_changed = b->posted_changed;
        if (health_changed)
                b->health = b->posted;
        b->posted_changed = false;
        (void) pthread_mutex_unlock(&b->lock);

        if (health_changed) {
                if (b->health.state == FLEET_STATE_HELD || b->health.state == FLEET_STATE_LATE)
                        b->ever_held = true;
                b->hooks.health_changed(b->hooks.userdata);
        }
        for (BridgeMsg *msg = list; msg; msg = msg->next)
                switch (msg->type) {
                case MSG_COUNT_CHANGED:
                        b->hooks.count_changed(b->hooks.userdata, msg->text, msg->count);
                        break;
                case MSG_ANSWER:
                case MSG_NAMES:
                        call_answer(b, msg);
                        break;
                case MSG_EXITED:
                        thread_join(b);
                        b->main_source = sd_event_source_disable_unref(b->main_source);
                        if (b->stop_sent)
                                (void) sd_event_exit(b->main_event, b->exit_code);
                        else {
                                log_error("The fleet agent stopped; exiting");
                                (void) sd_event_exit(b->main_event, EXIT_FAILURE);
                        }
                        break;
                default:
                        break;
                }
        msg_free_list(list);
        return 0;
}

int fleet_bridge_start(sd_event *event, const FleetBridgeHooks *hooks, const FleetConfig *config,
                       const char *dir, FleetBridge **ret) {
        FleetBridge *b;
        int r;

        b = calloc(1, sizeof *b);
        if (!b)
                return log_oom();
        b->main_event = event;
        b->hooks = *hooks;
        b->config = *config;
        b->fleet_wake_fd = b->main_wake_fd = -1;
        b->to_fleet_tail = &b->to_fleet;
        b->to_main_tail = &b->to_main;
        b->health.state = b->posted.state = FLEET_STATE_STARTING;
        (void) snprintf(b->health.text, sizeof b->health.text, "starting");
        b->posted = b->health;
        (void) pthread_mutex_init(&b->lock, NULL);
        (void) pthread_cond_init(&b->cond, NULL);
        b->dir = strdup(dir);
        if (!b->dir) {
                fleet_bridge_free(b);
                return log_oom();
        }
        b->fleet_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        b->main_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (b->fleet_wake_fd < 0 || b->main_wake_fd < 0) {
                r = -errno;
                fleet_bridge_free(b);
                return log_error_errno(r, "Cannot make the fleet thread's eventfds: %m");
        }
        r = sd_event_add_io(event, &b->main_source, b->main_wake_fd, EPOLLIN, on_main_wake, b);
        if (r < 0) {
                fleet_bridge_free(b);
                return log_error_errno(r, "Cannot watch the fleet thread: %m");
        }
        /* the thread inherits our signal mask: SIGTERM and SIGINT stay ours */
        r = -pthread_create(&b->thread, NULL, fleet_thread, b);
        if (r < 0) {
                fleet_bridge_free(b);
                return log_error_errno(r, "Cannot start the fleet thread: %m");
        }
        b->joinable = true;

        (void) pthread_mutex_lock(&b->lock);
        while (!b->started)
                (void) pthread_cond_wait(&b->cond, &b->lock);
        r = b->start_result;
        (void) pthread_mutex_unlock(&b->lock);
        if (r < 0) {
                fleet_bridge_free(b);           /* the thread ends by itself */
                return r;
        }
        *ret = b;
        return 0;
}

void fleet_bridge_stop(FleetBridge *b, int exit_code) {
        if (!b || b->stop_sent)
                return;
        b->stop_sent = true;
        b->exit_code = exit_code;
        (void) pthread_mutex_lock(&b->lock);
        b->stop_asked = true;
        (void) pthread_mutex_unlock(&b->lock);
        wake(b->fleet_wake_fd);
}

FleetBridge *fleet_bridge_free(FleetBridge *b) {
        if (!b)
                return NULL;
        if (b->joinable) {
                fleet_bridge_stop(b, EXIT_FAILURE);
                thread_join(b);
        }
        b->main_source = sd_event_source_disable_unref(b->main_source);
        while (b->calls) {
                PendingCall *c = b->calls;

                b->calls = c->next;
                (void) sd_bus_reply_method_errorf(c->msg, SD_BUS_ERROR_FAILED,
                                                  "headcountd is stopping");
                sd_bus_message_unref(c->msg);
                free(c);
        }
        msg_free_list(b->to_fleet);
        msg_free_list(b->to_main);
        if (b->fleet_wake_fd >= 0)
                (void) close(b->fleet_wake_fd);
        if (b->main_wake_fd >= 0)
                (void) close(b->main_wake_fd);
        (void) pthread_cond_destroy(&b->cond);
        (void) pthread_mutex_destroy(&b->lock);
        free(b->dir);
        free(b);
        return NULL;
}

/* The bus caller's euid, which the fleet thread checks against the names' modes (the bus
 * is the main thread's: it is asked here); one the bus cannot tell is nobody's. */
static uid_t bus_sender_uid(sd_bus_message *msg) {
        sd_bus_creds *creds = NULL;
        uid_t uid = (uid_t) -1;

        if (sd_bus_query_sender_creds(msg, SD_BUS_CREDS_EUID, &creds) < 0 ||
            sd_bus_creds_get_euid(creds, &uid) < 0)
                uid = (uid_t) -1;
        sd_bus_creds_unref(creds);
        return uid;
}

int fleet_bridge_bus_call(FleetBridge *b, sd_bus_message *msg, const char *name) {
        PendingCall *c;
        BridgeMsg *m;

        if (b->stop_sent || !b->joinable)
                return sd_bus_reply_method_errorf(msg, SD_BUS_ERROR_FAILED,
                                                  "headcountd is stopping");
        c = calloc(1, sizeof *c);
        m = msg_new(name ? MSG_BUS_COUNT : MSG_BUS_NAMES, ++b->next_id, name);
        if (!c || !m) {
                free(c);
                msg_free_list(m);
                return -ENOMEM;
        }
        m->uid = bus_sender_uid(msg);
        c->id = m->id;
        c->msg = sd_bus_message_ref(msg);
        c->next = b->calls;
        b->calls = c;
        msg_post(b, m, true);
        return 1;
}

const FleetHealth *fleet_bridge_health(const FleetBridge *b) {
        return &b->health;
}

bool fleet_bridge_ever_held(const FleetBridge *b) {
        return b->ever_held;
}

size_t fleet_bridge_status(const FleetBridge *b, char *buf, size_t len) {
        const FleetHealth *h = &b->health;
        int n;

        /* seats are held only under a lease: without one the count would mislead */
        if (h->state == FLEET_STATE_HELD || h->state == FLEET_STATE_LATE)
                n = snprintf(buf, len, "; fleet: %s, %u seat%s held here", h->text,
                             h->seats_held, h->seats_held == 1 ? "" : "s");
        else
                n = snprintf(buf, len, "; fleet: %s", h->text);
        return n < 0 ? 0 : (size_t) n < len ? (size_t) n : len;
}
