/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Damaged regions are never a dead end: a longer file is no damage; a damaged one is
 * removed or replaced by its owner when nobody is in it, never while a seat is held, and
 * a remover or replacer killed half-way leaves nothing that needs cleaning up
 * (lib/damaged.c). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "files.h"
#include "format.h"

static char *path_of(const char *name) {
        static char buf[512];

        snprintf(buf, sizeof buf, "%s/%s", test_dir, name);
        return buf;
}

/* Changes one byte of NAME's header at OFF, as a writer of a shared region may. */
static void flip(const char *name, size_t off) {
        int fd = open(path_of(name), O_RDWR | O_CLOEXEC);
        unsigned char b;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pread(fd, &b, 1, (off_t) off), 1);
        b ^= 0x10;
        ck_assert_int_eq(pwrite(fd, &b, 1, (off_t) off), 1);
        close(fd);
}

static const size_t header_bytes[] = {
        offsetof(struct hc_region_header, magic),
        offsetof(struct hc_region_header, version),
        offsetof(struct hc_region_header, capacity),
        offsetof(struct hc_region_header, file_size),
        offsetof(struct hc_region_header, region_id),
        offsetof(struct hc_region_header, region_id) + 7,
        offsetof(struct hc_region_header, layout_check),
};

/* A file longer than its header says is no damage, mapped or not; a shorter one is. */
START_TEST(test_damaged_longer_file_is_fine)
{
        hc_region *rg = NULL;
        hc_slot *s = NULL;
        char buf[8] = "abcdefg", back[8];
        struct stat st;

        ck_assert_int_eq(hc_create("g", TOPT(.data_size = 4096)), 1);
        ck_assert_int_eq(stat(path_of("g"), &st), 0);
        for (off_t grow = 1; grow <= 1 << 20; grow <<= 10) {
                ck_assert_int_eq(truncate(path_of("g"), st.st_size + grow), 0);
                ck_assert_int_eq(hc_join("g", TOPT(.max = 2), &s), 0);
                ck_assert_int_eq(hc_count("g", TOPT()), 1);
                ck_assert_int_eq(hc_region_open("g", TOPT(), &rg), 0);
                ck_assert_int_eq(hc_region_mapped(rg), 1);
                ck_assert_int_eq(hc_region_data_write(rg, 4088, buf, sizeof buf), 0);
                ck_assert_int_eq(hc_region_data_read(rg, 4088, back, sizeof back), 0);
                ck_assert_mem_eq(buf, back, sizeof buf);
                ck_assert_int_eq(hc_region_data_read(rg, 4089, back, sizeof back), -EINVAL);
                ck_assert_int_eq(hc_region_count(rg), 1);
                rg = hc_region_close(rg);
                s = hc_leave(s);
        }
        /* nothing past the header's size was written */
        {
                int fd = open(path_of("g"), O_RDONLY | O_CLOEXEC);
                char tail[64], zero[64] = {};

                ck_assert_int_eq(pread(fd, tail, sizeof tail, st.st_size), (ssize_t) sizeof tail);
                ck_assert_mem_eq(tail, zero, sizeof tail);
                close(fd);
        }
        ck_assert_int_eq(truncate(path_of("g"), st.st_size - 1), 0);
        ck_assert_int_eq(hc_count("g", TOPT()), -EBADMSG);
        ck_assert_int_eq(hc_remove("g", TOPT()), 0);
        ck_assert_uint_eq(dir_entries(), 0);
}
END_TEST

/* Whatever byte of the header changed, its owner removes the region: the name, its lock
 * files and nothing else; a region of the same name can be made afterwards. */
