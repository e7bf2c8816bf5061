/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* headcount(1)'s command line (options.c): its commands, their options, the parser. */
#ifndef HC_CLI_OPTIONS_H
#define HC_CLI_OPTIONS_H

#include <stdbool.h>

#include "cli.h"

/* The commands, as struct cli's command_id numbers them. */
enum {
        CMD_RUN, CMD_COUNT, CMD_LIST, CMD_NAMES, CMD_WAIT, CMD_CREATE, CMD_REMOVE, CMD_SEND,
        CMD_PATH, CMD_JOIN, CMD_LEAVE, CMD_STATUS, CMD_HELP, CMD_HISTORY,
        N_COMMANDS,
};

/*
 * Parses ARGV into *C and checks everything its command relies on. Returns true when C's
 * command is to be run; false when there is nothing more to do, with the exit status in
 * *RET_STATUS: 0 after --help or --version (printed), EXIT_USAGE after a usage error (one
 * line and a hint on stderr). Never exits.
 */
bool parse_argv(int argc, char *argv[], struct cli *c, int *ret_status);

/* Whether command ID takes a region's name. */
bool command_takes_name(int id);

#endif
