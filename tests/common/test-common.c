/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Check tests for common/: the UTF-8 decoder, both escapers (every control character
 * escaped, nothing cut in half), and how an instance's holder is described.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "escape.h"
#include "instance.h"
#include "proc-stat.h"
#include "utf8.h"

/* Valid UTF-8 is decoded; overlong forms, surrogates, code points past U+10FFFF, stray
 * continuation bytes and cut sequences are not. */
START_TEST(test_utf8_sequence)
{
        uint32_t cp = 0;

        ck_assert_uint_eq(utf8_sequence((const unsigned char *) "a", 1, &cp), 1);
        ck_assert_uint_eq(cp, 'a');
        ck_assert_uint_eq(utf8_sequence((const unsigned char *) "\xc2\x9b", 2, &cp), 2);
        ck_assert_uint_eq(cp, 0x9b);
        ck_assert_uint_eq(utf8_sequence((const unsigned char *) "\xe2\x82\xac", 3, &cp), 3);
        ck_assert_uint_eq(cp, 0x20ac);
        ck_assert_uint_eq(utf8_sequence((const unsigned char *) "\xf4\x8f\xbf\xbf", 4, &cp), 4);
        ck_assert_uint_eq(cp, 0x10ffff);

        ck_assert_uint_eq(utf8_sequence((const unsigned char *) "\xc0\xaf", 2, NULL), 0);
        ck_assert_uint_eq(utf8_sequence((const unsigned char *) "\xe0\x80\xaf", 3, NULL), 0);
        ck_assert_uint_eq(utf8_sequence((const unsigned char *) "\xed\xa0\x80", 3, NULL), 0);
        ck_assert_uint_eq(utf8_sequence((const unsigned char *) "\xf4\x90\x80\x80", 4, NULL), 0);
        ck_assert_uint_eq(utf8_sequence((const unsigned char *) "\x9b", 1, NULL), 0);
        ck_assert_uint_eq(utf8_sequence((const unsigned char *) "\xc2\x9b", 1, NULL), 0);
        ck_assert_uint_eq(utf8_sequence((const unsigned char *) "\xc2(", 2, NULL), 0);
        ck_assert_uint_eq(utf8_sequence((const unsigned char *) "\xff", 1, NULL), 0);
}
END_TEST

/* Every control character, C0, DEL and C1, is escaped byte by byte; a backslash, tab and
 * newline get their short forms; other UTF-8 passes; invalid bytes are escaped alone. */
START_TEST(test_escape_text_controls)
{
        char in[8], out[ESCAPE_TEXT_SIZE(4)], want[32];

        for (unsigned c = 1; c < 0x20; c++) {
                (void) snprintf(in, sizeof in, "%c", c);
                if (c == '\t' || c == '\n')
                        (void) snprintf(want, sizeof want, "\\%c", c == '\t' ? 't' : 'n');
                else
                        (void) snprintf(want, sizeof want, "\\x%02x", c);
                ck_assert_str_eq(escape_text(in, out, sizeof out), want);
        }
        ck_assert_str_eq(escape_text("\x7f", out, sizeof out), "\\x7f");
        for (unsigned c = 0x80; c <= 0x9f; c++) {
                (void) snprintf(in, sizeof in, "\xc2%c", c);
                (void) snprintf(want, sizeof want, "\\xc2\\x%02x", c);
                ck_assert_str_eq(escape_text(in, out, sizeof out), want);
        }
        ck_assert_str_eq(escape_text("\xc2\xa0", out, sizeof out), "\xc2\xa0");  /* U+00A0 */
        ck_assert_str_eq(escape_text("\\", out, sizeof out), "\\\\");
        ck_assert_str_eq(escape_text("\xed\xa0\x80", out, sizeof out), "\\xed\\xa0\\x80");
        ck_assert_str_eq(escape_text("", out, sizeof out), "");
}
END_TEST

/* The worst case fits ESCAPE_TEXT_SIZE(); a smaller buffer gets whole pieces only. */
START_TEST(test_escape_text_limits)
{
        char out[ESCAPE_TEXT_SIZE(4)];

        ck_assert_str_eq(escape_text("\x1b\x7f\xc2\x9b", out, sizeof out),
                         "\\x1b\\x7f\\xc2\\x9b");
        ck_assert_uint_eq(strlen(out), sizeof out - 1);
        ck_assert_str_eq(escape_text("ab\xc2\x9b", out, 10), "ab");       /* not "ab\xc2" */
        ck_assert_str_eq(escape_text("ab\xc2\x9b", out, 11), "ab\\xc2\\x9b");
        ck_assert_str_eq(escape_text("a\xc3\xa9", out, 3), "a");          /* not half of é */
        ck_assert_str_eq(escape_text("abc", out, 1), "");
}
END_TEST