START_TEST(test_damaged_remove)
{
        for (size_t i = 0; i < sizeof header_bytes / sizeof header_bytes[0]; i++) {
                hc_slot *s = NULL;

                ck_assert_int_eq(hc_create("d", TOPT(.capacity = 130)), 1);
                ck_assert_int_eq(hc_create("other", TOPT()), i == 0 ? 1 : 0);
                flip("d", header_bytes[i]);
                ck_assert_int_eq(hc_count("d", TOPT()), -EBADMSG);
                ck_assert_int_eq(hc_join("d", TOPT(.flags = HC_NO_CREATE), &s), -EBADMSG);
                ck_assert_int_eq(hc_remove("d", TOPT()), 0);
                ck_assert_int_eq(access(path_of("d"), F_OK), -1);
                ck_assert_uint_eq(dir_entries(), 3);   /* "other" and its two lock files */
                ck_assert_int_eq(hc_remove("d", TOPT()), -ENOENT);
                ck_assert_int_eq(hc_join("d", TOPT(), &s), 0);
                s = hc_leave(s);
                ck_assert_int_eq(hc_remove("d", TOPT()), 0);
        }
}
END_TEST

/* While a seat is held nothing is removed or replaced, whichever byte changed (the lock
 * files' id included); once the holder is gone the first join replaces the region, and
 * says so in error_text. */
START_TEST(test_damaged_seat_held)
{
        for (size_t i = 0; i < sizeof header_bytes / sizeof header_bytes[0]; i++) {
                char note[256] = "";
                hc_slot *s = NULL;
                hc_instance *l = NULL;
                int seat, err, n;
                pid_t holder;

                holder = spawn_holder("h", 3, false, &seat, &err);
                ck_assert_int_gt(holder, 0);
                flip("h", header_bytes[i]);
                ck_assert_int_eq(hc_remove("h", TOPT()), -EBUSY);
                ck_assert_int_eq(hc_create("h", TOPT()), -EBADMSG);
                ck_assert_int_eq(hc_join("h", TOPT(.max = 3), &s), -EBADMSG);
                /* a sweep (names, creation) leaves the held lock file alone */
                ck_assert_int_eq(hc_create("x", TOPT()), i == 0 ? 1 : 0);
                ck_assert_int_eq(hc_remove("h", TOPT()), -EBUSY);
                ck_assert_ptr_null(s);

                kill_and_reap(holder, SIGKILL);
                ck_assert_int_eq(hc_join("h", TOPT(.max = 3, .error_text = note,
                                                   .error_text_size = sizeof note), &s), 0);
                ck_assert_msg(strstr(note, "replaced a damaged region 'h'"), "note: %s", note);
                n = hc_list("h", TOPT(), &l);
                ck_assert_int_eq(n, 1);
                ck_assert_int_eq(l[0].pid, getpid());
                free(l);
                s = hc_leave(s);
                /* the old lock files went with the old region: h's two and x's two */
                ck_assert_uint_eq(hidden_files(), 4);
                ck_assert_int_eq(hc_remove("h", TOPT()), 0);
        }
}
END_TEST

/* hc_create() replaces a damaged region (2); a handle opened before the damage finds
 * its region retired, and a join through it starts over by name. */
START_TEST(test_damaged_create_replaces)
{
        hc_region *rg = NULL;
        hc_slot *s = NULL;

        ck_assert_int_eq(hc_region_open("c", TOPT(.capacity = 5), &rg), 0);
        flip("c", offsetof(struct hc_region_header, capacity));
        ck_assert_int_eq(hc_create("c", TOPT(.capacity = 7)), 2);
        ck_assert_int_eq(hc_create("c", TOPT(.capacity = 7)), 0);
        ck_assert_int_eq(hc_region_retired(rg), 1);
        ck_assert_int_eq(hc_region_join(rg, TOPT(), &s), -ESTALE);
        rg = hc_region_close(rg);
        ck_assert_int_eq(hc_region_open("c", TOPT(.flags = HC_NO_CREATE), &rg), 0);
        ck_assert_uint_eq(hc_region_capacity(rg), 7);
        rg = hc_region_close(rg);
        ck_assert_uint_eq(dir_entries(), 2);
}
END_TEST

/* What is not recognisably a region (an empty file, another program's) is never replaced
 * behind anyone's back; asked by name, hc_remove() removes it. */
