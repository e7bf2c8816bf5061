/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The region file: creation, validation, trust, retirement (lib/region.c). */
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
#include "create.h"
#include "region.h"

static char *region_path(const char *name) {
        static char buf[512];

        snprintf(buf, sizeof buf, "%s/%s", test_dir, name);
        return buf;
}

/* Creating twice: the first call creates (1), the second finds it (0). */
START_TEST(test_region_create_then_exists)
{
        struct stat st;

        ck_assert_int_eq(hc_create("r", TOPT(.mode = 0640, .capacity = 5, .data_size = 100)), 1);
        ck_assert_int_eq(hc_create("r", TOPT()), 0);
        ck_assert_int_eq(stat(region_path("r"), &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0640);
        {
                hc_region *rg = NULL;
                ck_assert_int_eq(hc_region_open("r", TOPT(.flags = HC_NO_CREATE), &rg), 0);
                ck_assert_uint_eq(hc_region_capacity(rg), 5);
                ck_assert_uint_eq(hc_region_data_size(rg), 100);
                ck_assert_str_eq(hc_region_name(rg), "r");
                rg = hc_region_close(rg);
        }
        ck_assert_uint_eq(hidden_files(), 1);   /* its lock file, where the seats are */
        ck_assert_int_eq(hc_count("nothere", TOPT()), -ENOENT);
        ck_assert_int_eq(hc_join("nothere", TOPT(.flags = HC_NO_CREATE), &(hc_slot *) { NULL }), -ENOENT);
}
END_TEST

extern bool hc_test_no_renameat2;

/* Where the filesystem lacks RENAME_NOREPLACE, link() puts the region in place, also
 * without replacing one that exists; the temporary goes either way. */
START_TEST(test_region_create_without_renameat2)
{
        hc_slot *s = NULL;

        hc_test_no_renameat2 = true;
        ck_assert_int_eq(hc_create("ln", TOPT(.capacity = 40)), 1);
        ck_assert_int_eq(hc_create("ln", TOPT(.capacity = 40)), 0);
        ck_assert_uint_eq(hidden_files(), 2);     /* the region's two lock files, no temporary */
        ck_assert_int_eq(hc_join("ln", TOPT(.max = 40), &s), 0);
        ck_assert_int_eq(hc_count("ln", TOPT()), 1);
        s = hc_leave(s);
        hc_test_no_renameat2 = false;
}
END_TEST

/* Two processes racing to create one region, 100 times: exactly one creates, both
 * end up in the same region, and no temporary is left behind. */
START_TEST(test_region_create_race)
{
        for (int round = 0; round < 100; round++) {
                char name[32];
                int p[2], created = 0, status;
                pid_t kids[2];

                snprintf(name, sizeof name, "race%d", round);
                ck_assert_int_eq(pipe(p), 0);
                for (int i = 0; i < 2; i++) {
                        kids[i] = fork();
                        ck_assert_int_ge(kids[i], 0);
                        if (kids[i] == 0) {
                                int r = hc_create(name, TOPT(.capacity = 40));
                                child_exit(r < 0 ? 100 + -r : r);
                        }
                }
                for (int i = 0; i < 2; i++) {
                        ck_assert_int_eq(waitpid(kids[i], &status, 0), kids[i]);
                        ck_assert(WIFEXITED(status));
                        ck_assert_msg(WEXITSTATUS(status) < 2, "hc_create failed: %d",
                                      100 - WEXITSTATUS(status));
                        created += WEXITSTATUS(status);
                }
                close(p[0]);
                close(p[1]);
                ck_assert_int_eq(created, 1);
                ck_assert_int_eq(hc_count(name, TOPT()), 0);
        }
        /* each region has its region file and two lock files (40 seats), nothing else */
        ck_assert_uint_eq(dir_entries(), 300);
        ck_assert_uint_eq(hidden_files(), 200);
}
END_TEST

/* A creator killed after building its temporary leaves no region and blocks nobody;
 * the next creation sweeps the temporary and its lock files. */
START_TEST(test_region_creator_killed)
{
        const char *points[] = { "create-built", "create-lockfiles" };

        for (size_t i = 0; i < 2; i++) {
                pid_t pid = fork();
                int status;
                hc_slot *s = NULL;

                ck_assert_int_ge(pid, 0);
                if (pid == 0) {
                        die_at(points[i]);
                        hc_create("half", TOPT(.capacity = 200));
                        child_exit(0);
                }
                ck_assert_int_eq(waitpid(pid, &status, 0), pid);
                ck_assert(WIFSIGNALED(status));
                ck_assert_int_eq(WTERMSIG(status), SIGKILL);
                ck_assert_int_eq(access(region_path("half"), F_OK), -1);
                ck_assert_uint_gt(hidden_files(), 0);
                ck_assert_int_eq(hc_count("half", TOPT()), -ENOENT);

                ck_assert_int_eq(hc_join("half", TOPT(.max = 3), &s), 0);
                ck_assert_int_eq(hc_count("half", TOPT()), 1);
                s = hc_leave(s);
                /* region (default capacity: two lock files) and nothing else: the dead
                 * creator's files are gone */
                ck_assert_uint_eq(hidden_files(), 2);
                ck_assert_int_eq(hc_remove("half", TOPT()), 0);
                ck_assert_uint_eq(dir_entries(), 0);
        }
}
END_TEST

static int names_cb(const char *name, int count, void *userdata) {
        ck_assert_str_eq(name, "real");
        ck_assert_int_eq(count, 0);
        (*(int *) userdata)++;
        return 0;
}

/* hc_names() sweeps lock files that belong to no region. */
START_TEST(test_region_orphan_lockfiles_swept)
{
        char path[512];
        int fd, n = 0;

        snprintf(path, sizeof path, "%s/.ghost.00000000000000ab.1", test_dir);
        fd = open(path, O_CREAT | O_RDWR, 0600);
        ck_assert_int_ge(fd, 0);
        close(fd);
        ck_assert_int_eq(hc_create("real", TOPT(.capacity = 40)), 1);
        ck_assert_uint_eq(hidden_files(), 2);   /* creation swept the ghost; real has two */
        fd = open(path, O_CREAT | O_RDWR, 0600);
        close(fd);
        ck_assert_uint_eq(hidden_files(), 3);
        ck_assert_int_eq(hc_names(TOPT(), (int (*)(const char *, int, void *)) NULL, NULL), -EINVAL);
        ck_assert_int_eq(hc_names(TOPT(), names_cb, &n), 0);
        ck_assert_int_eq(n, 1);
        ck_assert_uint_eq(hidden_files(), 2);
}
END_TEST

static void corrupt_at(const char *name, size_t off, const void *bytes, size_t len) {
        int fd = open(region_path(name), O_RDWR);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pwrite(fd, bytes, len, (off_t) off), (ssize_t) len);
        close(fd);
}

