/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* headcount send: hands a message to the primary instance and prints its reply. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int command_send(const struct cli *c) {
        size_t len = 0, reply_len = 0;
        void *reply = NULL;
        char *msg, *p;
        int r;

        /* The words, joined by single spaces, as echo(1) would print them. */
        for (char **w = c->cmd; *w; w++)
                len += strlen(*w) + 1;
        /* NOLINTNEXTLINE(clang-analyzer-optin.portability.UnixAPI): parse_argv() gives a word */
        msg = malloc(len);
        if (!msg) {
                message_error("cannot send to region '%s': %s", c->name, strerror(ENOMEM));
                return EXIT_FAILURE;
        }
        p = msg;
        for (char **w = c->cmd; *w; w++) {
                size_t n = strlen(*w);
                memcpy(p, *w, n);
                p += n;
                *p++ = w[1] ? ' ' : '\0';
        }

        r = hc_send(c->name, CLI_OPTIONS(c, .timeout_ms = c->timeout_ms), msg, len - 1, &reply,
                    &reply_len);
        free(msg);
        if (r == -ENOENT || r == -ECONNREFUSED) {
                message_error("no primary listens on region '%s'", c->name);
                return EXIT_NO_PRIMARY;
        }
        if (r < 0) {
                message_error("cannot send to region '%s': %s", c->name, strerror(-r));
                return EXIT_FAILURE;
        }
        if (reply_len > 0) {
                fwrite(reply, 1, reply_len, stdout);
                if (((const char *) reply)[reply_len - 1] != '\n')
                        putchar('\n');
        }
        free(reply);
        return EXIT_SUCCESS;
}
