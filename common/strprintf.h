/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A formatted string in new memory. */
#ifndef HC_STRPRINTF_H
#define HC_STRPRINTF_H

#include <stdarg.h>
#include <stdio.h>

/* The malloc()ed result of printf-formatting, or NULL when memory ran out. Unlike
 * asprintf(), whose pointer is undefined after a failure, a caller can test the result. */
static inline __attribute__((format(printf, 1, 2))) char *strprintf(const char *format, ...) {
        char *s = NULL;
        va_list ap;
        int n;

        va_start(ap, format);
        n = vasprintf(&s, format, ap);
        va_end(ap);
        return n < 0 ? NULL : s;
}

#endif
