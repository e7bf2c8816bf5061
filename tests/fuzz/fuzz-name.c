/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness: names and scopes. hc_name_valid() on arbitrary bytes, hc_scope_dir()
 * with arbitrary directories, environment ($HEADCOUNT_DIR, $XDG_RUNTIME_DIR), scope and
 * buffer length, and the name resolution behind the public calls (hc_count, hc_wait,
 * hc_names) with an arbitrary name and directory.
 *
 * Input: NAME \0 DIR \0 HEADCOUNT_DIR \0 XDG_RUNTIME_DIR \0 and one byte of switches.
 * Only hc_scope_dir(), which touches no file, sees directories as given. The calls that
 * open files get them inside a sandbox directory (the working directory, with absolute
 * paths moved under it and "..": refused), so that no input can make the fuzzer read or
 * reap a real region.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "headcount.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char sandbox[64];

static int names_cb(const char *name, int count, void *u) {
        (void) name;
        (void) count;
        (void) u;
        return 0;
}

/* Takes the next NUL-terminated field of the input, or NULL when there is none. */
static char *field(const uint8_t **p, const uint8_t *end) {
        const uint8_t *nul;
        char *s;

        if (*p >= end)
                return NULL;
        nul = memchr(*p, 0, (size_t) (end - *p));
        if (!nul)
                nul = end;
        s = strndup((const char *) *p, (size_t) (nul - *p));
        if (!s)
                abort();
        *p = nul < end ? nul + 1 : end;
        return s;
}

/* DIR inside the sandbox, or NULL when it names a way out. */
static char *sandboxed(const char *d) {
        char *s;

        if (!d || strstr(d, ".."))
                return NULL;
        if (asprintf(&s, "%s/%s", sandbox, d) < 0)
                abort();
        return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc;
        (void) argv;
        snprintf(sandbox, sizeof sandbox, "/dev/shm/hc-fuzz-name-XXXXXX");
        if (!mkdtemp(sandbox) || chdir(sandbox) < 0)
                abort();
        /* a few directories and a region for names to find */
        (void) mkdir("d", 0700);
        (void) mkdir("headcount", 0700);
        (void) hc_create("web", HC_OPTIONS(.dir = sandbox));
        (void) hc_create("web", HC_OPTIONS(.dir = "d"));
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *p = data, *end = data + size;
        char *name = field(&p, end), *dir = field(&p, end), *hdir = field(&p, end);
        char *xdg = field(&p, end), *sdir = NULL;
        uint8_t sw = p < end ? *p : 0;
        char buf[4200];
        size_t len;
        int scope = (sw & 3) == 3 ? 7 : (sw & 1);

        (void) hc_name_valid(name);

        /* hc_scope_dir(): every input as given; it reads no file. */
        if (hdir && (sw & 4))
                setenv("HEADCOUNT_DIR", hdir, 1);
        else
                unsetenv("HEADCOUNT_DIR");
        if (xdg && (sw & 8))
                setenv("XDG_RUNTIME_DIR", xdg, 1);
        else
                unsetenv("XDG_RUNTIME_DIR");
        len = (sw & 16) ? (size_t) (sw >> 5) * 37 : sizeof buf;
        (void) hc_scope_dir(HC_OPTIONS(.dir = (sw & 32) ? dir : NULL, .scope = scope), buf, len);
        (void) hc_scope_dir(NULL, buf, sizeof buf);
        (void) hc_scope_dir(&(hc_options) { .size = (size_t) sw * 8, .dir = dir }, buf, sizeof buf);

        /* The calls that open files: inside the sandbox only. */
        sdir = sandboxed(dir);
        if (hdir && hdir[0] != '\0' && hdir[0] != '/' && !strstr(hdir, ".."))
                setenv("HEADCOUNT_DIR", hdir, 1);
        else
                unsetenv("HEADCOUNT_DIR");
        unsetenv("XDG_RUNTIME_DIR");
        if (sdir) {
                const hc_options *o = HC_OPTIONS(.dir = sdir, .scope = scope);

                (void) hc_count(name, o);
                (void) hc_count_approx(name, o);
                (void) hc_wait(name, o, 1, 0);
                (void) hc_names(o, names_cb, NULL);
        }
        if (getenv("HEADCOUNT_DIR") && !(name && strncmp(name, "Global\\", 7) == 0)) {
                (void) hc_count(name, HC_OPTIONS(.max = 1));
                (void) hc_names(NULL, names_cb, NULL);
        }
        free(sdir);
        free(name);
        free(dir);
        free(hdir);
        free(xdg);
        return 0;
}
