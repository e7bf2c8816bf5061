/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Writes the seed corpus of fuzz-region: region files made by the library itself (empty,
 * with live and dead records, with tags, with user data, retired), each behind the
 * harness's mode byte. Usage: seed-region OUTDIR. The output is committed under
 * tests/fuzz/seeds-region/; 'make fuzz-seeds' makes it again after a format change.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hc-internal.h"
#include "format.h"
#include "create.h"
#include "region.h"

static char dir[64];

static void die(const char *what, int r) {
        fprintf(stderr, "seed-region: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(EXIT_FAILURE);
}

/* Copies region NAME to OUTDIR/SEED with mode byte MODE, after EDIT changes its header. */
static void save(const char *outdir, const char *name, const char *seed, unsigned char mode,
                 void (*edit)(struct hc_region_header *h)) {
        char src[256], dst[512];
        struct stat st;
        unsigned char *buf;
        FILE *f;
        int fd;

        snprintf(src, sizeof src, "%s/%s", dir, name);
        fd = open(src, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                die(src, errno);
        buf = malloc((size_t) st.st_size + 1);
        if (!buf || read(fd, buf + 1, (size_t) st.st_size) != st.st_size)
                die("read", errno ? errno : EIO);
        close(fd);
        buf[0] = mode;
        if (edit) {
                struct hc_region_header h;

                memcpy(&h, buf + 1, sizeof h);
                edit(&h);
                memcpy(buf + 1, &h, sizeof h);
        }
        snprintf(dst, sizeof dst, "%s/%s", outdir, seed);
        f = fopen(dst, "we");
        if (!f || fwrite(buf, 1, (size_t) st.st_size + 1, f) != (size_t) st.st_size + 1 ||
            fclose(f) != 0)
                die(dst, errno);
        free(buf);
}

static void retire(struct hc_region_header *h) {
        h->flags |= HC_REGION_RETIRED;
}

int main(int argc, char *argv[]) {
        hc_slot *s[4] = {};
        int r;

        if (argc != 2) {
                fprintf(stderr, "usage: seed-region OUTDIR\n");
                return 64;
        }
        snprintf(dir, sizeof dir, "/dev/shm/hc-seed-XXXXXX");
        if (!mkdtemp(dir))
                die("mkdtemp", errno);

        r = hc_create("one", HC_OPTIONS(.dir = dir, .capacity = 1));
        if (r < 0)
                die("create one", r);
        save(argv[1], "one", "empty-1", 0, NULL);
        save(argv[1], "one", "empty-1-fixed", 7, NULL);

        r = hc_create("four", HC_OPTIONS(.dir = dir, .capacity = 4));
        if (r < 0)
                die("create four", r);
        for (unsigned i = 0; i < 3; i++) {
                r = hc_join("four", HC_OPTIONS(.dir = dir, .max = 4, .tag = i ? "worker" : NULL),
                            &s[i]);
                if (r < 0)
                        die("join four", r);
        }
        save(argv[1], "four", "records-4", 0, NULL);   /* the seats are free in the harness */
        save(argv[1], "four", "records-4-fixed", 7, NULL);
        save(argv[1], "four", "retired-4", 1, retire);
        for (unsigned i = 0; i < 3; i++)
                s[i] = hc_leave(s[i]);
        save(argv[1], "four", "left-4", 0, NULL);

        r = hc_join("sixty-four", HC_OPTIONS(.dir = dir, .max = 64, .tag = "a tag"), &s[0]);
        if (r < 0)
                die("join sixty-four", r);
        save(argv[1], "sixty-four", "default-64", 0, NULL);
        s[0] = hc_leave(s[0]);

        r = hc_create("data", HC_OPTIONS(.dir = dir, .capacity = 2, .data_size = 100));
        if (r < 0)
                die("create data", r);
        save(argv[1], "data", "data-2", 3, NULL);

        (void) hc_remove("one", HC_OPTIONS(.dir = dir));
        (void) hc_remove("four", HC_OPTIONS(.dir = dir));
        (void) hc_remove("sixty-four", HC_OPTIONS(.dir = dir));
        (void) hc_remove("data", HC_OPTIONS(.dir = dir));
        (void) rmdir(dir);
        return 0;
}
