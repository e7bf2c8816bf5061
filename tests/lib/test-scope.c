/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Names, scopes and directories (lib/scope.c, lib/files.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "helpers.h"

extern long hc_test_fs_type;

/* Every malformed name is -EINVAL from every entry point, and nothing is created. */
START_TEST(test_name_bad_names_rejected)
{
        char long_name[HC_NAME_MAX + 2];
        const char *bad[] = {
                "", "/", "..", ".", ".hidden", "a/b", "../x", "a b", "tab\there", "nl\n",
                "\x01" "ctl", "caf\xc3\xa9", "semi;colon", "star*", "Local\\", "Global\\.x",
                "Other\\name", long_name,
        };
        hc_slot *s = NULL;
        hc_instance *l = NULL;
        hc_region *rg = NULL;

        memset(long_name, 'a', HC_NAME_MAX + 1);
        long_name[HC_NAME_MAX + 1] = '\0';
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                ck_assert_int_eq(hc_name_valid(bad[i]), -EINVAL);
                ck_assert_int_eq(hc_join(bad[i], TOPT(), &s), -EINVAL);
                ck_assert_int_eq(hc_count(bad[i], TOPT()), -EINVAL);
                ck_assert_int_eq(hc_list(bad[i], TOPT(), &l), -EINVAL);
                ck_assert_int_eq(hc_wait(bad[i], TOPT(), 1, 0), -EINVAL);
                ck_assert_int_eq(hc_create(bad[i], TOPT()), -EINVAL);
                ck_assert_int_eq(hc_remove(bad[i], TOPT()), -EINVAL);
                ck_assert_int_eq(hc_region_open(bad[i], TOPT(), &rg), -EINVAL);
        }
        ck_assert_int_eq(hc_join(NULL, TOPT(), &s), -EINVAL);
        ck_assert_ptr_null(s);
        ck_assert_ptr_null(rg);
        ck_assert_uint_eq(dir_entries(), 0);
}
END_TEST

/* 200 bytes of the allowed characters is a name; a leading '-' or digit is fine. */
START_TEST(test_name_limits_accepted)
{
        char name[HC_NAME_MAX + 1];
        hc_slot *s = NULL;

        memset(name, 'x', HC_NAME_MAX);
        name[HC_NAME_MAX] = '\0';
        name[0] = '-';
        ck_assert_int_eq(hc_name_valid(name), 0);
        ck_assert_int_eq(hc_join(name, TOPT(), &s), 0);
        ck_assert_int_eq(hc_count(name, TOPT()), 1);
        s = hc_leave(s);
        ck_assert_int_eq(hc_name_valid("9.a_b-C"), 0);
        ck_assert_int_eq(hc_name_valid("Local\\web"), 0);
        ck_assert_int_eq(hc_name_valid("Global\\web"), 0);
}
END_TEST

/* Malformed options are -EINVAL before anything is touched. */
START_TEST(test_name_bad_options_rejected)
{
        char tag[HC_TAG_MAX + 2];
        hc_slot *s = NULL;
        hc_options small = { .size = 8 };

        memset(tag, 't', sizeof tag - 1);
        tag[sizeof tag - 1] = '\0';
        ck_assert_int_eq(hc_join("x", &small, &s), -EINVAL);
        ck_assert_int_eq(hc_join("x", TOPT(.tag = tag), &s), -EINVAL);
        ck_assert_int_eq(hc_join("x", TOPT(.max = HC_CAPACITY_MAX + 1), &s), -EINVAL);
        ck_assert_int_eq(hc_join("x", TOPT(.timeout_ms = -2), &s), -EINVAL);
        ck_assert_int_eq(hc_join("x", TOPT(.flags = 1u << 20), &s), -EINVAL);
        ck_assert_int_eq(hc_join("x", TOPT(.scope = 7), &s), -EINVAL);
        ck_assert_int_eq(hc_join("x", TOPT(.capacity = HC_CAPACITY_MAX + 1), &s), -EINVAL);
        ck_assert_int_eq(hc_join("x", TOPT(.mode = 04755), &s), -EINVAL);
        ck_assert_int_eq(hc_join("x", HC_OPTIONS(.dir = ""), &s), -EINVAL);
        ck_assert_int_eq(hc_wait("x", TOPT(), 0, 0), -EINVAL);
        ck_assert_ptr_null(s);
        ck_assert_uint_eq(dir_entries(), 0);
}
END_TEST

