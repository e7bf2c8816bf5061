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

#include "fleet.h"
#include "headcountd.h"
#include "log.h"

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

/* 1 to FLEET_USER_MAX bytes of [A-Za-z0-9._@$-], not starting with '-'. */
bool fleet_user_name_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > FLEET_USER_MAX || s[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@$-",
                            s[i]))
                        return false;
        return true;
}

/*
 * A name's mode: octal, the owner's bits rw (the owner may always do everything), and the
 * group's bits equal to the others': a group is a local notion that differs between hosts,
 * so the fleet does not give it a class of its own. Read (4) allows COUNT, LIST, WAIT and
 * seeing the name in NAMES; write (2) allows JOIN.
 */
int fleet_mode_parse(const char *s, unsigned *ret) {
        unsigned long v;
        char *end;

        if (!s || *s < '0' || *s > '7')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 8);
        if (errno || *end || v > 0777 || (v & 0111) || (v & 0600) != 0600 ||
            ((v >> 3) & 7) != (v & 7))
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

/* A NAME/max key-value from a range (base64 value, revisions, lease) as a definition;
 * -ENOENT when KV is NULL, -EBADMSG for a value that is neither form. */
int fleet_def_parse(json_object *kv, FleetDef *ret) {
        _cleanup_free_ char *text = NULL;
        json_object *o = NULL, *rec = NULL, *m = NULL, *ow = NULL, *md = NULL, *j = NULL;
        FleetDef d = {};
        size_t len, i;
        int64_t max;

        if (!kv)
                return -ENOENT;
        d.mod_revision = json_int(kv, "mod_revision");
        d.persistent = true;
        if (!json_object_object_get_ex(kv, "value", &o) ||
            etcd_unbase64(json_object_get_string(o), &text, &len) < 0 || len == 0 || len > 512 ||
            strlen(text) != len)
                return -EBADMSG;
        for (i = 0; i < len && text[i] >= '0' && text[i] <= '9'; i++)
                ;
        if (i == len) {
                /* an older agent's plain N: anyone could join it then, and only root
                 * may change or remove it now */
                if (len > 7 || (max = strtoll(text, NULL, 10)) < 1 || max > HCD_FLEET_MAX_MAX)
                        return -EBADMSG;
                d.max = (unsigned) max;
                d.mode = 0666;
                (void) snprintf(d.owner, sizeof d.owner, "root");
                *ret = d;
                return 0;
        }
        rec = json_tokener_parse(text);
        if (!rec || !json_object_is_type(rec, json_type_object) ||
            !json_object_object_get_ex(rec, "max", &m) || !json_object_is_type(m, json_type_int) ||
            !json_object_object_get_ex(rec, "owner", &ow) ||
            !json_object_is_type(ow, json_type_string) ||
            !json_object_object_get_ex(rec, "mode", &md) ||
            !json_object_is_type(md, json_type_string)) {
                json_object_put(rec);
                return -EBADMSG;
        }
        max = json_object_get_int64(m);
        if (max < 1 || max > HCD_FLEET_MAX_MAX ||
            !fleet_user_name_valid(json_object_get_string(ow)) ||
            fleet_mode_parse(json_object_get_string(md), &d.mode) < 0) {
                json_object_put(rec);
                return -EBADMSG;
        }
        d.max = (unsigned) max;
        (void) snprintf(d.owner, sizeof d.owner, "%s", json_object_get_string(ow));
        d.persistent = !(json_object_object_get_ex(rec, "join", &j) &&
                         json_object_get_boolean(j));
        json_object_put(rec);
        *ret = d;
        return 0;
}

char *fleet_def_format(unsigned max, const char *owner, unsigned mode, bool by_join) {
        json_object *o = json_object_new_object();
        char m[8], *v;

        if (!o)
                return NULL;
        (void) snprintf(m, sizeof m, "%04o", mode);
        json_object_object_add(o, "max", json_object_new_int64(max));
        json_object_object_add(o, "owner", json_object_new_string(owner));
        json_object_object_add(o, "mode", json_object_new_string(m));
        if (by_join)
                json_object_object_add(o, "join", json_object_new_boolean(true));
        v = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return v;
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

/* PID's parent, from /proc/PID/stat: after the last ')' come the state and the ppid. */
static pid_t pid_parent(pid_t pid) {
        char path[32], buf[512], *p;
        ssize_t n;
        long ppid;
        int fd;

        (void) snprintf(path, sizeof path, "/proc/%i/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -1;
        n = read(fd, buf, sizeof buf - 1);
        (void) close(fd);
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 1, " %*c %ld", &ppid) != 1 || ppid < 0 || ppid > INT32_MAX)
                return -1;
        return (pid_t) ppid;
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

/* One compare of a transaction; RANGE_END_B64 makes it hold for every key of a range. */
json_object *fleet_txn_compare(const char *key, const char *range_end_b64, const char *target,
                               const char *result, const char *field, json_object *value) {
        _cleanup_free_ char *k = etcd_base64(key, strlen(key));
        json_object *c = json_object_new_object();

        json_object_object_add(c, "key", json_object_new_string(k ? k : ""));
        if (range_end_b64)
                json_object_object_add(c, "range_end", json_object_new_string(range_end_b64));
        json_object_object_add(c, "target", json_object_new_string(target));
        json_object_object_add(c, "result", json_object_new_string(result));
        json_object_object_add(c, field, value);
        return c;
}

static void on_collected(Etcd *e, int r, json_object *reply, const char *error, void *userdata) {
        if (r < 0)
                log_debug("Cannot collect a fleet name's definition: %s",
                          error ? error : strerror(-r));
}

/*
 * A seat key of NAME was deleted, admitted under a definition that a join made (at
 * DEF_REVISION): when no seat key is left and the definition is still that one, it goes
 * too, in one transaction that checks both, so that a join racing with it either keeps it
 * or defines the name again. A definition this misses (the last seat's host died, etcd
 * did not answer) holds no seat: the next join of the name replaces it (fleet-seat.c).
 */
void fleet_name_collect(Fleet *f, const char *name, int64_t def_revision) {
        _cleanup_free_ char *seats = fleet_key(f, name, "/s/"), *max = fleet_key(f, name, "/max");
        _cleanup_free_ char *end = NULL, *m64 = NULL;
        json_object *req, *cmp, *ops, *op, *del;

        if (!seats || !max || f->stopping)
                return;
        end = etcd_prefix_end_base64(seats);
        m64 = etcd_base64(max, strlen(max));
        if (!end || !m64)
                return;
        req = json_object_new_object();
        cmp = json_object_new_array();
        json_object_array_add(cmp, fleet_txn_compare(seats, end, "CREATE", "EQUAL",
                                                     "create_revision", json_object_new_int64(0)));
        json_object_array_add(cmp, fleet_txn_compare(max, NULL, "MOD", "EQUAL", "mod_revision",
                                                     json_object_new_int64(def_revision)));
        json_object_object_add(req, "compare", cmp);
        del = json_object_new_object();
        json_object_object_add(del, "key", json_object_new_string(m64));
        op = json_object_new_object();
        json_object_object_add(op, "request_delete_range", del);
        ops = json_object_new_array();
        json_object_array_add(ops, op);
        json_object_object_add(req, "success", ops);
        (void) etcd_call(f->etcd, "/v3/kv/txn", req, on_collected, f, NULL);
        json_object_put(req);
}
