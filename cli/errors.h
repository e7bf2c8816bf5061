/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* headcount(1)'s error messages (errors.c). */
#ifndef HC_CLI_ERRORS_H
#define HC_CLI_ERRORS_H

#include "cli.h"

/* Prints a usage error as message_error() does, then the --help hint; returns EXIT_USAGE
 * (64), for the caller to return. */
int usage_error(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* Says on stderr that "cannot VERB region 'NAME'" and why, in words that say what to do
 * where strerror() would not: a region of another owner, a file that is no
 * region, a directory that does not exist. */
void region_error(const struct cli *c, const char *verb, int r);

/*
 * Prints the one line for the failed call that returned R, "WHAT: <reason>", and returns
 * the exit status. In the fleet scope the reason is the agent's own (etcd's message, the
 * endpoint it cannot reach), and no serving headcountd (-EHOSTDOWN) or no etcd
 * (-EHOSTUNREACH) exits EXIT_NO_FLEET; everything else exits 1.
 */
int region_failure(const struct cli *c, const char *verb, int r);

/* Says who holds the seats we could have had, after a join failed with R (-EBUSY), or
 * that none came in time (-ETIMEDOUT). */
void report_no_seat(const struct cli *c, int r);

/* count, list: one line when N seats were found read-locked by someone else. */
void note_read_locked(const struct cli *c, unsigned n);

#endif
