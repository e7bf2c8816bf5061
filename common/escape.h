/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Escaping text that came from somebody else (a tag, a word of the command line, a
 * directory from the environment) before it reaches a terminal, a log, D-Bus or JSON.
 *
 * Control characters are the C0 controls (U+0000 to U+001F), DEL (U+007F) and the C1
 * controls (U+0080 to U+009F). The C1 controls are valid UTF-8 (U+009B is "\xc2\x9b"),
 * and a terminal that takes them as 8-bit controls treats U+009B as CSI, U+009D as OSC
 * and U+009C as ST, just as it treats ESC [: none of them may pass.
 */
#ifndef HC_COMMON_ESCAPE_H
#define HC_COMMON_ESCAPE_H

#include <stddef.h>

/* The buffer that always holds the escaped form of LEN bytes, NUL included. */
#define ESCAPE_TEXT_SIZE(len) (4 * (size_t) (len) + 1)
#define ESCAPE_JSON_SIZE(len) (6 * (size_t) (len) + 3)

/*
 * Writes S as one line of valid UTF-8 without control characters into BUF (SIZE >= 1
 * bytes) and returns BUF. Valid UTF-8 that is no control character passes as it is; a
 * backslash becomes "\\", a tab "\t", a newline "\n", and every other byte of a control
 * character, and every byte that is not part of valid UTF-8, becomes "\xhh": ESC is
 * "\x1b", DEL "\x7f", U+009B "\xc2\x9b". Each escape stands for one byte, so the bytes
 * can be told back (printf '%b'). What does not fit in SIZE is left off, never half an
 * escape or half a character.
 */
char *escape_text(const char *s, char *buf, size_t size);

/*
 * Writes S as a JSON string literal, quotes included, into BUF (SIZE >= 3 bytes) and
 * returns BUF. Control characters are written as "\u00hh" (or "\n", "\t", "\r", "\b",
 * "\f"), '"' and '\' are escaped, a byte that is not part of valid UTF-8 becomes U+FFFD
 * (JSON text is UTF-8), and everything else passes as it is. Truncated as escape_text().
 */
char *escape_json(const char *s, char *buf, size_t size);

#endif
