/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Retirement. Under the region lock, with a read lock on every seat (so that nobody can
 * take one meanwhile, and -EBUSY when somebody holds one), the retirer marks the region
 * retired, then unlinks its name, its lock files and its sockets, and lets go. A joiner
 * that gets a seat afterwards finds the mark and the file unlinked, and starts over by
 * name; a retirer that dies after the mark leaves a region whose name is still there, and
 * the next look under the lock takes the mark back (handle.c): nobody joins a ghost.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "count.h"
#include "files.h"
#include "hc-internal.h"
#include "retire.h"
#include "seat.h"
#include "util.h"

int region_retire(hc_region *h) {
        int fds[HC_LOCK_FILES_MAX];
        char fn[FILE_NAME_MAX];
        struct stat st;
        unsigned k = 0;
        int r;

        if (!h->r.writable)
                return -EACCES;
        r = handle_lock(h, handle_lock_timeout(h));
        if (r < 0)
                return r == -ESTALE ? -ENOENT : r;        /* lock file 0 gone: retired */
        if ((region_word(&h->r, WORD_FLAGS) & HC_REGION_RETIRED) && region_unlinked(&h->r) > 0) {
                r = -ENOENT;
                goto finish;
        }
        for (; k < h->n_files; k++) {
                int qfd;

                r = handle_query_fd(h, k, &qfd);
                if (r < 0)
                        goto finish;
                /* a description of our own, so that the read locks go away with it */
                fds[k] = fd_reopen(qfd, O_RDONLY);
                if (fds[k] < 0) {
                        r = fds[k];
                        goto finish;
                }
                r = seat_read_lock(fds[k], seat_first(k), seat_file_seats(h->r.capacity, k));
                if (r < 0) {
                        r = r == -EAGAIN ? -EBUSY : r;
                        safe_close(fds[k]);
                        goto finish;
                }
        }
        HC_HOOK("retire-locked");
        /* no byte is held now, but a command whose holder died may hold its seat still */
        if (handle_count(h, false, NULL) > 0) {
                r = -EBUSY;
                goto finish;
        }

        /* The mark, then the name, then the rest. */
        region_flags_change(&h->r, HC_REGION_RETIRED, 0);
        HC_HOOK("retire-flagged");
        region_word_add(&h->r, WORD_GENERATION, 1);
        region_word_set(&h->r, WORD_LIVE, 0);
        if (fstatat(h->dirfd, h->sc.name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == h->r.ino &&
            st.st_dev == h->r.dev)
                (void) unlinkat(h->dirfd, h->sc.name, 0);
        for (unsigned j = 0; j < h->n_files; j++)
                if (file_lock_name(fn, sizeof fn, h->sc.name, h->r.region_id, j) == 0)
                        (void) unlinkat(h->dirfd, fn, 0);
        files_remove_sockets(h->dirfd, h->sc.name, 0);
        r = 0;

finish:
        while (k-- > 0)
                safe_close(fds[k]);
        handle_unlock(h);
        if (r == 0)
                region_poke(&h->r);
        return r;
}
