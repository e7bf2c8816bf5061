/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proc-stat.h"

int proc_stat_read(pid_t pid, struct proc_stat *ret) {
        char path[32], buf[1024], *p, state;
        long ppid, pgrp;
        unsigned long flags;
        ssize_t n;
        int fd;

        if (pid <= 0)
                return -ESRCH;
        (void) snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof buf - 1);
        (void) close(fd);
        if (n <= 0)
                return -ESRCH;
        buf[n] = '\0';
        p = strrchr(buf, ')');
        /* ") S ppid pgrp session tty_nr tpgid flags" */
        if (!p || sscanf(p + 1, " %c %ld %ld %*d %*d %*d %lu", &state, &ppid, &pgrp, &flags) != 4 ||
            ppid < 0 || ppid > INT32_MAX || pgrp < 0 || pgrp > INT32_MAX)
                return -EBADMSG;
        *ret = (struct proc_stat) { .state = state, .ppid = (pid_t) ppid, .pgrp = (pid_t) pgrp, .flags = flags };
        return 0;
}
