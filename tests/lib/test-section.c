/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared variables: HC_SHARED_SECTION and hc_section_attach (lib/section.c). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

#ifndef HC_TEST_BUILDDIR
#define HC_TEST_BUILDDIR "."
#endif
#define HELPER HC_TEST_BUILDDIR "/tests/lib/section-helper"

struct shared {
        long counter;
        char who[32];
};

/* The same definition as the helper's: this process is a third, independent program. */
static HC_SHARED_SECTION(struct shared, local) = { .value = { .counter = 7, .who = "local" } };

/* An independent process (fork and exec) running tests/lib/section-helper. */
struct helper {
        pid_t pid;
        FILE *in, *out;
};

static struct helper helper_start(const char *name) {
        int to[2], from[2];
        struct helper h;

        ck_assert_int_eq(pipe2(to, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(from, O_CLOEXEC), 0);
        h.pid = fork();
        ck_assert_int_ge(h.pid, 0);
        if (h.pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (dup2(to[0], 0) < 0 || dup2(from[1], 1) < 0)
                        child_exit(126);
                execl(HELPER, "section-helper", test_dir, name, (char *) NULL);
                child_exit(127);
        }
        close(to[0]);
        close(from[1]);
        h.in = fdopen(to[1], "w");
        h.out = fdopen(from[0], "r");
        ck_assert_ptr_nonnull(h.in);
        ck_assert_ptr_nonnull(h.out);
        return h;
}

/* Sends CMD (NULL: none) and returns the answer line, without its newline. */
static const char *helper_say(struct helper *h, const char *cmd) {
        static char line[256];

        if (cmd) {
                ck_assert_int_ge(fprintf(h->in, "%s\n", cmd), 0);
                ck_assert_int_eq(fflush(h->in), 0);
        }
        ck_assert_ptr_nonnull(fgets(line, sizeof line, h->out));
        line[strcspn(line, "\n")] = '\0';
        return line;
}

/* Ends the helper (EOF on its input) and checks it exited 0. */
static void helper_stop(struct helper *h) {
        int st;

        fclose(h->in);
        fclose(h->out);
        ck_assert_int_eq(waitpid(h->pid, &st, 0), h->pid);
        ck_assert(WIFEXITED(st));
        ck_assert_int_eq(WEXITSTATUS(st), 0);
}

/* ---- core ---- */

/* Two independent programs share one copy of the variable; the first seeded it, and a
 * later one does not seed it again. */
START_TEST(test_section_shared_between_programs)
{
        struct helper a, b, c;

        a = helper_start("sec");
        ck_assert_str_eq(helper_say(&a, NULL), "attached 100 seed");
        b = helper_start("sec");
        ck_assert_str_eq(helper_say(&b, NULL), "attached 100 seed");

        ck_assert_str_eq(helper_say(&a, "inc"), "101 0");
        ck_assert_str_eq(helper_say(&b, "get"), "101 seed");      /* a's write, in b's variable */
        ck_assert_str_eq(helper_say(&b, "who b"), "ok 0");
        ck_assert_str_eq(helper_say(&b, "inc"), "102 0");
        ck_assert_str_eq(helper_say(&a, "get"), "102 b");
        helper_stop(&a);
        helper_stop(&b);

        /* the region keeps the values: a new program sees them, not its initial ones */
        c = helper_start("sec");
        ck_assert_str_eq(helper_say(&c, NULL), "attached 102 b");
        /* detaching keeps the value as a private copy that nobody else sees */
        ck_assert_str_eq(helper_say(&c, "detach"), "0 1102");
        helper_stop(&c);
        c = helper_start("sec");
        ck_assert_str_eq(helper_say(&c, NULL), "attached 102 b");
        helper_stop(&c);
}
END_TEST

/* In this process: seeded from our initial value, visible through the region's data,
 * attached once, detached once. */
START_TEST(test_section_attach_detach)
{
        hc_region *rg = NULL;
        struct shared *d;

        ck_assert_int_eq(hc_section_lock(&local, 0), -ENOENT);
        ck_assert_int_eq(hc_section_attach("here", TOPT(), &local, sizeof local), 0);
        ck_assert_int_eq(hc_section_attach("here", TOPT(), &local, sizeof local), -EBUSY);
        ck_assert_int_eq(local.value.counter, 7);
        ck_assert_int_eq(hc_region_open("here", TOPT(.flags = HC_NO_CREATE), &rg), 0);
        ck_assert_uint_eq(hc_region_data_size(rg), sizeof local);
        d = hc_region_data(rg);
        ck_assert_int_eq(d->counter, 7);
        ck_assert_str_eq(d->who, "local");

        ck_assert_int_eq(hc_section_lock(&local, 1000), 0);
        local.value.counter = 8;
        ck_assert_int_eq(hc_section_unlock(&local), 0);
        ck_assert_int_eq(d->counter, 8);                   /* the same page */

        ck_assert_int_eq(hc_section_detach(&local), 0);
        ck_assert_int_eq(local.value.counter, 8);          /* kept, now private */
        local.value.counter = 9;
        ck_assert_int_eq(d->counter, 8);
        ck_assert_int_eq(hc_section_detach(&local), -ENOENT);
        ck_assert_int_eq(hc_section_unlock(&local), -ENOENT);
        hc_region_close(rg);
}
END_TEST

/* ---- limits ---- */

/* An address or size that is not whole pages is refused before anything is touched, and
 * so is a region whose data area is too small. */
START_TEST(test_section_misaligned)
{
        static unsigned char buf[3 * HC_SECTION_ALIGN] __attribute__((aligned(HC_SECTION_ALIGN)));
        long ps = sysconf(_SC_PAGESIZE);

        ck_assert_int_eq(hc_section_attach("mis", TOPT(), buf + 1, (size_t) ps), -EINVAL);
        ck_assert_int_eq(hc_section_attach("mis", TOPT(), buf + 64, (size_t) ps), -EINVAL);
        ck_assert_int_eq(hc_section_attach("mis", TOPT(), buf, (size_t) ps - 1), -EINVAL);
        ck_assert_int_eq(hc_section_attach("mis", TOPT(), buf, 0), -EINVAL);
        ck_assert_int_eq(hc_section_attach("mis", TOPT(), NULL, (size_t) ps), -EINVAL);
        ck_assert_int_eq(dir_entries(), 0);

        ck_assert_int_eq(hc_create("small", TOPT(.data_size = 100)), 1);
        ck_assert_int_eq(hc_section_attach("small", TOPT(), &local, sizeof local), -EMSGSIZE);
        ck_assert_int_eq(hc_section_attach("bad/name", TOPT(), &local, sizeof local), -EINVAL);
}
END_TEST

/* ---- crash ---- */

/* A program killed while it holds the section's lock: the next one is told, and can
 * repair the value. */
START_TEST(test_section_owner_died)
{
        struct helper a, b;
        int st;

        a = helper_start("died");
        ck_assert_str_eq(helper_say(&a, NULL), "attached 100 seed");
        b = helper_start("died");
        ck_assert_str_eq(helper_say(&b, NULL), "attached 100 seed");
        ck_assert_int_ge(fprintf(a.in, "die\n"), 0);
        ck_assert_int_eq(fflush(a.in), 0);
        ck_assert_int_eq(waitpid(a.pid, &st, 0), a.pid);
        ck_assert(WIFSIGNALED(st));
        fclose(a.in);
        fclose(a.out);
        ck_assert_str_eq(helper_say(&b, "lock"), "1");             /* HC_OWNER_DIED */
        ck_assert_str_eq(helper_say(&b, "get"), "-1 seed");        /* half-way, as left */
        ck_assert_str_eq(helper_say(&b, "unlock"), "0");
        ck_assert_str_eq(helper_say(&b, "inc"), "0 0");            /* not reported again */
        helper_stop(&b);
}
END_TEST

Suite *suite_section(void) {
        Suite *s = suite_create("section");
        TCase *tc;

        tc = tcase_new("core", 60);
        tcase_add_test(tc, test_section_shared_between_programs);
        tcase_add_test(tc, test_section_attach_detach);
        suite_add_tcase(s, tc);

        tc = tcase_new("limits", 60);
        tcase_add_test(tc, test_section_misaligned);
        suite_add_tcase(s, tc);

        tc = tcase_new("crash", 60);
        tcase_add_test(tc, test_section_owner_died);
        suite_add_tcase(s, tc);
        return s;
}
