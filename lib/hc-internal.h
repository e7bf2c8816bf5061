/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private helpers shared by lib/: export and cleanup attributes, argument checks. */
#ifndef HC_INTERNAL_H
#define HC_INTERNAL_H

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define _hc_public_ __attribute__((visibility("default")))
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

/* Programmer errors at public entry points: return the code, never abort. */
#define hc_assert_return(expr, r)                               \
        do {                                                    \
                if (_unlikely_(!(expr)))                        \
                        return (r);                             \
        } while (0)

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}
static inline void closep(int *fd) {
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

#define TAKE_PTR(p) ({ __typeof__(p) _p = (p); (p) = NULL; _p; })
#define TAKE_FD(fd) ({ int _fd = (fd); (fd) = -EBADF; _fd; })

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_TO(x, a) (((x) + ((a) - 1)) & ~((__typeof__(x)) (a) - 1))

/*
 * Test hooks: named points inside lib/ where the test build lets a test act (typically,
 * kill the process at the worst moment). They compile to nothing in the installed library.
 */
#ifdef HC_TEST_HOOKS
extern void (*hc_test_hook)(const char *point);
#define HC_HOOK(point)                                  \
        do {                                            \
                if (hc_test_hook)                       \
                        hc_test_hook(point);            \
        } while (0)
#else
#define HC_HOOK(point) do {} while (0)
#endif

#endif
