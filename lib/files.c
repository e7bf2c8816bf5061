/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The names of a region's files, and the one parser that tells which region a file of
 * the scope directory belongs to (for the sweeper, and for monitors through
 * hc_file_region()). The layout is described in format.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "files.h"
#include "format.h"
#include "hc-internal.h"
#include "scope.h"
#include "util.h"

static int fmt_result(int n, size_t len) {
        return n < 0 || (size_t) n >= len ? -ENAMETOOLONG : 0;
}

/* ".NAME.<16 hex>." into BUF: the part every file of a region's starts with. Written by
 * hand: a join formats a name or two, and snprintf() cost it a tenth of its time. */
static char *put_prefix(char *p, const char *name, size_t n, uint64_t id) {
        static const char hex[] = "0123456789abcdef";

        *p++ = '.';
        memcpy(p, name, n);
        p += n;
        *p++ = '.';
        for (int i = 15; i >= 0; i--)
                *p++ = hex[(id >> (4 * i)) & 0xf];
        *p++ = '.';
        return p;
}

static char *put_uint(char *p, unsigned v) {
        char d[12];
        int n = 0;

        do
                d[n++] = (char) ('0' + v % 10);
        while ((v /= 10) > 0);
        while (n > 0)
                *p++ = d[--n];
        return p;
}

int file_lock_name(char *buf, size_t len, const char *name, uint64_t id, unsigned k) {
        size_t n = strlen(name);
        char *p;

        if (n + 32 > len)                 /* "." ".<16>." and at most 10 digits and NUL */
                return fmt_result(snprintf(buf, len, ".%s.%016" PRIx64 ".%u", name, id, k), len);
        p = put_uint(put_prefix(buf, name, n, id), k);
        *p = '\0';
        return 0;
}

int file_seat_name(char *buf, size_t len, const char *name, uint64_t id, unsigned seat, uint64_t seq) {
        return fmt_result(snprintf(buf, len, ".%s.%016" PRIx64 ".s%u-%016" PRIx64, name, id, seat, seq), len);
}

int file_temp_name(char *buf, size_t len, const char *name, uint64_t id) {
        return fmt_result(snprintf(buf, len, ".%s.%016" PRIx64 ".tmp", name, id), len);
}

int file_socket_name(char *buf, size_t len, const char *name, uint64_t nonce) {
        return fmt_result(snprintf(buf, len, ".%s.%016" PRIx64 ".sock", name, nonce), len);
}

static int hex16(const char *s, uint64_t *ret) {
        uint64_t v = 0;

        for (unsigned i = 0; i < 16; i++) {
                char c = s[i];
                unsigned d;

                if (c >= '0' && c <= '9')
                        d = (unsigned) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        d = (unsigned) (c - 'a' + 10);
                else
                        return -EINVAL;
                v = v << 4 | d;
        }
        *ret = v;
        return 0;
}

int file_parse(const char *fn, char *ret_name, uint64_t *ret_id, unsigned *ret_k) {
        const char *last, *idp;
        size_t len, n;
        uint64_t id;
        unsigned k = 0;
        int kind;

        if (!fn)
                return -EINVAL;
        if (fn[0] != '.') {
                if (name_check(fn) < 0)
                        return -EINVAL;
                memcpy(ret_name, fn, strlen(fn) + 1);   /* name_check() bounded it */
                return HC_FILE_REGION;
        }
        /* .NAME.<16 hex>.<suffix> */
        len = strlen(fn);
        last = strrchr(fn, '.');
        if (!last || last - fn < 19 || last[-17] != '.')
                return -EINVAL;
        idp = last - 16;
        if (hex16(idp, &id) < 0)
                return -EINVAL;
        if (strcmp(last, ".tmp") == 0)
                kind = HC_FILE_TEMPORARY;
        else if (strcmp(last, ".sock") == 0)
                kind = HC_FILE_SOCKET;
        else if (last[1] == 's') {
                /* .s<seat>-<16 hex seq> */
                const char *p = last + 2, *dash = strchr(p, '-');
                uint64_t seq;

                if (!dash || dash == p || dash - p > 4 || (p[0] == '0' && dash - p > 1) ||
                    strlen(dash + 1) != 16 || hex16(dash + 1, &seq) < 0)
                        return -EINVAL;
                for (; p < dash; p++) {
                        if (*p < '0' || *p > '9')
                                return -EINVAL;
                        k = k * 10 + (unsigned) (*p - '0');
                }
                if (k >= HC_CAPACITY_MAX)
                        return -EINVAL;
                kind = HC_FILE_SEAT;
        } else {
                const char *p = last + 1;
                if (*p == '\0' || (p[0] == '0' && p[1] != '\0') || (size_t) (fn + len - p) > 4)
                        return -EINVAL;
                for (; *p; p++) {
                        if (*p < '0' || *p > '9')
                                return -EINVAL;
                        k = k * 10 + (unsigned) (*p - '0');
                }
                if (k >= HC_LOCK_FILES_MAX)
                        return -EINVAL;
                kind = HC_FILE_LOCK;
        }
        n = (size_t) (idp - 1 - (fn + 1));
        if (n == 0 || n > HC_NAME_MAX)
                return -EINVAL;
        {
                char name[HC_NAME_MAX + 1];
                memcpy(name, fn + 1, n);
                name[n] = '\0';
                if (name_check(name) < 0)
                        return -EINVAL;
                memcpy(ret_name, name, n + 1);
        }
        if (ret_id)
                *ret_id = id;
        if (ret_k)
                *ret_k = k;
        return kind;
}

/* 1 when something accepts connections on the socket file FN of DIRFD. */
static bool socket_alive(int dirfd, const char *fn) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;

        if (fd_path(sa.sun_path, sizeof sa.sun_path, dirfd, fn) < 0)
                return true;              /* cannot tell: keep it */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return true;
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0)
                return true;
        return errno != ECONNREFUSED && errno != ENOENT;
}

void files_remove_sockets(int dirfd, const char *name, uint64_t keep) {
        _cleanup_close_ int dfd = -EBADF;
        struct dirent *de;
        DIR *d;

        dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return;
        d = fdopendir(dfd);
        if (!d)
                return;
        dfd = -EBADF;
        while ((de = readdir(d))) {
                char n[HC_NAME_MAX + 1];
                uint64_t nonce;
                struct stat st;

                if (file_parse(de->d_name, n, &nonce, NULL) != HC_FILE_SOCKET ||
                    strcmp(n, name) != 0 || nonce == keep)
                        continue;
                /* only sockets we could remove in a sticky directory, and only dead ones:
                 * each listener has its own name, so a live one is another region's
                 * primary of the same name... or a listener that has not given up yet */
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISSOCK(st.st_mode) || (st.st_uid != geteuid() && geteuid() != 0))
                        continue;
                if (!socket_alive(dirfd, de->d_name))
                        (void) unlinkat(dirfd, de->d_name, 0);
        }
        (void) closedir(d);
}

_hc_public_ int hc_file_region(const char *file, char *ret_name, size_t len) {
        char name[HC_NAME_MAX + 1];
        const char *base;
        size_t n;
        int kind;

        hc_assert_return(file && (ret_name || len == 0), -EINVAL);
        base = strrchr(file, '/');
        base = base ? base + 1 : file;
        kind = file_parse(base, name, NULL, NULL);
        if (kind < 0)
                return kind;
        n = strlen(name);
        if (ret_name) {
                if (n >= len)
                        return -ENAMETOOLONG;
                memcpy(ret_name, name, n + 1);
        }
        return kind;
}