/* $HEADCOUNT_DIR replaces the user scope; opt->dir beats it; Global\ is the system scope. */
START_TEST(test_name_scope_precedence)
{
        char buf[512], other[300];

        snprintf(other, sizeof other, "%s/env", test_dir);
        ck_assert_int_eq(mkdir(other, 0700), 0);
        setenv("HEADCOUNT_DIR", other, 1);
        ck_assert_int_gt(hc_scope_dir(NULL, buf, sizeof buf), 0);
        ck_assert_str_eq(buf, other);
        ck_assert_int_gt(hc_scope_dir(TOPT(), buf, sizeof buf), 0);
        ck_assert_str_eq(buf, test_dir);
        ck_assert_int_gt(hc_scope_dir(HC_OPTIONS(.scope = HC_SCOPE_SYSTEM), buf, sizeof buf), 0);
        ck_assert_str_eq(buf, "/run/headcount");
        ck_assert_int_eq(hc_scope_dir(NULL, buf, 4), -ENAMETOOLONG);

        ck_assert_int_eq(hc_create("envregion", NULL), 1);
        snprintf(buf, sizeof buf, "%s/envregion", other);
        ck_assert_int_eq(access(buf, F_OK), 0);

        unsetenv("HEADCOUNT_DIR");
        setenv("XDG_RUNTIME_DIR", test_dir, 1);
        ck_assert_int_gt(hc_scope_dir(NULL, buf, sizeof buf), 0);
        snprintf(other, sizeof other, "%s/headcount", test_dir);
        ck_assert_str_eq(buf, other);
        /* the per-user directory is created 0700 on first use */
        ck_assert_int_eq(hc_create("Local\\mine", NULL), 1);
        {
                struct stat st;
                ck_assert_int_eq(stat(other, &st), 0);
                ck_assert_uint_eq(st.st_mode & 07777, 0700);
        }
        unsetenv("XDG_RUNTIME_DIR");
        ck_assert_int_gt(hc_scope_dir(NULL, buf, sizeof buf), 0);
        snprintf(other, sizeof other, "/dev/shm/headcount-%u", (unsigned) geteuid());
        ck_assert_str_eq(buf, other);
}
END_TEST

/* A directory that is missing, not a directory, or writable by others without the
 * sticky bit is refused with a documented code. */
