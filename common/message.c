/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Error lines on stderr, escaped as a whole: no caller can forget to escape its part. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "escape.h"
#include "message.h"

const char *message_program = "headcount";

/* Writes TEXT escaped and a newline on stderr. */
static void print_escaped(const char *text) {
        size_t size = ESCAPE_TEXT_SIZE(strlen(text));
        char *safe = malloc(size);

        if (!safe) {
                (void) fputs("out of memory\n", stderr);
                return;
        }
        (void) fprintf(stderr, "%s\n", escape_text(text, safe, size));
        free(safe);
}

void message_verror(const char *format, va_list ap) {
        _cleanup_free_ char *text = NULL, *line = NULL;

        if (vasprintf(&text, format, ap) < 0)
                text = NULL;            /* undefined after a failure */
        else if (asprintf(&line, "%s: %s", message_program, text) < 0)
                line = NULL;
        print_escaped(line ? line : "out of memory");
}

void message_error(const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        message_verror(format, ap);
        va_end(ap);
}

void message_usage_hint(void) {
        _cleanup_free_ char *line = NULL;

        if (asprintf(&line, "Try '%s --help' for more information.", message_program) < 0)
                line = NULL;
        print_escaped(line ? line : "out of memory");
}