/* Each header field corrupted, and a truncated file, give -EBADMSG from every entry point
 * that does not create, never a crash and never a write outside the file; its owner may
 * remove it (test-damaged.c: and replace it). A longer file is no damage. */
START_TEST(test_region_corrupt_header_fields)
{
        static const struct { size_t off; size_t len; } fields[] = {
                { offsetof(struct hc_region_header, magic), 4 },
                { offsetof(struct hc_region_header, version), 4 },
                { offsetof(struct hc_region_header, fingerprint), 4 },
                { offsetof(struct hc_region_header, header_size), 4 },
                { offsetof(struct hc_region_header, capacity), 4 },
                { offsetof(struct hc_region_header, seats_per_file), 4 },
                { offsetof(struct hc_region_header, table_offset), 8 },
                { offsetof(struct hc_region_header, data_offset), 8 },
                { offsetof(struct hc_region_header, data_size), 8 },
                { offsetof(struct hc_region_header, file_size), 8 },
                { offsetof(struct hc_region_header, region_id), 8 },
                { offsetof(struct hc_region_header, layout_check), 8 },
        };
        static const uint64_t values[] = { 0, 1, 0xffffffffu, UINT64_MAX, 4097, 64 * 1024 + 1 };

        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
                for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
                        hc_slot *s = NULL;
                        hc_instance *l = NULL;
                        hc_region *rg = NULL;
                        struct stat before, after;
                        uint64_t val = values[v];

                        uint64_t orig = 0;
                        int fd;

                        ck_assert_int_eq(hc_create("c", TOPT(.capacity = 3)), 1);
                        fd = open(region_path("c"), O_RDONLY);
                        ck_assert_int_eq(pread(fd, &orig, fields[f].len, (off_t) fields[f].off),
                                         (ssize_t) fields[f].len);
                        close(fd);
                        if (orig == val)
                                val ^= 2;         /* always a change */
                        corrupt_at("c", fields[f].off, &val, fields[f].len);
                        ck_assert_int_eq(stat(region_path("c"), &before), 0);
                        ck_assert_msg(hc_join("c", TOPT(.flags = HC_NO_CREATE), &s) == -EBADMSG,
                                      "field %zu value %zu accepted", f, v);
                        ck_assert_int_eq(hc_count("c", TOPT()), -EBADMSG);
                        ck_assert_int_eq(hc_list("c", TOPT(), &l), -EBADMSG);
                        ck_assert_int_eq(hc_wait("c", TOPT(), 1, 0), -EBADMSG);
                        ck_assert_int_eq(hc_region_open("c", TOPT(.flags = HC_NO_CREATE), &rg), -EBADMSG);
                        ck_assert_int_eq(stat(region_path("c"), &after), 0);
                        ck_assert_int_eq(before.st_size, after.st_size);
                        ck_assert_ptr_null(s);
                        ck_assert_ptr_null(rg);
                        ck_assert_int_eq(hc_remove("c", TOPT()), 0);
                        ck_assert_int_eq(access(region_path("c"), F_OK), -1);
                }

        for (int grow = 0; grow < 2; grow++) {
                hc_slot *s = NULL;
                struct stat st;

                ck_assert_int_eq(hc_create("t", TOPT()), 1);
                ck_assert_int_eq(stat(region_path("t"), &st), 0);
                ck_assert_int_eq(truncate(region_path("t"), grow ? st.st_size + 4096 : st.st_size / 2), 0);
                if (grow) {
                        ck_assert_int_eq(hc_join("t", TOPT(.flags = HC_NO_CREATE), &s), 0);
                        ck_assert_int_eq(hc_count("t", TOPT()), 1);
                        s = hc_leave(s);
                } else {
                        ck_assert_int_eq(hc_join("t", TOPT(.flags = HC_NO_CREATE), &s), -EBADMSG);
                        ck_assert_int_eq(hc_count("t", TOPT()), -EBADMSG);
                }
                ck_assert_int_eq(truncate(region_path("t"), 10), 0);
                ck_assert_int_eq(hc_join("t", TOPT(.flags = HC_NO_CREATE), &s), -EBADMSG);
                ck_assert_int_eq(truncate(region_path("t"), 0), 0);
                ck_assert_int_eq(hc_join("t", TOPT(.flags = HC_NO_CREATE), &s), -EBADMSG);
                ck_assert_int_eq(unlink(region_path("t")), 0);
        }
}
END_TEST

