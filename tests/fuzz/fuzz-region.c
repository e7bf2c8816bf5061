/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness: an arbitrary region file, then every read path over it (open, count,
 * list, primary, wait, join and leave, reap, names, remove). The region is untrusted
 * input: in the system scope a hostile local user may write anything in it.
 *
 * Input: one mode byte, then the file. Most mutations of a header fail its layout check
 * at once, so the mode byte lets the harness repair what a hostile writer would repair
 * too (it knows the format as well as we do): bit 0 recomputes the layout check, bit 1
 * first makes the offsets and file size agree with capacity and data_size, bit 2
 * recomputes the check of every non-empty slot record. The fuzzer then reaches the code
 * behind the checks. Built with the library's sources and HC_TEST_HOOKS (tests/fuzz/
 * Makemodule.am).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hc-internal.h"
#include "format.h"
#include "create.h"
#include "region.h"

extern int hc_test_lock_timeout_ms;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static int names_cb(const char *name, int count, void *u) {
        (void) name;
        (void) count;
        (void) u;
        return 0;
}

/* Removes every file the previous input left (lock files named by its region id). */
static void clean_dir(void) {
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                abort();
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
}

static void fix_up(uint8_t *file, size_t size, uint8_t mode) {
        struct hc_region_header h;

        if (size < sizeof h)
                return;
        memcpy(&h, file, sizeof h);
        if (mode & 2)
                h.file_size = header_file_size(h.capacity, h.data_size, &h.table_offset,
                                               &h.data_offset);
        if (mode & 4) {
                for (uint64_t i = 0; i < h.capacity && i < HC_CAPACITY_MAX; i++) {
                        uint64_t off = h.table_offset + i * sizeof(struct hc_slot_rec);
                        struct hc_slot_rec rec;

                        if (off > size || size - off < sizeof rec)
                                break;
                        memcpy(&rec, file + off, sizeof rec);
                        if (rec.check == 0)
                                continue;
                        rec.check = record_check(&rec, (unsigned) i, h.region_id);
                        memcpy(file + off, &rec, sizeof rec);
                }
        }
        if (mode & 1)
                h.layout_check = header_layout_check(&h);
        memcpy(file, &h, sizeof h);
}

/* Creates the (empty) lock files the header in FILE names, as its creator would have:
 * without them every input would stop at the first seat. */
static void lay_lock_files(const uint8_t *file, size_t size) {
        struct hc_region_header h;

        if (size < sizeof h)
                return;
        memcpy(&h, file, sizeof h);
        for (uint64_t k = 0; k * HC_SEATS_PER_FILE < h.capacity && k < HC_LOCK_FILES_MAX; k++) {
                char path[160];
                int fd;

                snprintf(path, sizeof path, "%s/.r.%016llx.%u", dir, (unsigned long long) h.region_id,
                         (unsigned) k);
                fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd >= 0)
                        close(fd);
        }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc;
        (void) argv;
        snprintf(dir, sizeof dir, "/dev/shm/hc-fuzz-XXXXXX");
        if (!mkdtemp(dir))
                abort();
        hc_test_lock_timeout_ms = 2;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const hc_options *o = HC_OPTIONS(.dir = dir, .max = 2, .flags = HC_NO_CREATE);
        hc_instance *l = NULL, who;
        hc_run *runs = NULL;
        hc_region *rg = NULL;
        hc_slot *s = NULL;
        uint8_t *file;
        char path[128];
        int fd;

        if (size < 1)
                return 0;
        file = malloc(size);
        if (!file)
                abort();
        memcpy(file, data + 1, size - 1);
        fix_up(file, size - 1, data[0]);

        clean_dir();
        snprintf(path, sizeof path, "%s/r", dir);
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                abort();
        if (size > 1 && write(fd, file, size - 1) != (ssize_t) (size - 1))
                abort();
        close(fd);
        lay_lock_files(file, size - 1);
        free(file);

        (void) hc_count("r", o);
        (void) hc_count_approx("r", o);
        if (hc_list("r", o, &l) >= 0)
                free(l);
        (void) hc_primary("r", o, &who);
        (void) hc_wait("r", o, 1, 0);
        if (hc_join("r", o, &s) == 0)
                s = hc_leave_status(s, 1 << 8);
        if (hc_history("r", o, &runs) >= 0)
                free(runs);
        if (hc_region_open("r", o, &rg) == 0) {
                hc_run seat_runs[HC_RUNS_PER_SEAT_KEPT];
                uint64_t marks[2];

                if (hc_region_history(rg, &runs) >= 0)
                        free(runs);
                (void) hc_region_run_marks(rg, marks, hc_region_capacity(rg) < 2 ? 1 : 2);
                (void) hc_region_seat_runs(rg, 0, seat_runs);
                (void) hc_region_count(rg);
                (void) hc_region_count_approx(rg);
                if (hc_region_list(rg, &l) >= 0)
                        free(l);
                (void) hc_region_primary(rg, &who);
                if (hc_region_join(rg, o, &s) == 0) {
                        (void) hc_region_count(rg);
                        s = hc_leave(s);
                }
                (void) hc_region_wait(rg, 1, 0);
                (void) hc_region_reap(rg);
                (void) hc_region_retired(rg);
                rg = hc_region_close(rg);
        }
        (void) hc_reap("r", o);
        (void) hc_names(o, names_cb, NULL);
        (void) hc_remove("r", o);
        return 0;
}
