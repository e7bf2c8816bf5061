/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The test runner: one suite per module of lib/, in fork mode. */
#include <check.h>
#include <stdlib.h>

#include "helpers.h"

int main(void) {
        SRunner *sr = srunner_create(suite_scope());
        int failed;

        srunner_add_suite(sr, suite_region());
        srunner_add_suite(sr, suite_join());
        srunner_add_suite(sr, suite_mutex());
        srunner_add_suite(sr, suite_wait());
        srunner_add_suite(sr, suite_listen());
        srunner_add_suite(sr, suite_data());
        srunner_add_suite(sr, suite_section());
        srunner_add_suite(sr, suite_fleet());
        srunner_add_suite(sr, suite_seatfd());
        srunner_add_suite(sr, suite_damaged());
        srunner_add_suite(sr, suite_hostile());
        srunner_set_fork_status(sr, CK_FORK);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
