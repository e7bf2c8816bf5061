/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Names, scope directories and the trust rules for directories and files. */
#ifndef HC_SCOPE_H
#define HC_SCOPE_H

#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "headcount.h"

struct scope {
        char dir[PATH_MAX - HC_NAME_MAX - 32];   /* the scope directory */
        char name[HC_NAME_MAX + 1];              /* bare name, no Local\ or Global\ */
        bool system;             /* system scope rules: regions writable by others are OK */
        bool user_default;       /* the per-user default directory (we may create it) */
        uid_t euid;              /* ours, read once per call by scope_resolve*() */
};

/* 0 when NAME is 1..HC_NAME_MAX bytes of [A-Za-z0-9._-] not starting with '.'. */
int name_check(const char *name);

/* Resolves NAME (with an optional Local\ or Global\ prefix) and OPT to a scope. */
int scope_resolve(const char *name, const hc_options *opt, struct scope *ret);
int scope_resolve_dir(const hc_options *opt, struct scope *ret);

/* The local scope whose headcountd serves the fleet scope for OPT: opt->dir, else
 * $HEADCOUNT_DIR, else the user scope's directory (ret->user_default: nobody named it);
 * with SYSTEM, the system scope's. ret->system also when the directory named is the
 * system scope's: its agent listens on HC_FLEET_SYSTEM_SOCKET. -EOPNOTSUPP from the two
 * above for HC_SCOPE_FLEET. */
int scope_resolve_fleet(const hc_options *opt, bool system, struct scope *ret);

/* Opens and checks the scope directory; with CREATE, creates the defaults when missing. */
int scope_open_dir(const struct scope *sc, bool create, int *ret_dirfd);

/* As scope_open_dir(), through a per-process cache of open directories that is checked
 * with one stat() of the path. The descriptor must be given back with scope_put_dir()
 * and *RET_TOKEN (0 for one that is not cached, which it then closes). *RET_FLAGS (may be
 * NULL): SCOPE_DIR_OURS when nobody but our euid and root may make files in it,
 * SCOPE_DIR_PRIVATE when nobody else may even reach them. */
enum {
        SCOPE_DIR_OURS = 1 << 0,
        SCOPE_DIR_PRIVATE = 1 << 1,
};
int scope_get_dir(const struct scope *sc, bool create, int *ret_dirfd, unsigned *ret_flags,
                  unsigned *ret_token);
void scope_put_dir(int dirfd, unsigned token);

/* The program closed (or reused) the cached descriptor of TOKEN behind our back: it is no
 * longer ours to use or to close; the next call opens the directory again. */
void scope_lost_dir(unsigned token);

/* -EREMOTE when FD is on a network filesystem. */
int fs_check_local(int fd, dev_t dev);

/* -EPERM unless ST is a file we may trust as a region or lock file (st_nlink 0 passes:
 * callers treat it as retired). */
int file_trust(const struct stat *st, bool system, uid_t euid);

/* As file_trust(), for root's read-only look at a file of any owner (a monitor's view of
 * other users' regions): a regular file with at most one link. */
int file_trust_foreign(const struct stat *st, uid_t euid);

/* -EINVAL when a file we create with MODE in SC would fail file_trust() afterwards. */
int mode_trusted(const struct scope *sc, unsigned mode);

#endif