/* Garbage in the slot table never crashes a reader and never counts: the locks do. */
START_TEST(test_region_garbage_records)
{
        unsigned char junk[sizeof(struct hc_slot_rec) * 4];
        hc_instance *l = NULL;
        hc_slot *s = NULL;
        struct hc_region_header h;
        int fd, n;

        ck_assert_int_eq(hc_join("g", TOPT(.max = 4), &s), 0);
        fd = open(region_path("g"), O_RDWR);
        ck_assert_int_eq(pread(fd, &h, sizeof h, 0), (ssize_t) sizeof h);
        for (size_t i = 0; i < sizeof junk; i++)
                junk[i] = (unsigned char) (i * 37 + 11);
        ck_assert_int_eq(pwrite(fd, junk, sizeof junk, (off_t) h.table_offset), (ssize_t) sizeof junk);
        close(fd);
        ck_assert_int_eq(hc_count("g", TOPT()), 1);
        n = hc_list("g", TOPT(), &l);
        ck_assert_int_eq(n, 1);
        ck_assert_uint_eq(l[0].slot, 0);
        ck_assert(l[0].flags & HC_INSTANCE_NO_RECORD);
        free(l);
        s = hc_leave(s);
        ck_assert_int_eq(hc_count("g", TOPT()), 0);
        /* the garbage records of free seats are reaped */
        ck_assert_int_ge(hc_reap("g", TOPT()), 0);
        n = hc_list("g", TOPT(), &l);
        ck_assert_int_eq(n, 0);
        ck_assert_ptr_null(l);
}
END_TEST

