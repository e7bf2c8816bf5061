/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * headcount(1)'s error messages: usage errors, a failed call's one line (region_failure()),
 * who holds the seats when none is free, and errors that say what to do. strerror() says "Operation not permitted" for a region that
 * another user made first in the system scope, and "Bad message" for an empty file that
 * touch(1) or flock(1) left where a region should be; the user needs to hear whose file
 * it is, or what it is, and how to get rid of it. We look at the file once more, only to
 * choose the words: the library has decided already.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdarg.h>
#include <stdlib.h>

#include "errors.h"
#include "cli.h"
#include "instance.h"

/* Where the library explains a failure in the fleet scope (hc_options.error_text). */
char cli_error_text[512];

/* The scope directory of C's name and the bare name, as the library resolves them. */
static int region_where(const struct cli *c, char *dir, size_t len, const char **ret_bare) {
        const char *bare = c->name;
        int scope = c->scope;

        /* a prefix chooses the scope; --dir still wins, as in the library */
        if (strncmp(bare, "Global\\", 7) == 0) {
                bare += 7;
                scope = HC_SCOPE_SYSTEM;
        } else if (strncmp(bare, "Local\\", 6) == 0) {
                bare += 6;
                scope = HC_SCOPE_USER;
        }
        *ret_bare = bare;
        return hc_scope_dir(HC_OPTIONS(.scope = scope, .dir = c->dir), dir, len);
}

static const char *user_name(uid_t uid, char *buf, size_t len) {
        struct passwd *pw = getpwuid(uid);

        if (pw && pw->pw_name)
                snprintf(buf, len, "'%s' (uid %u)", pw->pw_name, (unsigned) uid);
        else
                snprintf(buf, len, "uid %u", (unsigned) uid);
        return buf;
}

/* The scope options, as the user would type them again in a suggested command. */
static const char *scope_words(const struct cli *c, const char *dir, char *buf, size_t len) {
        if (c->dir)
                snprintf(buf, len, " --dir %s", dir);
        else if (strncmp(c->name, "Global\\", 7) == 0 ||
                 (c->scope == HC_SCOPE_SYSTEM && strncmp(c->name, "Local\\", 6) != 0))
                snprintf(buf, len, " --system");
        else
                buf[0] = '\0';
        return buf;
}

void region_error(const struct cli *c, const char *verb, int r) {
        char dir[4096], path[4096 + HC_NAME_MAX + 2], who[128], words[4096 + 8];
        const char *bare;
        struct stat st;

        if (!c->name || region_where(c, dir, sizeof dir, &bare) < 0)
                goto plain;
        if (stat(dir, &st) < 0 && errno == ENOENT) {
                message_error("cannot %s region '%s': directory '%s' does not exist", verb,
                              c->name, dir);
                return;
        }
        snprintf(path, sizeof path, "%s/%s", dir, bare);
        if (lstat(path, &st) < 0)
                goto plain;

        if (r == -EPERM && S_ISREG(st.st_mode) && st.st_uid != geteuid() && st.st_uid != 0) {
                message_error("cannot %s region '%s': '%s' belongs to user %s, not to you; "
                              "its owner or root can remove it ('headcount%s remove %s' when "
                              "nobody is in it), or use another name", verb, c->name, path,
                              user_name(st.st_uid, who, sizeof who),
                              scope_words(c, dir, words, sizeof words), bare);
                return;
        }
        if (r == -EPERM && !S_ISREG(st.st_mode)) {
                message_error("cannot %s region '%s': '%s' is not a regular file (a %s), so it "
                              "is no region; remove it, or use another name", verb, c->name, path,
                              S_ISLNK(st.st_mode) ? "symbolic link" : S_ISDIR(st.st_mode) ?
                              "directory" : S_ISFIFO(st.st_mode) ? "FIFO" : "special file");
                return;
        }
        if (r == -EPERM && st.st_nlink > 1) {
                message_error("cannot %s region '%s': '%s' has %lu hard links, and a region has "
                              "one; remove the other links, or this one", verb, c->name, path,
                              (unsigned long) st.st_nlink);
                return;
        }
        if (r == -EPERM && (st.st_mode & 0022)) {
                message_error("cannot %s region '%s': '%s' is writable by others (mode %04o), "
                              "which only the system scope allows; remove it, or make it "
                              "0600 with chmod(1)", verb, c->name, path,
                              (unsigned) (st.st_mode & 07777));
                return;
        }
        if (r == -EBADMSG && S_ISREG(st.st_mode) && st.st_size == 0) {
                message_error("cannot %s region '%s': '%s' is an empty file (touch(1) and "
                              "flock(1) leave such files), not a headcount region; remove it "
                              "with 'rm %s' when nothing uses it, or use another name", verb,
                              c->name, path, path);
                return;
        }
        /* hc_remove() removes such a file for its owner or root, when nobody holds a seat
         * in it; anyone else must ask */
        if (r == -EBADMSG && S_ISREG(st.st_mode) && (st.st_uid == geteuid() || geteuid() == 0)) {
                message_error("cannot %s region '%s': '%s' is not a headcount region (another "
                              "program's file, a damaged region, or one from an incompatible "
                              "build); remove it with 'headcount%s remove %s' when nobody is in "
                              "it, or use another name", verb, c->name, path,
                              scope_words(c, dir, words, sizeof words), bare);
                return;
        }
        if (r == -EBADMSG && S_ISREG(st.st_mode)) {
                message_error("cannot %s region '%s': '%s' is not a headcount region (another "
                              "program's file, a damaged region, or one from an incompatible "
                              "build); ask its owner, %s, to run 'headcount%s remove %s', or use "
                              "another name", verb, c->name, path, user_name(st.st_uid, who, sizeof who),
                              scope_words(c, dir, words, sizeof words), bare);
                return;
        }
        if (r == -EACCES && S_ISREG(st.st_mode)) {
                message_error("cannot %s region '%s': '%s' (mode %04o, owner %s) is not "
                              "writable by you; its owner or root can change its mode", verb,
                              c->name, path, (unsigned) (st.st_mode & 07777),
                              user_name(st.st_uid, who, sizeof who));
                return;
        }
plain:
        message_error("cannot %s region '%s': %s", verb, c->name ? c->name : "", strerror(-r));
}

