/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The names of a region's files (format.h lists them), and the one parser. */
#ifndef HC_FILES_H
#define HC_FILES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "headcount.h"

#define FILE_NAME_MAX (HC_NAME_MAX + 48)

int file_lock_name(char *buf, size_t len, const char *name, uint64_t id, unsigned k);
/* The own lock file of seat SEAT, handed to a command by the holder whose record has SEQ. */
int file_seat_name(char *buf, size_t len, const char *name, uint64_t id, unsigned seat, uint64_t seq);
int file_temp_name(char *buf, size_t len, const char *name, uint64_t id);
int file_socket_name(char *buf, size_t len, const char *name, uint64_t nonce);

/*
 * Parses a file name of the scope directory: returns HC_FILE_REGION (NAME itself),
 * HC_FILE_LOCK, HC_FILE_SEAT, HC_FILE_TEMPORARY or HC_FILE_SOCKET and fills RET_NAME
 * (HC_NAME_MAX + 1 bytes), *RET_ID (the region id, or the socket's nonce) and *RET_K (lock
 * file number, or a seat file's seat);
 * -EINVAL for any other name. RET_ID and RET_K may be NULL.
 */
int file_parse(const char *fn, char *ret_name, uint64_t *ret_id, unsigned *ret_k);

/* Removes the listening sockets of region NAME that we may remove and that nobody
 * listens on any more, except the one with nonce KEEP (0: none). */
void files_remove_sockets(int dirfd, const char *name, uint64_t keep);

#endif