/* A region of 4096 held seats whose records all fail their check (the owner's own file,
 * garbage written over the table, every seat's lock held): its count and list come
 * quickly, each record read a few times at most, and the list says the records are
 * unreadable rather than passing them off as seats being written. A seat_hwm of 0 does
 * not hide the seats from a count or a list either. */
START_TEST(test_region_unreadable_records_bounded)
{
        enum { SEATS = HC_CAPACITY_MAX };
        int lock_fd[HC_LOCK_FILES_MAX];
        struct hc_region_header h;
        unsigned char *junk;
        hc_instance *l = NULL;
        uint32_t hwm = SEATS - 1;
        long long t0, list_usec;
        int fd, n;

        ck_assert_int_eq(hc_create("u", TOPT(.capacity = SEATS)), 1);
        fd = open(region_path("u"), O_RDWR | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pread(fd, &h, sizeof h, 0), (ssize_t) sizeof h);
        junk = malloc((size_t) SEATS * sizeof(struct hc_slot_rec));
        ck_assert_ptr_nonnull(junk);
        for (size_t i = 0; i < (size_t) SEATS * sizeof(struct hc_slot_rec); i++)
                junk[i] = (unsigned char) (i * 37 + 11) | 1;     /* never an empty record */
        ck_assert_int_eq(pwrite(fd, junk, (size_t) SEATS * sizeof(struct hc_slot_rec), (off_t) h.table_offset),
                         (ssize_t) SEATS * (ssize_t) sizeof(struct hc_slot_rec));
        /* as joiners would have raised it: we take the seats' locks by hand below */
        ck_assert_int_eq(pwrite(fd, &hwm, sizeof hwm, (off_t) offsetof(struct hc_region_header, seat_hwm)),
                         (ssize_t) sizeof hwm);
        free(junk);

        /* every seat held: one write lock over each lock file's seats */
        for (unsigned k = 0; k < HC_LOCK_FILES_MAX; k++) {
                char fn[FILE_NAME_MAX], path[4096];
                struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                                    .l_start = HC_LOCK_BASE + (off_t) k * HC_SEATS_PER_FILE,
                                    .l_len = HC_SEATS_PER_FILE };

                ck_assert_int_eq(file_lock_name(fn, sizeof fn, "u", h.region_id, k), 0);
                (void) snprintf(path, sizeof path, "%s/%s", test_dir, fn);
                lock_fd[k] = open(path, O_RDWR | O_CLOEXEC);
                ck_assert_int_ge(lock_fd[k], 0);
                ck_assert_int_eq(fcntl(lock_fd[k], F_OFD_SETLK, &fl), 0);
        }

        ck_assert_int_eq(hc_count("u", TOPT()), SEATS);
        t0 = cpu_usec();
        n = hc_list("u", TOPT(), &l);
        list_usec = cpu_usec() - t0;
        ck_assert_int_eq(n, SEATS);
        for (int i = 0; i < n; i++) {
                ck_assert_uint_eq(l[i].slot, (unsigned) i);
                ck_assert_msg((l[i].flags & (HC_INSTANCE_NO_RECORD | HC_INSTANCE_UNREADABLE)) ==
                              (HC_INSTANCE_NO_RECORD | HC_INSTANCE_UNREADABLE),
                              "seat %d: flags %#x", i, l[i].flags);
        }
        free(l);
        /* each record read 2,000 times took about 10 s of CPU; a few times, milliseconds */
        ck_assert_msg(list_usec < 2000 * 1000, "listing 4096 unreadable records took %lld us of CPU",
                      list_usec);

        if (geteuid() == 0) {
                /* another user's region, as root's daemon sees it: a seat_hwm of 0 that
                 * its owner wrote hides nothing */
                hwm = 0;
                ck_assert_int_eq(pwrite(fd, &hwm, sizeof hwm,
                                        (off_t) offsetof(struct hc_region_header, seat_hwm)),
                                 (ssize_t) sizeof hwm);
                ck_assert_int_eq(fchown(fd, 65534, 65534), 0);
                for (unsigned k = 0; k < HC_LOCK_FILES_MAX; k++)
                        ck_assert_int_eq(fchown(lock_fd[k], 65534, 65534), 0);
                ck_assert_int_eq(hc_count("u", TOPT()), SEATS);
                t0 = cpu_usec();
                n = hc_list("u", TOPT(), &l);
                list_usec = cpu_usec() - t0;
                ck_assert_int_eq(n, SEATS);
                ck_assert(l[SEATS - 1].flags & HC_INSTANCE_UNREADABLE);
                free(l);
                ck_assert_msg(list_usec < 2000 * 1000, "listing them as root took %lld us of CPU",
                              list_usec);
        }

        for (unsigned k = 0; k < HC_LOCK_FILES_MAX; k++)
                close(lock_fd[k]);
        ck_assert_int_eq(hc_count("u", TOPT()), 0);
        close(fd);
}
END_TEST

