/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* 'headcount run' (run.c) and its two modes: restart.c (--restart) and replace.c
 * (--replace). */
#ifndef HC_CLI_RUN_H
#define HC_CLI_RUN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "child.h"
#include "cli.h"

/* How run joins: CMD inherits the seat, and the record names CMD from the start. */
#define RUN_OPTIONS(c, timeout)                                                           \
        CLI_OPTIONS(c, .max = (c)->max, .tag = (c)->tag, .timeout_ms = (timeout),          \
                    .flags = HC_INHERIT | HC_RECORD_LATER)

/* --restart: runs CMD again and again on the seat R holds; returns the exit status. */
int run_restart(struct run *r);

/* --replace: takes a seat, stopping the holder that blocks us if need be. Returns 0 and
 * the seat in *ret, or the exit status after saying why. */
int run_replace(const struct cli *c, hc_slot **ret);

#endif
