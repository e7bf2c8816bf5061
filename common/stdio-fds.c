/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A program started with a standard descriptor closed (">&-", "<&-", a careless
 * supervisor) gets that number back from its next open(). We fill the gaps with
 * /dev/null, as util-linux and systemd's tools do, before the first open() of our own.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "stdio-fds.h"

int stdio_fds_ensure(void) {
        for (int fd = 0; fd <= 2; fd++) {
                int null_fd;

                if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
                        continue;
                /* Not O_CLOEXEC: a command that 'run' starts inherits it, and reads EOF
                 * from it or writes into nothing, as it would from a closed descriptor. */
                null_fd = open("/dev/null", O_RDWR | O_NOCTTY);
                if (null_fd < 0)
                        return -errno;
                if (null_fd == fd)
                        continue;               /* the lowest free number: the usual case */
                if (dup2(null_fd, fd) < 0) {
                        int r = -errno;

                        (void) close(null_fd);
                        return r;
                }
                (void) close(null_fd);
        }
        return 0;
}
