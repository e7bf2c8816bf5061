/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Retiring a region that nobody is in: hc_remove(). */
#ifndef HC_RETIRE_H
#define HC_RETIRE_H

#include "handle.h"

/* 0, -EBUSY when a seat is held, -ENOENT when already retired, -EACCES, -ETIMEDOUT. */
int region_retire(hc_region *h);

#endif
