/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Error lines on stderr in the one form both programs use,
 * "headcount: cannot join region 'web': Permission denied", made safe for a terminal.
 */
#ifndef HC_COMMON_MESSAGE_H
#define HC_COMMON_MESSAGE_H

#include <stdarg.h>

/* The name in front of every line ("headcount", "headcountd"); main() sets it first. */
extern const char *message_program;

/*
 * Prints "PROGRAM: MESSAGE" and a newline on stderr. The whole line goes through
 * escape_text(), so whatever it quotes (a word of the command line, a directory from the
 * environment) can neither send a control sequence to the terminal nor break the line.
 */
void message_error(const char *format, ...) __attribute__((format(printf, 1, 2)));
void message_verror(const char *format, va_list ap) __attribute__((format(printf, 1, 0)));

/* Prints "Try 'PROGRAM --help' for more information." on stderr, after a usage error. */
void message_usage_hint(void);

#endif
