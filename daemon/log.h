/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * headcountd's logging: structured entries in the journal when our stderr is connected to
 * it (or when asked), else lines on stderr with "<N>" priority prefixes that systemd and
 * syslog understand. Every message is escaped (escape_text()) on its way out, so that a
 * directory or name it quotes cannot send control sequences to whoever reads the log.
 */
#ifndef HCD_LOG_H
#define HCD_LOG_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <syslog.h>

#include "headcount.h"

enum {
        LOG_TARGET_AUTO,
        LOG_TARGET_JOURNAL,
        LOG_TARGET_STDERR,
};

int log_target_from_string(const char *s);
void log_open(int target);
void log_set_max_level(int level);

/* Logs a line; returns -ERRNO (or -EINVAL when it is 0), for "return log_error(...)". */
int log_full_errno(int level, int error, const char *format, ...)
        __attribute__((format(printf, 3, 4)));

#define log_full(level, ...) ((void) log_full_errno((level), 0, __VA_ARGS__))
#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_ERR, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, (error), __VA_ARGS__)
#define log_oom() log_error_errno(ENOMEM, "Out of memory")

/*
 * Logs a change of one region with the fields HEADCOUNT_NAME=, HEADCOUNT_PID=,
 * HEADCOUNT_SLOT=, HEADCOUNT_COUNT=, HEADCOUNT_EVENT= (join, leave or died) and
 * HEADCOUNT_VERIFIED= (0 when another user may have written the record of IN, the seat's
 * holder, or the kernel did not show its pid holding the seat: then its pid is a claim).
 */
void log_region_event(int level, const char *event, const char *name, const hc_instance *in,
                      int count, const char *format, ...)
        __attribute__((format(printf, 6, 7)));

/*
 * Logs a change of one fleet seat held through this agent: HEADCOUNT_EVENT= (join, leave,
 * died or lost), HEADCOUNT_SCOPE=fleet, HEADCOUNT_NAME=, HEADCOUNT_PID=, HEADCOUNT_HOST=
 * and HEADCOUNT_FENCE= (the seat key's etcd create_revision).
 */
void log_fleet_event(int level, const char *event, const char *name, const char *host,
                     pid_t pid, int64_t fence, const char *format, ...)
        __attribute__((format(printf, 7, 8)));

#endif
