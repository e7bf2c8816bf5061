/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Prints the compiler's sizes and offsets of the structures that the Python module
 * mirrors with ctypes (python/headcount), one "STRUCT SIZE" or "STRUCT.FIELD OFFSET" per
 * line, for tests/python/test_layout.py to compare: a field added, moved or resized in
 * headcount.h fails the suite instead of corrupting memory.
 */
#include <stdio.h>

#include "headcount.h"

#define SIZE(t) printf("%s %zu\n", #t, sizeof(t))
#define FIELD(t, f) printf("%s.%s %zu\n", #t, #f, offsetof(t, f))

int main(void) {
        SIZE(hc_options);
        FIELD(hc_options, size);
        FIELD(hc_options, scope);
        FIELD(hc_options, dir);
        FIELD(hc_options, max);
        FIELD(hc_options, tag);
        FIELD(hc_options, timeout_ms);
        FIELD(hc_options, mode);
        FIELD(hc_options, capacity);
        FIELD(hc_options, data_size);
        FIELD(hc_options, flags);
        FIELD(hc_options, message_max);
        FIELD(hc_options, peer_timeout_ms);
        FIELD(hc_options, error_text);
        FIELD(hc_options, error_text_size);

        SIZE(hc_instance);
        FIELD(hc_instance, slot);
        FIELD(hc_instance, pid);
        FIELD(hc_instance, uid);
        FIELD(hc_instance, seq);
        FIELD(hc_instance, joined_usec);
        FIELD(hc_instance, pidns);
        FIELD(hc_instance, boot_id);
        FIELD(hc_instance, flags);
        FIELD(hc_instance, tag);

        SIZE(hc_fleet_instance);
        FIELD(hc_fleet_instance, instance);
        FIELD(hc_fleet_instance, fence);
        FIELD(hc_fleet_instance, host);

        SIZE(hc_run);
        FIELD(hc_run, slot);
        FIELD(hc_run, run);
        FIELD(hc_run, pid);
        FIELD(hc_run, uid);
        FIELD(hc_run, seq);
        FIELD(hc_run, ended_seq);
        FIELD(hc_run, started_usec);
        FIELD(hc_run, ended_usec);
        FIELD(hc_run, pidns);
        FIELD(hc_run, how);
        FIELD(hc_run, exit_status);
        FIELD(hc_run, signal);
        FIELD(hc_run, flags);
        FIELD(hc_run, tag);

        SIZE(hc_message);
        FIELD(hc_message, data);
        FIELD(hc_message, size);
        FIELD(hc_message, pid);
        FIELD(hc_message, uid);
        FIELD(hc_message, gid);

        /* the constants the module copies */
        printf("HC_NAME_MAX %d\nHC_TAG_MAX %d\nHC_HOST_MAX %d\nHC_WAIT_RECHECK_MS %d\n",
               HC_NAME_MAX, HC_TAG_MAX, HC_HOST_MAX, HC_WAIT_RECHECK_MS);
        printf("HC_SCOPE_SYSTEM %d\nHC_SCOPE_FLEET %d\n", HC_SCOPE_SYSTEM, HC_SCOPE_FLEET);
        printf("HC_NO_CREATE %d\nHC_INHERIT %d\nHC_ALLOW_ROOT %d\n", HC_NO_CREATE, HC_INHERIT,
               HC_ALLOW_ROOT);
        printf("HC_INSTANCE_NO_RECORD %d\nHC_INSTANCE_OTHER_PIDNS %d\nHC_INSTANCE_UNVERIFIED %d\n",
               HC_INSTANCE_NO_RECORD, HC_INSTANCE_OTHER_PIDNS, HC_INSTANCE_UNVERIFIED);
        printf("HC_RUN_RUNNING %d\nHC_RUN_LEFT %d\nHC_RUN_DIED %d\n", HC_RUN_RUNNING,
               HC_RUN_LEFT, HC_RUN_DIED);
        return 0;
}
