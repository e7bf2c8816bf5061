/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* UTF-8 validation, as RFC 3629 defines it: the shortest form only, no surrogates. */
#include "utf8.h"

size_t utf8_sequence(const unsigned char *s, size_t len, uint32_t *ret_cp) {
        uint32_t cp;
        size_t n;

        if (s[0] < 0x80)
                n = 1, cp = s[0];
        else if (s[0] >= 0xc2 && s[0] <= 0xdf)
                n = 2, cp = s[0] & 0x1f;
        else if (s[0] >= 0xe0 && s[0] <= 0xef)
                n = 3, cp = s[0] & 0x0f;
        else if (s[0] >= 0xf0 && s[0] <= 0xf4)
                n = 4, cp = s[0] & 0x07;
        else
                return 0;               /* a continuation byte, 0xc0, 0xc1 or 0xf5..0xff */
        if (n > len)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (s[i] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;               /* overlong, out of range, or a surrogate */
        if (ret_cp)
                *ret_cp = cp;
        return n;
}