START_TEST(test_damaged_not_a_region)
{
        hc_slot *s = NULL;
        int fd;

        fd = open(path_of("empty"), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
        close(fd);
        fd = open(path_of("notes"), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
        ck_assert_int_eq(write(fd, "some text of another program\n", 29), 29);
        close(fd);
        ck_assert_int_eq(hc_join("empty", TOPT(), &s), -EBADMSG);
        ck_assert_int_eq(hc_create("empty", TOPT()), -EBADMSG);
        ck_assert_int_eq(hc_join("notes", TOPT(), &s), -EBADMSG);
        ck_assert_int_eq(hc_create("notes", TOPT()), -EBADMSG);
        ck_assert_uint_eq(dir_entries(), 2);
        ck_assert_int_eq(hc_remove("empty", TOPT()), 0);
        ck_assert_int_eq(hc_remove("notes", TOPT()), 0);
        ck_assert_uint_eq(dir_entries(), 0);
}
END_TEST

static int no_names(const char *name, int count, void *userdata) {
        (void) count;
        (void) userdata;
        ck_abort_msg("a region is left: %s", name);
        return 0;
}

/* A replacer or remover killed at the worst moments leaves nothing that needs cleaning
 * up by hand: the name is the damaged region or a new one, and the next call finishes. */
START_TEST(test_damaged_killed)
{
        static const struct { const char *point; bool remove; } cases[] = {
                { "create-built", false },
                { "create-lockfiles", false },
                { "damaged-replaced", false },
                { "damaged-unlinked", true },
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                hc_slot *s = NULL;
                int status;
                pid_t pid;

                ck_assert_int_eq(hc_create("k", TOPT(.capacity = 100)), 1);
                flip("k", offsetof(struct hc_region_header, region_id));
                pid = fork();
                ck_assert_int_ge(pid, 0);
                if (pid == 0) {
                        die_at(cases[i].point);
                        if (cases[i].remove)
                                (void) hc_remove("k", TOPT());
                        else
                                (void) hc_create("k", TOPT(.capacity = 100));
                        child_exit(0);
                }
                ck_assert_int_eq(waitpid(pid, &status, 0), pid);
                ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                              "%s: not killed there", cases[i].point);
                /* the next join works (replacing what is still damaged) */
                ck_assert_int_eq(hc_join("k", TOPT(.max = 100), &s), 0);
                ck_assert_int_eq(hc_count("k", TOPT()), 1);
                s = hc_leave(s);
                /* and after a removal nothing at all is left */
                ck_assert_int_eq(hc_remove("k", TOPT()), 0);
                ck_assert_int_eq(hc_names(TOPT(), no_names, NULL), 0);   /* sweeps */
                ck_assert_msg(dir_entries() == 0, "%s: %u files left", cases[i].point, dir_entries());
        }
}
END_TEST

/* Root removes another user's damaged region, but does not replace it; lock files that
 * someone else planted and locks never count as seats, and are left alone. */
START_TEST(test_damaged_foreign_owner)
{
        char planted[FILE_NAME_MAX], path[1024];
        hc_slot *s = NULL;
        int fd;

        if (geteuid() != 0)
                return;
        ck_assert_int_eq(hc_create("f", TOPT()), 1);
        flip("f", offsetof(struct hc_region_header, version));
        /* someone plants a lock file of that name and holds a lock in it */
        ck_assert_int_eq(file_lock_name(planted, sizeof planted, "f", 0x1234, 0), 0);
        snprintf(path, sizeof path, "%s/%s", test_dir, planted);
        fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fchown(fd, 65533, 65533), 0);
        ck_assert_int_eq(fcntl(fd, F_OFD_SETLK, &(struct flock) { .l_type = F_WRLCK,
                                                                 .l_start = HC_LOCK_BASE, .l_len = 1 }), 0);
        /* root's own region: the planted lock does not block its replacement */
        ck_assert_int_eq(hc_create("f", TOPT()), 2);
        ck_assert_int_eq(access(path, F_OK), 0);
        /* another user's damaged region: root removes it, but does not replace it */
        flip("f", offsetof(struct hc_region_header, version));
        ck_assert_int_eq(chown(path_of("f"), 65534, 65534), 0);
        ck_assert_int_eq(hc_join("f", TOPT(), &s), -EPERM);
        ck_assert_int_eq(hc_create("f", TOPT()), -EPERM);
        ck_assert_int_eq(hc_remove("f", TOPT()), 0);
        ck_assert_int_eq(access(path_of("f"), F_OK), -1);
        ck_assert_int_eq(access(path, F_OK), 0);  /* locked: left alone */
        close(fd);
}
END_TEST

