/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Who may do what with a fleet name (docs/fleet.md, "Owners and modes"): a name's
 * definition (NAME/max: N, owner, mode), the classes of a caller (root; the owner, by user
 * name, since uids differ between hosts; everybody else), and whether a pid a client
 * claims is one the kernel lets us believe (a descendant of the connection's peer).
 *
 * The definition's value is written by agents and read back by every agent of the fleet:
 * it is bounded and validated here, and anything that does not parse is a name nobody but
 * root may use.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet-access.h"
#include "headcountd.h"
#include "log.h"
#include "proc-stat.h"

/* How far up the parent chain a claimed pid may be from the peer. */
#define PID_DEPTH_MAX 32

/* The user name of UID on this host into BUF: 0, or -ENOENT when it has none we can
 * record (no passwd entry, or a name the fleet cannot carry). */
int fleet_user_name(uid_t uid, char *buf, size_t size) {
        struct passwd pw, *res = NULL;
        char tmp[4096];

        if (getpwuid_r(uid, &pw, tmp, sizeof tmp, &res) != 0 || !res ||
            !fleet_user_name_valid(res->pw_name) || strlen(res->pw_name) >= size)
                return -ENOENT;
        (void) snprintf(buf, size, "%s", res->pw_name);
        return 0;
}

/* 0 when UID (named USER here, "" for none) may do WANT with the name D defines, else
 * -EACCES. Root may do everything; the owner too; others what the mode's other bits say. */
int fleet_access(uid_t uid, const char *user, const FleetDef *d, int want) {
        if (uid == 0)
                return 0;
        if (user && user[0] && strcmp(user, d->owner) == 0)
                return 0;
        if (want == FLEET_ACCESS_OWNER)
                return -EACCES;
        return (d->mode & 07 & (unsigned) want) ? 0 : -EACCES;
}

/* As fleet_access(), with the refusal's one line in BUF. */
int fleet_access_error(const char *name, uid_t uid, const char *user, const FleetDef *d,
                       int want, char *buf, size_t size) {
        int r = fleet_access(uid, user, d, want);

        if (r < 0)
                (void) snprintf(buf, size, "permission denied: fleet name '%s' belongs to %s "
                                "(mode %04o), and uid %u%s%s%s may not %s it", name, d->owner,
                                d->mode, (unsigned) uid, user && user[0] ? " (" : "",
                                user && user[0] ? user : "", user && user[0] ? ")" : "",
                                want == FLEET_ACCESS_JOIN ? "join" :
                                want == FLEET_ACCESS_READ ? "read" : "change or remove");
        return r;
}

/* PID's parent, from /proc/PID/stat, or -1. */
static pid_t pid_parent(pid_t pid) {
        struct proc_stat st;

        return proc_stat_read(pid, &st) < 0 ? -1 : st.ppid;
}

/* True when PID is ANCESTOR or descends from it (at most PID_DEPTH_MAX generations). */
bool fleet_pid_descends(pid_t pid, pid_t ancestor) {
        if (ancestor <= 0 || pid <= 0)
                return false;
        for (unsigned i = 0; i <= PID_DEPTH_MAX; i++) {
                if (pid == ancestor)
                        return true;
                if (pid <= 1)
                        return false;
                pid = pid_parent(pid);
                if (pid <= 0)
                        return false;
        }
        return false;
}
