/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness: forwarding to the primary. The first byte chooses the target:
 *   even  hc_args_unpack() on the rest; what unpacks packs again (hc_args_pack) and
 *         unpacks to the same argument vector and directory
 *   odd   the rest is written by a client to a live listener's socket (hc_listen, in
 *         this process), which then runs hc_listener_receive() until it has nothing more:
 *         the listener's frame parsing takes arbitrary bytes from any local peer
 * The listener must never crash or hang; a complete message gets a reply.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "headcount.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static hc_slot *slot;
static hc_listener *listener;
static struct sockaddr_un addr = { .sun_family = AF_UNIX };

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        const hc_options *o;

        (void) argc;
        (void) argv;
        snprintf(dir, sizeof dir, "/dev/shm/hc-fuzz-fwd-XXXXXX");
        if (!mkdtemp(dir))
                abort();
        o = HC_OPTIONS(.dir = dir, .max = 1, .peer_timeout_ms = 50, .message_max = 4096);
        if (hc_join("f", o, &slot) < 0 || hc_listen("f", o, slot, &listener) < 0)
                abort();
        /* the listener's socket: ".f.<nonce>.sock", the one socket in the directory */
        {
                DIR *d = opendir(dir);
                struct dirent *de;

                if (!d)
                        abort();
                while ((de = readdir(d)))
                        if (hc_file_region(de->d_name, NULL, 0) == HC_FILE_SOCKET)
                                snprintf(addr.sun_path, sizeof addr.sun_path, "%s/%s", dir, de->d_name);
                closedir(d);
                if (!addr.sun_path[0])
                        abort();
        }
        return 0;
}

static void unpack(const uint8_t *data, size_t size) {
        char *cwd = NULL, **argv = NULL, *cwd2 = NULL, **argv2 = NULL;
        void *packed = NULL;
        size_t len = 0;
        int n, n2;

        n = hc_args_unpack(data, size, &cwd, &argv);
        if (n < 0)
                return;
        if (!argv || argv[n] != NULL || !cwd)
                abort();
        if (hc_args_pack(cwd, argv, &packed, &len) == 0) {
                n2 = hc_args_unpack(packed, len, &cwd2, &argv2);
                if (n2 != n || strcmp(cwd, cwd2) != 0)
                        abort();
                for (int i = 0; i < n; i++)
                        if (strcmp(argv[i], argv2[i]) != 0)
                                abort();
                free(argv2);
                free(packed);
        }
        free(argv);
}

static void deliver(const uint8_t *data, size_t size) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        size_t off = 0;

        if (fd < 0 || connect(fd, (struct sockaddr *) &addr, sizeof addr) < 0)
                abort();
        /* write what fits, let the listener read, and go on: neither side may block */
        for (unsigned round = 0; round < 200; round++) {
                hc_message *m = NULL;
                int r;

                while (off < size) {
                        ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
                        if (w <= 0)
                                break;
                        off += (size_t) w;
                }
                if (off == size)
                        (void) shutdown(fd, SHUT_WR);
                (void) poll(&(struct pollfd) { .fd = hc_listener_fd(listener), .events = POLLIN },
                            1, 1);
                while ((r = hc_listener_receive(listener, &m)) == 0)
                        (void) hc_message_reply(m, "ok", 2);
                if (r != -EAGAIN)
                        abort();
                if (off == size && round > 2)
                        break;
        }
        close(fd);
        /* let the listener see the close and drop the peer */
        {
                hc_message *m = NULL;
                (void) poll(&(struct pollfd) { .fd = hc_listener_fd(listener), .events = POLLIN },
                            1, 1);
                while (hc_listener_receive(listener, &m) == 0)
                        (void) hc_message_reply(m, "ok", 2);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        if (data[0] % 2 == 0)
                unpack(data + 1, size - 1);
        else
                deliver(data + 1, size - 1);
        return 0;
}
