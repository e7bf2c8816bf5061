/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The user data area and its lock. */
#ifndef HC_DATA_H
#define HC_DATA_H

#include "handle.h"

int data_lock(hc_region *h, int timeout_ms);     /* 0, HC_OWNER_DIED, -errno */
int data_unlock(hc_region *h);

#endif
