/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fleet client's side of the wire: finding the agent and deciding whether to believe
 * it, one message out, one bounded message in, and what an answer that is not the expected
 * one means. fleet.c builds the calls of headcount.h on it.
 */
#ifndef HC_FLEET_WIRE_H
#define HC_FLEET_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fleet-proto.h"
#include "headcount.h"

/* One message from the agent, split into its fields. */
struct fleet_answer {
        char buf[HC_FLEET_MESSAGE_MAX + 1];
        const char *field[HC_FLEET_FIELDS_MAX];
        size_t n;
};

static inline bool streq(const char *a, const char *b) {
        return a && strcmp(a, b) == 0;
}

/* Every call starts with no error text, and with its NAME (if any) checked first. */
int wire_begin(const char *name, const hc_options *opt);

/* Numbers of the agent's: decimal, in range, else -EBADMSG. A count is 0..INT32_MAX. */
int wire_parse_u64(const char *s, uint64_t *ret);
int wire_parse_i64(const char *s, int64_t *ret);
int wire_parse_count(const char *s);
/* -EBADMSG, with "headcountd sent a malformed answer: ..." as the error text. */
int wire_malformed(const hc_options *opt, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Sends N fields as one message (-EMSGSIZE past HC_FLEET_MESSAGE_MAX). */
int wire_send(int fd, const char *const *field, size_t n);
/* The monotonic time until which an answer is waited for: the agent's own TIMEOUT_MS and
 * a grace beyond it; -1 for ever. */
int64_t wire_deadline(int timeout_ms);
/* The next message until DEADLINE, split into fields; bounded as fleet-proto.h says. */
int wire_receive(const hc_options *opt, int fd, int64_t deadline, struct fleet_answer *m);
/* An answer that is not the expected one (ERR, BUSY, TIMEDOUT, other): its error. */
int wire_answer_error(const hc_options *opt, const struct fleet_answer *m);
/* Connects to the trusted agent, sends FIELDS, reads the first answer into M; the
 * connection in *RET_FD. */
int wire_request(const hc_options *opt, const char *const *field, size_t n, int64_t deadline,
                 struct fleet_answer *m, int *ret_fd);
/* A query whose answer is "OK [count]": the count (or 0), or an error. */
int wire_simple(const hc_options *opt, const char *const *field, size_t n, int timeout_ms);

#endif