/* Symlinks, directories, FIFOs, group- or world-writable files and files of another
 * owner in place of a region are refused with -EPERM. */
START_TEST(test_region_untrusted_files_refused)
{
        hc_slot *s = NULL;
        int fd;

        ck_assert_int_eq(hc_create("target", TOPT()), 1);
        ck_assert_int_eq(symlink("target", region_path("sym")), 0);
        ck_assert_int_eq(hc_join("sym", TOPT(), &s), -EPERM);
        ck_assert_int_eq(hc_count("sym", TOPT()), -EPERM);

        ck_assert_int_eq(mkdir(region_path("dir"), 0700), 0);
        ck_assert_int_eq(hc_join("dir", TOPT(), &s), -EPERM);
        ck_assert_int_eq(hc_count("dir", TOPT()), -EPERM);

        ck_assert_int_eq(mkfifo(region_path("fifo"), 0600), 0);
        ck_assert_int_eq(hc_join("fifo", TOPT(), &s), -EPERM);
        ck_assert_int_eq(hc_count("fifo", TOPT()), -EPERM);

        ck_assert_int_eq(hc_create("open", TOPT()), 1);
        ck_assert_int_eq(chmod(region_path("open"), 0666), 0);
        if (geteuid() != 0) {
                ck_assert_int_eq(hc_join("open", TOPT(), &s), -EPERM);
                ck_assert_int_eq(hc_count("open", TOPT()), -EPERM);
        } else {
                /* root-owned regions may be shared with others: that is how the system
                 * scope works. A foreign owner is refused instead. */
                ck_assert_int_eq(hc_join("open", TOPT(), &s), 0);
                s = hc_leave(s);
                ck_assert_int_eq(chown(region_path("open"), 65534, 65534), 0);
                ck_assert_int_eq(hc_join("open", TOPT(), &s), -EPERM);
                /* root may look at another user's region (read-only, as a monitor does) */
                ck_assert_int_eq(hc_count("open", TOPT()), 0);
                ck_assert_int_eq(chmod(region_path("open"), 0600), 0);
                ck_assert_int_eq(hc_join("open", TOPT(), &s), -EPERM);
        }
        ck_assert_int_eq(hc_create("grp", TOPT()), 1);
        ck_assert_int_eq(chmod(region_path("grp"), 0620), 0);
        if (geteuid() != 0)
                ck_assert_int_eq(hc_join("grp", TOPT(), &s), -EPERM);

        /* a non-region regular file of ours is corrupt, not trusted */
        fd = open(region_path("plain"), O_CREAT | O_WRONLY, 0600);
        ck_assert_int_eq(write(fd, "hello", 5), 5);
        close(fd);
        ck_assert_int_eq(hc_join("plain", TOPT(), &s), -EBADMSG);
        ck_assert_ptr_null(s);
}
END_TEST

