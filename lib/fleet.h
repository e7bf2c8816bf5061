/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fleet scope's client: talks to the local headcountd (the agent) over its socket. */
#ifndef HC_FLEET_H
#define HC_FLEET_H

#include "headcount.h"

#endif
