/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who we are: pid, uid, forks, boot id, PID namespace, and a clock no namespace shifts. */
#ifndef HC_PROC_H
#define HC_PROC_H

#include <stdint.h>
#include <sys/types.h>

pid_t self_pid(void);              /* getpid(), cached; right in a child after fork() */
uid_t self_uid(void);              /* getuid() at the first call in this process */
uint64_t self_fork_count(void);    /* forks this process made or was made by */
uint64_t self_epoch(void);         /* changes in every child after fork() */
const uint8_t *self_boot_id(void); /* 16 bytes; zero when /proc cannot tell */
uint64_t self_pidns(void);         /* inode of our PID namespace; 0 when unknown */

/*
 * The host's CLOCK_MONOTONIC in ns: ours minus our time namespace's offset
 * (/proc/self/timens_offsets), which a process cannot change for itself. No namespace
 * and no clock step can move it, so it orders joins.
 */
uint64_t host_monotonic_ns(void);
uint64_t host_monotonic_coarse_ns(void);    /* to a tick */

#endif
