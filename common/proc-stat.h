/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What /proc/PID/stat says of a process, as far as headcount(1) and headcountd(8) look. */
#ifndef HC_PROC_STAT_H
#define HC_PROC_STAT_H

#include <sys/types.h>

struct proc_stat {
        char state;              /* R, S, D, T, Z (a zombie), X (dead), ... */
        pid_t ppid;
        pid_t pgrp;
        unsigned long flags;     /* the kernel's PF_* bits: PROC_PF_EXITING */
};

#define PROC_PF_EXITING 0x4UL    /* past the point of no return in exit() */

/* Reads /proc/PID/stat into *RET: 0; the open's -errno (-ENOENT: no such process);
 * -ESRCH when it reads nothing (the process went meanwhile); -EBADMSG for a line that
 * does not parse. The command's name, which may hold anything, ends at the last ')'. */
int proc_stat_read(pid_t pid, struct proc_stat *ret);

#endif