/* Retiring: refused while a seat is held, then the files are gone; a handle opened
 * before sees it retired and a join through it is -ESTALE; a new join makes a new one. */
START_TEST(test_region_retire)
{
        hc_region *rg = NULL;
        hc_slot *s = NULL, *t = NULL;

        ck_assert_int_eq(hc_join("ret", TOPT(.capacity = 130), &s), 0);
        ck_assert_int_eq(hc_region_open("ret", TOPT(), &rg), 0);
        ck_assert_int_eq(hc_remove("ret", TOPT()), -EBUSY);
        ck_assert_int_eq(hc_count("ret", TOPT()), 1);
        s = hc_leave(s);
        ck_assert_int_eq(hc_region_retired(rg), 0);
        ck_assert_int_eq(hc_remove("ret", TOPT()), 0);
        ck_assert_int_eq(hc_remove("ret", TOPT()), -ENOENT);
        ck_assert_uint_eq(dir_entries(), 0);
        ck_assert_int_eq(hc_region_retired(rg), 1);
        ck_assert_int_eq(hc_region_join(rg, TOPT(), &t), -ESTALE);
        ck_assert_int_eq(hc_region_count(rg), 0);
        ck_assert_int_eq(hc_region_wait(rg, 1, 0), 0);
        rg = hc_region_close(rg);
        ck_assert_int_eq(hc_join("ret", TOPT(), &s), 0);
        ck_assert_int_eq(hc_count("ret", TOPT()), 1);
        s = hc_leave(s);
}
END_TEST

/* A retirer killed while it holds the read locks and the mutex leaves a region that
 * still works, and whose retirement can be finished. */
START_TEST(test_region_retirer_killed)
{
        pid_t pid;
        int status;
        hc_slot *s = NULL;

        ck_assert_int_eq(hc_create("rk", TOPT()), 1);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                die_at("retire-locked");
                hc_remove("rk", TOPT());
                child_exit(0);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFSIGNALED(status));
        ck_assert_int_eq(hc_join("rk", TOPT(), &s), 0);
        ck_assert_int_eq(hc_count("rk", TOPT()), 1);
        s = hc_leave(s);
        ck_assert_int_eq(hc_remove("rk", TOPT()), 0);
        ck_assert_uint_eq(dir_entries(), 0);
}
END_TEST

/* A retirer killed after it marked the region retired, before it removed it, leaves a
 * region that works for everyone: handles opened before and after see its holders, and
 * it can be retired properly later. */
START_TEST(test_region_retirer_killed_after_flag)
{
        hc_region *rg = NULL;
        hc_instance *l = NULL;
        hc_slot *s = NULL, *t = NULL;
        int status;
        pid_t pid;

        ck_assert_int_eq(hc_region_open("rf", TOPT(.capacity = 100), &rg), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                die_at("retire-flagged");
                hc_remove("rf", TOPT());
                child_exit(0);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFSIGNALED(status));
        ck_assert_int_eq(hc_join("rf", TOPT(.max = 100), &s), 0);
        ck_assert_int_eq(hc_count("rf", TOPT()), 1);
        ck_assert_int_eq(hc_region_retired(rg), 0);
        ck_assert_int_eq(hc_region_list(rg, &l), 1);
        ck_assert_int_eq(l[0].pid, getpid());
        free(l);
        ck_assert_int_eq(hc_region_join(rg, TOPT(.max = 100), &t), 0);
        ck_assert_int_eq(hc_region_count(rg), 2);
        ck_assert_int_eq(hc_list("rf", TOPT(), &l), 2);
        free(l);
        s = hc_leave(s);
        t = hc_leave(t);
        ck_assert_int_eq(hc_remove("rf", TOPT()), 0);
        ck_assert_int_eq(hc_region_retired(rg), 1);
        ck_assert_uint_eq(dir_entries(), 0);
        rg = hc_region_close(rg);
}
END_TEST

