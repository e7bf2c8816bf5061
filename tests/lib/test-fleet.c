/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fleet scope's client (lib/fleet.c) without an agent: no headcountd serves the
 * directory (-EHOSTDOWN, explained in error_text), what the fleet scope does not offer
 * (-EOPNOTSUPP), and what is checked before anything is asked. The calls against a real
 * headcountd and etcd are in check-fleet.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "helpers.h"

#define FOPT(...) HC_OPTIONS(.scope = HC_SCOPE_FLEET, .dir = test_dir, __VA_ARGS__)

static int count_cb(const char *name, int count, void *userdata) {
        (void) name;
        (void) count;
        ++*(int *) userdata;
        return 0;
}

/* Every fleet call says -EHOSTDOWN, names the directory, and leaves *ret alone. */
static void all_host_down(const char *why) {
        char text[512], want[512];
        hc_slot *s = (hc_slot *) 0x1;
        hc_instance *l = (hc_instance *) 0x1, one;
        hc_fleet_instance *fl = (hc_fleet_instance *) 0x1;
        int called = 0;

        snprintf(want, sizeof want, "no headcountd serves the fleet scope in %s", test_dir);
        ck_assert_int_eq(hc_join("web", FOPT(.error_text = text, .error_text_size = sizeof text), &s),
                         -EHOSTDOWN);
        ck_assert_msg(strcmp(text, want) == 0, "%s: error text '%s'", why, text);
        ck_assert_ptr_eq(s, (hc_slot *) 0x1);
        text[0] = 'x';
        ck_assert_int_eq(hc_count("web", FOPT(.error_text = text, .error_text_size = sizeof text)),
                         -EHOSTDOWN);
        ck_assert_str_eq(text, want);
        ck_assert_int_eq(hc_list("web", FOPT(), &l), -EHOSTDOWN);
        ck_assert_ptr_eq(l, (hc_instance *) 0x1);
        ck_assert_int_eq(hc_fleet_list("web", FOPT(), &fl), -EHOSTDOWN);
        ck_assert_ptr_eq(fl, (hc_fleet_instance *) 0x1);
        ck_assert_int_eq(hc_primary("web", FOPT(), &one), -EHOSTDOWN);
        ck_assert_int_eq(hc_wait("web", FOPT(), 1, -1), -EHOSTDOWN);
        ck_assert_int_eq(hc_names(FOPT(), count_cb, &called), -EHOSTDOWN);
        ck_assert_int_eq(called, 0);
        ck_assert_int_eq(hc_remove("web", FOPT()), -EHOSTDOWN);
        ck_assert_int_eq(hc_create("web", FOPT()), -EHOSTDOWN);
        ck_assert_int_eq(hc_fleet_create("web", FOPT(), NULL), -EHOSTDOWN);
}

/* No socket in the directory, or a directory that does not exist. */
START_TEST(test_fleet_no_agent)
{
        char missing[300], text[512];
        hc_slot *s = NULL;

        all_host_down("no socket");
        snprintf(missing, sizeof missing, "%s/none", test_dir);
        ck_assert_int_eq(hc_join("web", HC_OPTIONS(.scope = HC_SCOPE_FLEET, .dir = missing,
                                                   .error_text = text, .error_text_size = sizeof text),
                                 &s), -EHOSTDOWN);
        ck_assert_ptr_nonnull(strstr(text, missing));
        ck_assert_ptr_null(s);
        /* asking left nothing behind */
        ck_assert_uint_eq(dir_entries(), 0);
}
END_TEST

/* The socket of an agent that died: nobody accepts on it. */
START_TEST(test_fleet_dead_agent)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        snprintf(sa.sun_path, sizeof sa.sun_path, "%s/.headcountd.fleet", test_dir);
        fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        ck_assert_int_eq(listen(fd, 1), 0);
        close(fd);                        /* the file stays, nobody listens */
        all_host_down("dead socket");
}
END_TEST

/* Without a directory named, the user scope's ($HEADCOUNT_DIR here) is asked, then the
 * system scope's; with one named, that one only. */
START_TEST(test_fleet_discovery)
{
        char text[1024], want[1024];

        setenv("HEADCOUNT_DIR", test_dir, 1);
        ck_assert_int_eq(hc_count("web", HC_OPTIONS(.scope = HC_SCOPE_FLEET, .error_text = text,
                                                    .error_text_size = sizeof text)), -EHOSTDOWN);
        snprintf(want, sizeof want, "no headcountd serves the fleet scope in %s", test_dir);
        ck_assert_str_eq(text, want);     /* $HEADCOUNT_DIR is named: no fallback */
        unsetenv("HEADCOUNT_DIR");
        setenv("XDG_RUNTIME_DIR", test_dir, 1);
        if (access("/run/headcountd/fleet.sock", F_OK) == 0)
                return;                   /* a system agent serves this machine */
        ck_assert_int_eq(hc_count("web", HC_OPTIONS(.scope = HC_SCOPE_FLEET, .error_text = text,
                                                    .error_text_size = sizeof text)), -EHOSTDOWN);
        snprintf(want, sizeof want, "no headcountd serves the fleet scope in %s/headcount (nor in "
                 "/run/headcount)", test_dir);
        ck_assert_str_eq(text, want);
}
END_TEST

/* error_text is cut to its size and NUL-terminated; options too short to have the field
 * are never written beyond. */
