/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Logging for headcountd. Under systemd our stderr is a stream to the journal and
 * $JOURNAL_STREAM names it ("DEV:INO"); we then send entries with sd_journal_send() so
 * the structured fields survive. Anywhere else (a terminal, a test, another supervisor)
 * we print "<N>message" lines on stderr, the form sd-daemon(3) describes.
 *
 * sd_journal_send() reports success when the journal's socket is missing (its datagram
 * goes nowhere), so before each entry we look for the socket ourselves, and print on
 * stderr when it is not there, whatever --log-target or a stale $JOURNAL_STREAM said: a
 * log never goes silent.
 *
 * Both of headcountd's threads log (the fleet agent runs in its own, fleet-bridge.c): the
 * two settings below are made before that thread starts and only read after, each line
 * is formatted in the caller's stack, and it goes out in one call, sd_journal_send()
 * (thread-safe) or one fprintf() on stderr (stdio locks the stream).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "escape.h"
#include "instance.h"
#include "log.h"

/* The longest message before escaping; longer ones are cut. */
#define LOG_LINE_MAX 2048

static bool use_journal;
static int max_level = LOG_INFO;

int log_target_from_string(const char *s) {
        if (strcmp(s, "auto") == 0)
                return LOG_TARGET_AUTO;
        if (strcmp(s, "journal") == 0)
                return LOG_TARGET_JOURNAL;
        if (strcmp(s, "stderr") == 0 || strcmp(s, "console") == 0)
                return LOG_TARGET_STDERR;
        return -EINVAL;
}

/* True when stderr is the very stream $JOURNAL_STREAM names (systemd.exec(5)). */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        uintmax_t dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%ju:%ju", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (uintmax_t) st.st_dev == dev && (uintmax_t) st.st_ino == ino;
}

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* The journal, if it is there to take the entry. */
static bool journal_ready(void) {
        struct stat st;

        return use_journal && stat(JOURNAL_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode);
}

void log_open(int target) {
        if (target == LOG_TARGET_AUTO)
                use_journal = stderr_is_journal();
        else
                use_journal = target == LOG_TARGET_JOURNAL;
}

void log_set_max_level(int level) {
        max_level = level;
}

/* Formats the message and makes it one safe line: see log.h. */
static void log_format(char *buf, size_t size, const char *format, va_list ap) {
        char text[LOG_LINE_MAX];

        (void) vsnprintf(text, sizeof text, format, ap);
        escape_text(text, buf, size);
}

static void log_write(int level, const char *message) {
        if (journal_ready() &&
            sd_journal_send("MESSAGE=%s", message, "PRIORITY=%i", level, NULL) >= 0)
                return;
        (void) fprintf(stderr, "<%i>%s\n", level, message);
}

int log_full_errno(int level, int error, const char *format, ...) {
        char buf[ESCAPE_TEXT_SIZE(LOG_LINE_MAX)];
        va_list ap;

        if (error < 0)
                error = -error;
        if (level <= max_level) {
                int saved = errno;

                errno = error;                  /* so that %m works */
                va_start(ap, format);
                log_format(buf, sizeof buf, format, ap);
                va_end(ap);
                errno = saved;
                log_write(level, buf);
        }
        return error == 0 ? -EINVAL : -error;
}

/* The journal's fields of one event, then its message on stderr when the journal is away:
 * what log_region_event() and log_fleet_event() share. */
#define LOG_EVENT(level, format, journal_fields...)                                     \
        do {                                                                            \
                char buf_[ESCAPE_TEXT_SIZE(LOG_LINE_MAX)];                              \
                va_list ap_;                                                            \
                                                                                        \
                if ((level) > max_level)                                                \
                        return;                                                         \
                va_start(ap_, format);                                                  \
                log_format(buf_, sizeof buf_, format, ap_);                             \
                va_end(ap_);                                                            \
                if (journal_ready() &&                                                  \
                    sd_journal_send("MESSAGE=%s", buf_, "PRIORITY=%i", (level),         \
                                    journal_fields, NULL) >= 0)                         \
                        return;                                                         \
                (void) fprintf(stderr, "<%i>%s\n", (level), buf_);                      \
        } while (0)

void log_region_event(int level, const char *event, const char *name, const hc_instance *in,
                      int count, const char *format, ...) {
        LOG_EVENT(level, format,
                  "HEADCOUNT_EVENT=%s", event,
                  "HEADCOUNT_NAME=%s", name,
                  "HEADCOUNT_PID=%i", (int) in->pid,
                  "HEADCOUNT_SLOT=%u", in->slot,
                  "HEADCOUNT_COUNT=%i", count,
                  "HEADCOUNT_VERIFIED=%i", instance_verified(in));
}

void log_fleet_event(int level, const char *event, const char *name, const char *host,
                     pid_t pid, int64_t fence, const char *format, ...) {
        LOG_EVENT(level, format,
                  "HEADCOUNT_EVENT=%s", event,
                  "HEADCOUNT_SCOPE=fleet",
                  "HEADCOUNT_NAME=%s", name,
                  "HEADCOUNT_PID=%i", (int) pid,
                  "HEADCOUNT_HOST=%s", host,
                  "HEADCOUNT_FENCE=%" PRIi64, fence);
}
