/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The escapers. Both walk S one UTF-8 sequence (or one invalid byte) at a time and write
 * a piece for it, or stop when the piece does not fit: a cut line is better than a
 * half escape that swallows what follows.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"
#include "utf8.h"

/* The longest piece: a 4-byte sequence as four "\xhh". */
#define PIECE_MAX (4 * 4 + 1)

/* Writes into OUT what stands for the N bytes at P, a valid sequence for CP, or for the
 * one invalid byte at P when N is 0; returns its length. */
typedef size_t piece_fn(const unsigned char *p, size_t n, uint32_t cp, char *out);

static bool is_control(uint32_t cp) {
        return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* Appends the pieces for S to BUF from offset O while they end at or before END; returns
 * the offset after the last one. */
static size_t walk(const char *s, piece_fn *piece, char *buf, size_t o, size_t end) {
        const unsigned char *p = (const unsigned char *) s;
        size_t len = strlen(s);

        for (size_t i = 0; i < len;) {
                char out[PIECE_MAX];
                uint32_t cp = 0;
                size_t n = utf8_sequence(p + i, len - i, &cp), k = piece(p + i, n, cp, out);

                if (o + k > end)
                        break;
                memcpy(buf + o, out, k);
                o += k;
                i += n > 0 ? n : 1;
        }
        return o;
}

static size_t text_piece(const unsigned char *p, size_t n, uint32_t cp, char *out) {
        size_t k = 0;

        if (n > 0 && cp == '\\')
                return (size_t) sprintf(out, "\\\\");
        if (n > 0 && cp == '\t')
                return (size_t) sprintf(out, "\\t");
        if (n > 0 && cp == '\n')
                return (size_t) sprintf(out, "\\n");
        if (n > 0 && !is_control(cp)) {
                memcpy(out, p, n);
                return n;
        }
        for (size_t j = 0; j < (n > 0 ? n : 1); j++)
                k += (size_t) sprintf(out + k, "\\x%02x", p[j]);
        return k;
}

char *escape_text(const char *s, char *buf, size_t size) {
        size_t o;

        assert(size >= 1);
        o = walk(s, text_piece, buf, 0, size - 1);
        buf[o] = '\0';
        return buf;
}

static size_t json_piece(const unsigned char *p, size_t n, uint32_t cp, char *out) {
        static const char short_forms[][2] = {
                { '\n', 'n' }, { '\t', 't' }, { '\r', 'r' }, { '\b', 'b' }, { '\f', 'f' },
                { '"', '"' }, { '\\', '\\' },
        };

        if (n == 0)
                return (size_t) sprintf(out, "\xef\xbf\xbd");      /* U+FFFD */
        for (size_t i = 0; i < sizeof short_forms / sizeof short_forms[0]; i++)
                if (cp == (uint32_t) short_forms[i][0])
                        return (size_t) sprintf(out, "\\%c", short_forms[i][1]);
        if (is_control(cp))
                return (size_t) sprintf(out, "\\u%04x", (unsigned) cp);
        memcpy(out, p, n);
        return n;
}

char *escape_json(const char *s, char *buf, size_t size) {
        size_t o;

        assert(size >= 3);
        buf[0] = '"';
        o = walk(s, json_piece, buf, 1, size - 2);      /* room for the quote and NUL */
        buf[o++] = '"';
        buf[o] = '\0';
        return buf;
}
