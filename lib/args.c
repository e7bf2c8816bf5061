/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Packing a working directory and an argument vector into one message, and back. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "headcount.h"
#include "hc-internal.h"

#define ARGS_MAGIC "HCARGS1"                     /* 8 bytes with its NUL */

_hc_public_ int hc_args_pack(const char *cwd, char *const argv[], void **ret, size_t *ret_len) {
        _cleanup_free_ char *own_cwd = NULL;
        size_t total = sizeof ARGS_MAGIC, n;
        char *buf, *p;

        hc_assert_return(argv && ret && ret_len, -EINVAL);
        if (!cwd) {
                own_cwd = getcwd(NULL, 0);
                if (!own_cwd)
                        return -errno;
                cwd = own_cwd;
        }
        total += strlen(cwd) + 1;
        for (size_t i = 0; argv[i]; i++) {
                n = strlen(argv[i]) + 1;
                if (total > UINT32_MAX - n)
                        return -E2BIG;
                total += n;
        }
        buf = malloc(total);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, ARGS_MAGIC, sizeof ARGS_MAGIC);
        p = stpcpy(buf + sizeof ARGS_MAGIC, cwd) + 1;
        for (size_t i = 0; argv[i]; i++)
                p = stpcpy(p, argv[i]) + 1;
        *ret = buf;
        *ret_len = total;
        return 0;
}

_hc_public_ int hc_args_unpack(const void *data, size_t len, char **ret_cwd, char ***ret_argv) {
        const char *s = data;
        size_t argc = 0, strings;
        char **block, *copy;

        hc_assert_return(data && ret_cwd && ret_argv, -EINVAL);
        if (len <= sizeof ARGS_MAGIC || memcmp(s, ARGS_MAGIC, sizeof ARGS_MAGIC) != 0 ||
            s[len - 1] != '\0')
                return -EBADMSG;
        s += sizeof ARGS_MAGIC;
        strings = len - sizeof ARGS_MAGIC;
        for (size_t i = 0; i < strings; i++)
                if (s[i] == '\0')
                        argc++;
        argc--;                           /* the first string is the directory */
        if (argc > INT32_MAX)
                return -EBADMSG;
        block = malloc((argc + 1) * sizeof(char *) + strings);
        if (!block)
                return -ENOMEM;
        copy = (char *) (block + argc + 1);
        memcpy(copy, s, strings);
        *ret_cwd = copy;
        copy += strlen(copy) + 1;
        for (size_t i = 0; i < argc; i++) {
                block[i] = copy;
                copy += strlen(copy) + 1;
        }
        block[argc] = NULL;
        *ret_argv = block;
        return (int) argc;
}

