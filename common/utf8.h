/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* UTF-8 validation: the one decoder that headcount(1) and headcountd(8) trust. */
#ifndef HC_COMMON_UTF8_H
#define HC_COMMON_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Returns the length (1 to 4) of the valid UTF-8 sequence at S, which has LEN >= 1 bytes,
 * and stores its code point in *RET_CP; returns 0 when S does not start with one (an
 * overlong form, a surrogate, a code point past U+10FFFF, a stray continuation byte, or a
 * sequence cut short). RET_CP may be NULL.
 */
size_t utf8_sequence(const unsigned char *s, size_t len, uint32_t *ret_cp);

#endif
