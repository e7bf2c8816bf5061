/* SPDX-License-Identifier: CC0-1.0 */
/*
 * editor: a single-instance program that hands a second launch's files to the copy
 * already running, as desktop editors do ("code FILE", "gedit FILE" into the open
 * window; GApplication and SingleApplication do it for their users).
 *
 * The first copy takes the only seat of the region, so it is the primary, and listens
 * for messages: hc_listener_fd() goes into its poll() loop next to a signalfd. A second
 * copy finds the seat taken, packs its arguments and working directory into one message
 * (hc_args_pack()), sends it to the primary with hc_send(), prints the reply and exits
 * 0. The primary prints each file (made absolute with the sender's directory) and
 * replies with what it did.
 *
 * If the primary has just started and does not listen yet, or has just died, the send
 * fails with -ENOENT or -ECONNREFUSED: we try to become the primary again for a few
 * seconds, then give up with 69 (EX_UNAVAILABLE), as 'headcount send' does.
 *
 *   cc editor.c -o editor $(pkg-config --cflags --libs headcount)
 *   ./editor notes.txt &            (the editor; stop it with Ctrl-C or SIGTERM)
 *   ./editor todo.txt /etc/motd     (prints "editor 1234 opened 2 files")
 *
 * The region lives in the user scope, or in $HEADCOUNT_DIR when that is set; its name
 * is "editor-example" or $EDITOR_NAME.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <headcount.h>

#define RETRY_MS 50
#define GIVE_UP_MS 5000

static void open_file(const char *dir, const char *file, pid_t from) {
        /* A real editor would open a tab here. */
        if (file[0] == '/')
                printf("editor: open %s (from pid %d)\n", file, (int) from);
        else
                printf("editor: open %s/%s (from pid %d)\n", dir, file, (int) from);
}

/* One message from another launch: open its files and say so. */
static void handle(hc_message *m) {
        char **argv = NULL, *cwd = NULL, reply[128];
        int argc;

        argc = hc_args_unpack(m->data, m->size, &cwd, &argv);
        if (argc < 0) {
                snprintf(reply, sizeof reply, "editor %d: not a list of files", (int) getpid());
                hc_message_reply(m, reply, strlen(reply));
                return;
        }
        for (int i = 0; i < argc; i++)
                open_file(cwd, argv[i], m->pid);
        fflush(stdout);
        snprintf(reply, sizeof reply, "editor %d opened %d file%s", (int) getpid(), argc,
                 argc == 1 ? "" : "s");
        hc_message_reply(m, reply, strlen(reply));
        free(argv);
}

/* The primary: serve until SIGINT or SIGTERM. */
static int run_primary(const char *name, hc_slot *slot, int argc, char *argv[], int sfd) {
        hc_listener *l = NULL;
        char *cwd = getcwd(NULL, 0);
        int r;

        r = hc_listen(name, NULL, slot, &l);
        if (r < 0) {
                fprintf(stderr, "editor: cannot listen: %s\n", strerror(-r));
                free(cwd);
                return 1;
        }
        printf("editor: pid %d listening\n", (int) getpid());
        for (int i = 0; i < argc; i++)
                open_file(cwd ? cwd : ".", argv[i], getpid());
        fflush(stdout);
        free(cwd);

        for (;;) {
                struct pollfd pfd[2] = {
                        { .fd = hc_listener_fd(l), .events = POLLIN },
                        { .fd = sfd, .events = POLLIN },
                };
                hc_message *m;

                if (poll(pfd, 2, -1) < 0 && errno != EINTR)
                        break;
                if (pfd[1].revents)
                        break;            /* asked to stop */
                while ((r = hc_listener_receive(l, &m)) == 0)
                        handle(m);
                if (r != -EAGAIN) {
                        fprintf(stderr, "editor: cannot receive: %s\n", strerror(-r));
                        break;
                }
        }
        l = hc_listener_free(l);          /* removes the socket */
        printf("editor: stopped\n");
        return 0;
}

int main(int argc, char *argv[]) {
        const char *name = getenv("EDITOR_NAME") ? getenv("EDITOR_NAME") : "editor-example";
        hc_slot *slot = NULL;
        void *msg = NULL, *reply = NULL;
        size_t len = 0;
        sigset_t stop;
        int sfd, r;

        sigemptyset(&stop);
        sigaddset(&stop, SIGINT);
        sigaddset(&stop, SIGTERM);
        sigprocmask(SIG_BLOCK, &stop, NULL);
        sfd = signalfd(-1, &stop, SFD_CLOEXEC);
        if (sfd < 0) {
                perror("editor: signalfd");
                return 1;
        }

        r = hc_args_pack(NULL, argv + 1, &msg, &len);
        if (r < 0) {
                fprintf(stderr, "editor: cannot pack the arguments: %s\n", strerror(-r));
                return 1;
        }
        for (int waited = 0;; waited += RETRY_MS) {
                r = hc_join(name, HC_OPTIONS(.max = 1), &slot);
                if (r == 0) {
                        free(msg);
                        r = run_primary(name, slot, argc - 1, argv + 1, sfd);
                        slot = hc_leave(slot);
                        return r;
                }
                if (r != -EBUSY) {
                        fprintf(stderr, "editor: cannot join '%s': %s\n", name, strerror(-r));
                        return 1;
                }

                /* Somebody is the editor: hand it our files. */
                r = hc_send(name, NULL, msg, len, &reply, NULL);
                if (r == 0) {
                        printf("%s\n", (char *) reply);
                        free(reply);
                        free(msg);
                        return 0;
                }
                if ((r != -ENOENT && r != -ECONNREFUSED) || waited >= GIVE_UP_MS) {
                        fprintf(stderr, "editor: cannot reach the running editor: %s\n",
                                strerror(-r));
                        free(msg);
                        return r == -ENOENT || r == -ECONNREFUSED ? 69 : 1;
                }
                /* starting up, or just gone: look again */
                nanosleep(&(struct timespec) { .tv_nsec = RETRY_MS * 1000000L }, NULL);
        }
}
