/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "own-dir.h"

int own_dir_open(const char *path, mode_t mode) {
        struct stat st;
        int fd;

        if (mkdir(path, mode) < 0 && errno != EEXIST)
                return -errno;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ELOOP || errno == ENOTDIR ? -EPERM : -errno;
        if (fstat(fd, &st) < 0 || st.st_uid != geteuid()) {
                (void) close(fd);
                return -EPERM;
        }
        if ((st.st_mode & 07777 & ~mode) && fchmod(fd, mode) < 0) {
                int k = -errno;

                (void) close(fd);
                return k;
        }
        return fd;
}
