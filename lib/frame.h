/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The forwarding protocol shared by listen.c and send.c: one request and one reply per
 * connection, each a struct frame followed by its bytes. A reply frame with a non-zero
 * status carries no bytes and tells the sender why it was refused (EPERM: wrong uid;
 * EMSGSIZE; EBADMSG: bad frame; EBUSY: too many peers).
 */
#ifndef HC_FRAME_H
#define HC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "headcount.h"

#define FRAME_REQUEST UINT32_C(0x48434d31)       /* "HCM1" */
#define FRAME_REPLY UINT32_C(0x48435231)         /* "HCR1" */
#define MESSAGE_MAX_LIMIT ((size_t) 1 << 30)

struct frame {
        uint32_t magic;          /* FRAME_REQUEST or FRAME_REPLY */
        uint32_t size;           /* bytes that follow */
        int32_t status;          /* replies: 0, or the errno that refused the request */
        uint32_t reserved;       /* zero */
};

/* opt->message_max, checked; HC_MESSAGE_MAX_DEFAULT when 0 or not covered by opt->size. */
static inline int frame_message_max(const hc_options *opt, size_t *ret) {
        size_t v = 0;

        if (opt && opt->size >= offsetof(hc_options, message_max) + sizeof opt->message_max)
                v = opt->message_max;
        if (v > MESSAGE_MAX_LIMIT)
                return -22;       /* -EINVAL */
        *ret = v ? v : HC_MESSAGE_MAX_DEFAULT;
        return 0;
}

#endif