/* JSON: controls as \u00hh or short forms, quotes and backslashes escaped, invalid bytes
 * as U+FFFD, the rest as it is; a smaller buffer still gets the closing quote. */
START_TEST(test_escape_json)
{
        char out[ESCAPE_JSON_SIZE(16)];

        ck_assert_str_eq(escape_json("\x1b[1m\xc2\x9b\xc2\x9d\x7f\xc2\x85", out, sizeof out),
                         "\"\\u001b[1m\\u009b\\u009d\\u007f\\u0085\"");
        ck_assert_str_eq(escape_json("\"\\\n\t\r\b\f/", out, sizeof out),
                         "\"\\\"\\\\\\n\\t\\r\\b\\f/\"");
        ck_assert_str_eq(escape_json("caf\xc3\xa9 \xff\xc3(", out, sizeof out),
                         "\"caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd(\"");
        ck_assert_str_eq(escape_json("\x01\x01\x01", out, ESCAPE_JSON_SIZE(3)),
                         "\"\\u0001\\u0001\\u0001\"");
        ck_assert_str_eq(escape_json("ab\x1b", out, 9), "\"ab\"");
        ck_assert_str_eq(escape_json("ab", out, 3), "\"\"");
}
END_TEST

/* A holder is "pid N", qualified when the PID is from another namespace or the record
 * from somebody who could have written anything. */
START_TEST(test_instance_describe)
{
        hc_instance in = { .pid = 4242 };
        char buf[INSTANCE_DESCRIPTION_MAX];

        ck_assert_str_eq(instance_describe(&in, buf, sizeof buf), "pid 4242");
        ck_assert(instance_verified(&in));
        in.flags = HC_INSTANCE_UNVERIFIED;
        ck_assert_str_eq(instance_describe(&in, buf, sizeof buf), "pid 4242 (unverified)");
        ck_assert(!instance_verified(&in));
        in.pid = 2;
        in.flags = HC_INSTANCE_OTHER_PIDNS;
        ck_assert_str_eq(instance_describe(&in, buf, sizeof buf),
                         "pid 2 in another PID namespace");
        in.flags |= HC_INSTANCE_UNVERIFIED;
        ck_assert_str_eq(instance_describe(&in, buf, sizeof buf),
                         "pid 2 in another PID namespace (unverified)");
        in.pid = -2147483647 - 1;
        ck_assert_uint_lt(strlen(instance_describe(&in, buf, sizeof buf)), sizeof buf - 1);
        in.flags = HC_INSTANCE_NO_RECORD;
        ck_assert_str_eq(instance_describe(&in, buf, sizeof buf), "an unreadable record");
}
END_TEST

/* A child whose name looks like the end of the stat line's name field, in a process group
 * of its own: read while it lives, as a zombie, and once reaped. */
START_TEST(test_proc_stat_read) {
        struct proc_stat st;
        int p[2];
        pid_t child;
        char c;

        ck_assert_int_eq(proc_stat_read(0, &st), -ESRCH);
        ck_assert_int_eq(pipe(p), 0);
        child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
                (void) prctl(PR_SET_NAME, "x) Z 1 1 9 (");
                (void) setpgid(0, 0);
                (void) !write(p[1], "r", 1);
                for (;;)
                        pause();
        }
        ck_assert_int_eq(read(p[0], &c, 1), 1);
        ck_assert_int_eq(proc_stat_read(child, &st), 0);
        ck_assert_msg(st.state == 'S' || st.state == 'R', "state %c", st.state);
        ck_assert_int_eq(st.ppid, getpid());
        ck_assert_int_eq(st.pgrp, child);
        ck_assert_int_eq(kill(child, SIGKILL), 0);
        for (int i = 0;; i++) {          /* dead, not reaped: a zombie, in a moment */
                ck_assert_int_eq(proc_stat_read(child, &st), 0);
                if (st.state == 'Z')
                        break;
                ck_assert_msg(i < 20000, "no zombie after 20 s: state %c", st.state);
                nanosleep(&(struct timespec) { .tv_nsec = 1000000 }, NULL);
        }
        ck_assert_int_eq(waitpid(child, NULL, 0), child);
        ck_assert_int_eq(proc_stat_read(child, &st), -ENOENT);
        close(p[0]);
        close(p[1]);
}
END_TEST

static Suite *suite_common(void) {
        Suite *s = suite_create("common");
        TCase *tc;

        tc = tcase_create("core");
        tcase_add_test(tc, test_utf8_sequence);
        tcase_add_test(tc, test_escape_text_controls);
        tcase_add_test(tc, test_escape_json);
        tcase_add_test(tc, test_instance_describe);
        tcase_add_test(tc, test_proc_stat_read);
        suite_add_tcase(s, tc);

        tc = tcase_create("limits");
        tcase_add_test(tc, test_escape_text_limits);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(suite_common());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