START_TEST(test_fleet_error_text_bounds)
{
        char text[8];
        char guard[64];
        hc_options o = { .size = HC_OPTIONS_SIZE_V1, .scope = HC_SCOPE_FLEET, .dir = test_dir };

        memset(text, 'x', sizeof text);
        ck_assert_int_eq(hc_count("web", FOPT(.error_text = text, .error_text_size = sizeof text)),
                         -EHOSTDOWN);
        ck_assert_str_eq(text, "no head");
        memset(guard, 'g', sizeof guard);
        o.error_text = guard;             /* beyond .size: must not be read */
        o.error_text_size = sizeof guard;
        ck_assert_int_eq(hc_count("web", &o), -EHOSTDOWN);
        ck_assert_int_eq(guard[0], 'g');
        ck_assert_int_eq(hc_count("web", FOPT(.error_text = NULL, .error_text_size = 100)), -EHOSTDOWN);
}
END_TEST

/* Bad names and options are refused before the agent is looked for. */
START_TEST(test_fleet_bad_arguments)
{
        hc_slot *s = NULL;
        char tag[HC_TAG_MAX + 2], text[64] = "stale";

        memset(tag, 't', sizeof tag - 1);
        tag[sizeof tag - 1] = '\0';
        ck_assert_int_eq(hc_join("Global\\web", FOPT(.error_text = text,
                                                      .error_text_size = sizeof text), &s), -EINVAL);
        ck_assert_str_eq(text, "");       /* nothing to say, and nothing left from before */
        ck_assert_int_eq(hc_join("Local\\web", FOPT(), &s), -EINVAL);
        ck_assert_int_eq(hc_join(".web", FOPT(), &s), -EINVAL);
        ck_assert_int_eq(hc_join("web", FOPT(.tag = tag), &s), -EINVAL);
        ck_assert_int_eq(hc_join("web", FOPT(.timeout_ms = -2), &s), -EINVAL);
        ck_assert_int_eq(hc_join("web", FOPT(), NULL), -EINVAL);
        ck_assert_int_eq(hc_count("a/b", FOPT()), -EINVAL);
        ck_assert_int_eq(hc_wait("web", FOPT(), 0, 0), -EINVAL);
        ck_assert_int_eq(hc_fleet_list("web", FOPT(), NULL), -EINVAL);
        ck_assert_int_eq(hc_fleet_list("web", &(hc_options) { .size = 4 }, NULL), -EINVAL);
        ck_assert_ptr_null(s);
}
END_TEST

/* What only a local region has is not offered in the fleet scope. */
START_TEST(test_fleet_unsupported)
{
        static HC_SHARED_SECTION(int, shared);
        const hc_options *f = FOPT();
        hc_region *rg = NULL;
        hc_listener *l = NULL;
        hc_slot *s = NULL;
        void *reply = NULL;
        size_t len = 0;
        uint64_t fence;
        char buf[256];

        ck_assert_int_eq(hc_region_open("web", f, &rg), -EOPNOTSUPP);
        ck_assert_int_eq(hc_count_approx("web", f), -EOPNOTSUPP);
        ck_assert_int_eq(hc_reap("web", f), -EOPNOTSUPP);
        ck_assert_int_eq(hc_send("web", f, "x", 1, &reply, &len), -EOPNOTSUPP);
        ck_assert_int_eq(hc_scope_dir(f, buf, sizeof buf), -EOPNOTSUPP);
        ck_assert_int_eq(hc_section_attach("web", f, &shared, sizeof shared), -EOPNOTSUPP);
        ck_assert_ptr_null(rg);
        ck_assert_ptr_null(reply);

        /* a local seat has no fence and cannot be lost; a handle takes no fleet join */
        ck_assert_int_eq(hc_region_open("web", TOPT(), &rg), 0);
        ck_assert_int_eq(hc_region_join(rg, f, &s), -EOPNOTSUPP);
        ck_assert_int_eq(hc_join("web", TOPT(), &s), 0);
        ck_assert_int_eq(hc_listen("web", f, s, &l), -EOPNOTSUPP);
        ck_assert_int_eq(hc_slot_fence(s, &fence), -EOPNOTSUPP);
        ck_assert_int_eq(hc_slot_lost_fd(s), -EOPNOTSUPP);
        ck_assert_int_eq(hc_slot_lost(s), -EOPNOTSUPP);
        ck_assert_int_eq(hc_slot_is_primary("web", f, s), -EINVAL);
        ck_assert_int_eq(hc_slot_fence(NULL, &fence), -EINVAL);
        ck_assert_int_eq(hc_slot_lost(NULL), -EINVAL);
        ck_assert_int_eq(hc_slot_lost_fd(NULL), -EINVAL);
        ck_assert_ptr_null(l);
        s = hc_leave(s);
        rg = hc_region_close(rg);
}
END_TEST

Suite *suite_fleet(void) {
        Suite *s = suite_create("fleet");
        TCase *tc = tcase_new("client", 30);

        tcase_add_test(tc, test_fleet_no_agent);
        tcase_add_test(tc, test_fleet_dead_agent);
        tcase_add_test(tc, test_fleet_discovery);
        tcase_add_test(tc, test_fleet_error_text_bounds);
        tcase_add_test(tc, test_fleet_bad_arguments);
        tcase_add_test(tc, test_fleet_unsupported);
        suite_add_tcase(s, tc);
        return s;
}