/* Joiners racing a retirement never end up in a ghost: each seat they hold is in the
 * region file that is linked under the name. */
START_TEST(test_region_retire_race)
{
        for (int round = 0; round < 50; round++) {
                pid_t pid = fork();
                hc_slot *s = NULL;
                int status, r;

                ck_assert_int_ge(pid, 0);
                if (pid == 0) {
                        for (int i = 0; i < 20; i++)
                                (void) hc_remove("rr", TOPT());
                        child_exit(0);
                }
                for (int i = 0; i < 20; i++) {
                        r = hc_join("rr", TOPT(.max = 2), &s);
                        ck_assert_int_eq(r, 0);
                        /* while we hold it, nobody can retire it: it must be counted */
                        ck_assert_int_ge(hc_count("rr", TOPT()), 1);
                        s = hc_leave(s);
                }
                ck_assert_int_eq(waitpid(pid, &status, 0), pid);
                ck_assert(WIFEXITED(status));
        }
}
END_TEST

extern void (*hc_test_hook)(const char *point);

static void remove_once(const char *point) {
        if (strcmp(point, "create-exists") != 0)
                return;
        hc_test_hook = NULL;
        ck_assert_int_eq(hc_remove("r", TOPT()), 0);
}

/* hc_create() that finds the region, which another process then removes before the
 * check, creates it after all: it never reports -ENOENT (found by the chaos soak). */
START_TEST(test_region_create_removed_meanwhile)
{
        struct stat st;

        ck_assert_int_eq(hc_create("r", TOPT()), 1);
        hc_test_hook = remove_once;
        ck_assert_int_eq(hc_create("r", TOPT(.capacity = 3)), 1);
        ck_assert_ptr_null(hc_test_hook);
        ck_assert_int_eq(stat(region_path("r"), &st), 0);
        {
                hc_region *rg = NULL;
                ck_assert_int_eq(hc_region_open("r", TOPT(.flags = HC_NO_CREATE), &rg), 0);
                ck_assert_uint_eq(hc_region_capacity(rg), 3);
                rg = hc_region_close(rg);
        }
}
END_TEST

Suite *suite_region(void) {
        Suite *s = suite_create("region");
        TCase *tc;

        tc = tcase_new("core", 60);
        tcase_add_test(tc, test_region_create_then_exists);
        tcase_add_test(tc, test_region_create_without_renameat2);
        tcase_add_test(tc, test_region_retire);
        suite_add_tcase(s, tc);

        tc = tcase_new("limits", 120);
        tcase_add_test(tc, test_region_create_race);
        tcase_add_test(tc, test_region_retire_race);
        tcase_add_test(tc, test_region_create_removed_meanwhile);
        suite_add_tcase(s, tc);

        tc = tcase_new("crash", 60);
        tcase_add_test(tc, test_region_creator_killed);
        tcase_add_test(tc, test_region_retirer_killed);
        tcase_add_test(tc, test_region_retirer_killed_after_flag);
        tcase_add_test(tc, test_region_orphan_lockfiles_swept);
        suite_add_tcase(s, tc);

        tc = tcase_new("hostile", 60);
        tcase_add_test(tc, test_region_corrupt_header_fields);
        tcase_add_test(tc, test_region_garbage_records);
        tcase_add_test(tc, test_region_unreadable_records_bounded);
        tcase_add_test(tc, test_region_untrusted_files_refused);
        suite_add_tcase(s, tc);
        return s;
}
