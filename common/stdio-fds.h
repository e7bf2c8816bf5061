/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Standard descriptors that are really there, before anything else is opened. */
#ifndef HC_COMMON_STDIO_FDS_H
#define HC_COMMON_STDIO_FDS_H

/*
 * Opens /dev/null (read-write) on each of the descriptors 0, 1 and 2 that is closed, so
 * that nothing we open later (a region, a seat's lock file) can land on one of them:
 * our own output would then go into it, and so would a child's, since 'headcount run'
 * hands its command descriptors 0 to 2 and the seat's descriptor. Call it first thing in
 * main(). Returns 0 or a negative errno (then there is no safe way to go on).
 */
int stdio_fds_ensure(void);

#endif