int usage_error(const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        message_verror(format, ap);
        va_end(ap);
        message_usage_hint();
        return EXIT_USAGE;
}

/* Says why a call on region C->name failed, in one line, and returns the exit status: in
 * the fleet scope from the agent's own words (69 when no agent serves the scope or it
 * cannot reach etcd), elsewhere as region_error() explains local failures. */
int region_failure(const struct cli *c, const char *verb, int r) {
        if (!c->fleet) {
                region_error(c, verb, r);
                return EXIT_FAILURE;
        }
        if (r == -EHOSTDOWN) {
                message_error("%s; start one with 'headcountd --etcd URL' (see headcountd(8))",
                              cli_error_text[0] ? cli_error_text
                                                : "no headcountd serves the fleet scope");
                return EXIT_NO_FLEET;
        }
        if (c->name)
                message_error("cannot %s region '%s' in the fleet scope: %s", verb, c->name,
                              cli_error_text[0] ? cli_error_text : strerror(-r));
        else
                message_error("cannot %s in the fleet scope: %s", verb,
                              cli_error_text[0] ? cli_error_text : strerror(-r));
        return r == -EHOSTUNREACH ? EXIT_NO_FLEET : EXIT_FAILURE;
}

/* As report_no_seat() in the fleet scope, where a pid means something on its host only,
 * and is a claim unless the agent verified it. */
static void report_full_fleet(const struct cli *c) {
        hc_fleet_instance *list = NULL;
        char holders[320] = "";
        size_t len = 0;
        int n;

        n = hc_fleet_list(c->name, CLI_OPTIONS(c), &list);
        for (int i = 0; i < n && i < (int) c->max && len < sizeof holders - 100; i++)
                len += (size_t) snprintf(holders + len, sizeof holders - len, "%spid %d%s on %s",
                                         len ? ", " : "", (int) list[i].instance.pid,
                                         instance_verified(&list[i].instance) ? "" :
                                         " (unverified)", list[i].host);
        free(list);
        if (len > 0)
                message_error("no free seat in fleet region '%s': held by %s", c->name, holders);
        else
                message_error("no free seat in fleet region '%s'", c->name);
}

/* Says who holds the seats we could have had: with --max 1, who is already running. A
 * PID is only as good as its record: "pid 2 in another PID namespace", "pid 1234
 * (unverified)" say so. */
void report_no_seat(const struct cli *c, int r) {
        hc_instance *list = NULL;
        char holders[320] = "";
        size_t len = 0;
        int n;

        if (r == -ETIMEDOUT) {
                message_error("no free seat in region '%s' within the timeout", c->name);
                return;
        }
        if (c->fleet) {
                report_full_fleet(c);
                return;
        }
        n = hc_list(c->name, CLI_OPTIONS(c), &list);
        for (int i = 0; i < n && len < sizeof holders - INSTANCE_DESCRIPTION_MAX - 2; i++) {
                char who[INSTANCE_DESCRIPTION_MAX];

                if (list[i].slot >= c->max || (list[i].flags & HC_INSTANCE_NO_RECORD))
                        continue;
                len += (size_t) snprintf(holders + len, sizeof holders - len, "%s%s",
                                         len ? ", " : "",
                                         instance_describe(&list[i], who, sizeof who));
        }
        free(list);
        if (len > 0)
                message_error("no free seat in region '%s': held by %s", c->name, holders);
        else
                message_error("no free seat in region '%s'", c->name);
}

/* One line on stderr when seats were found read-locked: none of them counts as held,
 * and nobody can take them while the locks last. */
void note_read_locked(const struct cli *c, unsigned n) {
        if (n > 0)
                message_error("region '%s': %u seat%s read-locked by someone else: not held, not "
                              "counted, and nobody can take %s while the lock lasts",
                              c->name, n, n == 1 ? "" : "s", n == 1 ? "it" : "them");
}