START_TEST(test_name_bad_directories_refused)
{
        char path[300];
        hc_slot *s = NULL;
        int fd;

        snprintf(path, sizeof path, "%s/missing", test_dir);
        ck_assert_int_eq(hc_join("x", HC_OPTIONS(.dir = path), &s), -ENOENT);
        ck_assert_int_eq(hc_count("x", HC_OPTIONS(.dir = path)), -ENOENT);

        snprintf(path, sizeof path, "%s/file", test_dir);
        fd = open(path, O_CREAT | O_WRONLY, 0600);
        ck_assert_int_ge(fd, 0);
        close(fd);
        ck_assert_int_eq(hc_join("x", HC_OPTIONS(.dir = path), &s), -ENOTDIR);

        snprintf(path, sizeof path, "%s/open", test_dir);
        ck_assert_int_eq(mkdir(path, 0700), 0);
        ck_assert_int_eq(chmod(path, 0777), 0);
        ck_assert_int_eq(hc_join("x", HC_OPTIONS(.dir = path), &s), -EPERM);
        ck_assert_int_eq(chmod(path, 01777), 0);
        ck_assert_int_eq(hc_join("x", HC_OPTIONS(.dir = path), &s), 0);
        s = hc_leave(s);

        /* an explicit directory may be reached through a symlink (as /var/run is); its
         * target is what gets checked */
        snprintf(path, sizeof path, "%s/link", test_dir);
        ck_assert_int_eq(symlink("open", path), 0);
        ck_assert_int_eq(hc_join("y", HC_OPTIONS(.dir = path), &s), 0);
        s = hc_leave(s);

        /* the per-user default directory must be the real thing: a symlink planted in
         * its place is refused */
        snprintf(path, sizeof path, "%s/headcount", test_dir);
        ck_assert_int_eq(symlink("open", path), 0);
        setenv("XDG_RUNTIME_DIR", test_dir, 1);
        ck_assert_int_eq(hc_join("z", NULL, &s), -EPERM);
        ck_assert_int_eq(hc_create("z", NULL), -EPERM);
        unsetenv("XDG_RUNTIME_DIR");
        ck_assert_ptr_null(s);
}
END_TEST

/* A region directory on a network filesystem is -EREMOTE, and nothing is created. */
START_TEST(test_name_remote_filesystem_refused)
{
        hc_slot *s = NULL;

        hc_test_fs_type = 0x6969;         /* NFS */
        ck_assert_int_eq(hc_join("x", TOPT(), &s), -EREMOTE);
        ck_assert_int_eq(hc_create("x", TOPT()), -EREMOTE);
        ck_assert_uint_eq(dir_entries(), 0);
        hc_test_fs_type = 0xFF534D42;     /* CIFS */
        ck_assert_int_eq(hc_join("x", TOPT(), &s), -EREMOTE);
        hc_test_fs_type = 0;
        ck_assert_int_eq(hc_join("x", TOPT(), &s), 0);
        s = hc_leave(s);
}
END_TEST

static int count_names(const char *name, int count, void *userdata) {
        (*(int *) userdata)++;
        return 0;
}

/* headcountd's fleet socket (.headcountd.fleet) in a scope directory is no region's file:
 * hc_file_region() refuses it and hc_names() does not list it. */
START_TEST(test_name_agent_socket_ignored)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char path[4096];
        hc_slot *s = NULL;
        int fd, n = 0;

        ck_assert_int_eq(hc_file_region(".headcountd.fleet", NULL, 0), -EINVAL);
        (void) snprintf(path, sizeof path, "%s/.headcountd.fleet", test_dir);
        ck_assert_int_eq(hc_file_region(path, NULL, 0), -EINVAL);

        ck_assert_uint_lt(strlen(path), sizeof sa.sun_path);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        ck_assert_int_eq(listen(fd, 1), 0);
        ck_assert_int_eq(hc_join("web", TOPT(), &s), 0);
        ck_assert_int_eq(hc_names(TOPT(), count_names, &n), 0);
        ck_assert_int_eq(n, 1);                 /* web, and not the socket */
        s = hc_leave(s);
        (void) close(fd);
        ck_assert_int_eq(access(path, F_OK), 0);        /* nobody swept it away */
}
END_TEST

Suite *suite_scope(void) {
        Suite *s = suite_create("scope");
        TCase *tc;

        tc = tcase_new("core", 30);
        tcase_add_test(tc, test_name_limits_accepted);
        tcase_add_test(tc, test_name_scope_precedence);
        suite_add_tcase(s, tc);

        tc = tcase_new("hostile", 30);
        tcase_add_test(tc, test_name_bad_names_rejected);
        tcase_add_test(tc, test_name_bad_options_rejected);
        tcase_add_test(tc, test_name_bad_directories_refused);
        tcase_add_test(tc, test_name_remote_filesystem_refused);
        tcase_add_test(tc, test_name_agent_socket_ignored);
        suite_add_tcase(s, tc);
        return s;
}