/* The held seat's lock file found by name (the only hidden file of region P). */
static void held_lock_file(char *ret, size_t len) {
        char fn[512];
        FILE *f;

        snprintf(fn, sizeof fn, "ls -A %s | grep '^\\.p\\.'", test_dir);
        f = popen(fn, "r");
        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_nonnull(fgets(ret, (int) len, f));
        ret[strcspn(ret, "\n")] = '\0';
        pclose(f);
}

/* Another user cannot hide a held seat from a remover or replacer: not with a temporary
 * planted under the seat's id (a creation under way would have one), nor with a second
 * link to the lock file. */
START_TEST(test_damaged_hidden_seat)
{
        char lock[256], tmp[512], other[512], id[17];
        hc_slot *s = NULL;
        int seat, err, fd;
        pid_t holder;

        if (geteuid() != 0)
                return;
        holder = spawn_holder("p", 2, false, &seat, &err);
        ck_assert_int_gt(holder, 0);
        held_lock_file(lock, sizeof lock);
        ck_assert_uint_ge(strlen(lock), 20);
        memcpy(id, lock + 3, 16);          /* ".p.<16 hex>.0" */
        id[16] = '\0';
        snprintf(tmp, sizeof tmp, "%s/.p.%s.tmp", test_dir, id);
        fd = open(tmp, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fchown(fd, 65533, 65533), 0);
        close(fd);
        snprintf(other, sizeof other, "%s/.p.00000000000000aa.0", test_dir);
        ck_assert_int_eq(link(path_of(lock), other), 0);
        flip("p", offsetof(struct hc_region_header, magic));

        ck_assert_int_eq(hc_remove("p", TOPT()), -EBUSY);
        ck_assert_int_eq(hc_create("p", TOPT()), -EBADMSG);
        ck_assert_int_eq(hc_join("p", TOPT(.max = 2), &s), -EBADMSG);
        ck_assert_int_eq(access(path_of(lock), F_OK), 0);

        kill_and_reap(holder, SIGKILL);
        ck_assert_int_eq(hc_create("p", TOPT()), 2);
        ck_assert_int_eq(access(path_of(lock), F_OK), -1);
        ck_assert_int_eq(access(other, F_OK), -1);
        ck_assert_int_eq(access(tmp, F_OK), 0);     /* someone else's: not ours to judge */
        ck_assert_int_eq(unlink(tmp), 0);
}
END_TEST

Suite *suite_damaged(void) {
        Suite *s = suite_create("damaged");
        TCase *tc;

        tc = tcase_new("core", 60);
        tcase_add_test(tc, test_damaged_longer_file_is_fine);
        tcase_add_test(tc, test_damaged_remove);
        tcase_add_test(tc, test_damaged_create_replaces);
        tcase_add_test(tc, test_damaged_not_a_region);
        suite_add_tcase(s, tc);

        tc = tcase_new("holders", 60);
        tcase_add_test(tc, test_damaged_seat_held);
        tcase_add_test(tc, test_damaged_foreign_owner);
        tcase_add_test(tc, test_damaged_hidden_seat);
        suite_add_tcase(s, tc);

        tc = tcase_new("crash", 60);
        tcase_add_test(tc, test_damaged_killed);
        suite_add_tcase(s, tc);
        return s;
}
