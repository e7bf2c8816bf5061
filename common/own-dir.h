/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A directory of the daemon's own, that no other user can write to. */
#ifndef HC_OWN_DIR_H
#define HC_OWN_DIR_H

#include <sys/types.h>

/* Opens directory PATH (O_RDONLY | O_DIRECTORY), making it with MODE (0755 or 0700) when
 * it is missing: a descriptor, or -errno. It must be ours (our euid), and not a symlink
 * (-EPERM); a mode with any bit MODE lacks is set to MODE (systemd's RuntimeDirectory= may
 * have made it with the mode of a shared directory, 1777). */
int own_dir_open(const char *path, mode_t mode);

#endif
