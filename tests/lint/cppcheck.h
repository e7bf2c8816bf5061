/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Macros from system headers that cppcheck does not read, as those headers define them. */
#define SD_BUS_PARAM(x) #x "\0"
