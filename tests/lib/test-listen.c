/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Forwarding to the primary: hc_listen, hc_send and the framing (lib/listen.c,
 * lib/send.c, lib/frame.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

/* The wire format, as lib/forward.c writes it. */
struct frame {
        uint32_t magic;
        uint32_t size;
        int32_t status;
        uint32_t reserved;
};
#define FRAME_REQUEST 0x48434d31u
#define FRAME_REPLY 0x48435231u

enum serve_mode {
        SERVE_ECHO,              /* reply "<server pid> <sender pid> <size> <data>" */
        SERVE_SILENT,            /* keep every message, never reply */
        SERVE_DROP,              /* free every message without a reply */
};

static volatile sig_atomic_t serve_stop;

static void on_term(int sig) {
        (void) sig;
        serve_stop = 1;
}

/* Serves L in MODE until SIGTERM, then frees it and exits 0 (a test that only needs the
 * server gone stops it so, which also lets a coverage build write the server's counts). */
static _Noreturn void serve(hc_listener *l, enum serve_mode mode) {
        sigset_t term, none;

        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        sigemptyset(&none);
        (void) sigprocmask(SIG_BLOCK, &term, NULL);
        (void) sigaction(SIGTERM, &(struct sigaction) { .sa_handler = on_term }, NULL);
        for (;;) {
                struct pollfd pfd = { .fd = hc_listener_fd(l), .events = POLLIN };
                hc_message *m;
                int r;

                /* SIGTERM is let in only while we sleep, so it is never missed */
                if (ppoll(&pfd, 1, NULL, &none) < 0 && errno != EINTR)
                        child_exit(20);
                if (serve_stop) {
                        hc_listener_free(l);
                        child_exit(0);
                }
                while ((r = hc_listener_receive(l, &m)) == 0) {
                        char *reply;
                        int n;

                        if (mode == SERVE_SILENT)
                                continue;         /* kept (and leaked) on purpose */
                        if (mode == SERVE_DROP) {
                                hc_message_free(m);
                                continue;
                        }
                        n = asprintf(&reply, "%d %d %zu %s", (int) getpid(), (int) m->pid, m->size,
                                     (const char *) m->data);
                        if (n < 0)
                                child_exit(21);
                        (void) hc_message_reply(m, reply, (size_t) n);
                        free(reply);
                }
                if (r != -EAGAIN)
                        child_exit(22);
        }
}

/*
 * Forks a process that joins NAME (any of 8 seats), listens with OPT (dir set to test_dir
 * here) and serves in MODE. Returns its pid once it listens; the child dies with us.
 */
static pid_t spawn_server_as(const char *name, hc_options opt, enum serve_mode mode, uid_t uid) {
        int p[2], r = 0;
        pid_t pid;

        opt.size = sizeof opt;
        opt.dir = test_dir;
        opt.max = 8;
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                hc_listener *l = NULL;
                hc_slot *s = NULL;

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (uid != 0 && (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0 ||
                                 prctl(PR_SET_PDEATHSIG, SIGKILL) < 0))
                        r = -errno;
                if (r == 0)
                        r = hc_join(name, &opt, &s);
                if (r == 0)
                        r = hc_listen(name, &opt, s, &l);
                if (write(p[1], &r, sizeof r) != sizeof r || r < 0)
                        child_exit(2);
                serve(l, mode);
        }
        close(p[1]);
        ck_assert_int_eq(read(p[0], &r, sizeof r), (ssize_t) sizeof r);
        close(p[0]);
        ck_assert_int_eq(r, 0);
        return pid;
}

static pid_t spawn_server(const char *name, hc_options opt, enum serve_mode mode) {
        return spawn_server_as(name, opt, mode, 0);
}

/* Sends MSG and checks the echo came from SERVER for this process. */
static void send_expect_echo(const char *name, pid_t server, const char *msg) {
        char *want;
        void *reply = NULL;
        size_t len = 0;

        ck_assert_int_eq(hc_send(name, TOPT(.timeout_ms = 30000), msg, strlen(msg), &reply, &len), 0);
        ck_assert_int_ge(asprintf(&want, "%d %d %zu %s", (int) server, (int) getpid(), strlen(msg),
                                  msg), 0);
        ck_assert_str_eq(reply, want);
        ck_assert_uint_eq(len, strlen(want));
        free(want);
        free(reply);
}

/* The path of the socket region NAME's listener bound (".NAME.<nonce>.sock"); "" when
 * there is none. Fails the test when there are several. */
static void socket_path(const char *name, char *buf, size_t len) {
        char prefix[256];
        struct dirent *de;
        DIR *d;

        snprintf(prefix, sizeof prefix, ".%s.", name);
        buf[0] = '\0';
        d = opendir(test_dir);
        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d))) {
                size_t n = strlen(de->d_name);
                if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 || n < 5 ||
                    strcmp(de->d_name + n - 5, ".sock") != 0)
                        continue;
                ck_assert_str_eq(buf, "");
                snprintf(buf, len, "%s/%s", test_dir, de->d_name);
        }
        closedir(d);
}

static int raw_connect(const char *name) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        socket_path(name, sa.sun_path, sizeof sa.sun_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(connect(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        return fd;
}

/* Reads what the listener sends FD until it closes; returns the status of the frame it
 * sent (0 when none). Fails the test when the listener keeps it open for 30 s. */
static int raw_drain(int fd) {
        struct frame f = {};
        size_t got = 0;

        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                char buf[256];
                ssize_t n;

                ck_assert_int_eq(poll(&pfd, 1, 30000), 1);
                n = read(fd, buf, sizeof buf);
                if (n <= 0)
                        break;
                if (got < sizeof f)
                        memcpy((char *) &f + got, buf,
                               (size_t) n < sizeof f - got ? (size_t) n : sizeof f - got);
                got += (size_t) n;
        }
        close(fd);
        if (got < sizeof f)
                return 0;
        ck_assert_uint_eq(f.magic, FRAME_REPLY);
        return f.status;
}

/* ---- core ---- */

/* A message reaches the primary, which sees our pid, and its reply comes back whole. */
START_TEST(test_forward_round_trip)
{
        pid_t server = spawn_server("fw", (hc_options) {}, SERVE_ECHO);

        send_expect_echo("fw", server, "hello");
        send_expect_echo("fw", server, "");               /* empty messages are fine */
        send_expect_echo("fw", server, "again, the same listener");
        kill_and_reap(server, SIGTERM);
}
END_TEST

/* A message and a reply larger than the sockets' buffers (1 MiB each way): the sender
 * waits for room to write, and the primary finishes the reply from its event loop while
 * it goes on serving. */
START_TEST(test_forward_large_messages)
{
        const size_t size = 1 << 20;
        hc_options o = { .message_max = 2 << 20 };
        char *msg = malloc(size + 1), *want = NULL;
        void *reply = NULL;
        size_t len = 0;
        pid_t server;
        int n;

        ck_assert_ptr_nonnull(msg);
        memset(msg, 'm', size);
        msg[size] = '\0';
        server = spawn_server("big", o, SERVE_ECHO);
        ck_assert_int_eq(hc_send("big", TOPT(.message_max = 2 << 20, .timeout_ms = 20000), msg, size,
                                 &reply, &len), 0);
        n = asprintf(&want, "%d %d %zu %s", (int) server, (int) getpid(), size, msg);
        ck_assert_int_gt(n, 0);
        ck_assert_uint_eq(len, (size_t) n);
        ck_assert(memcmp(reply, want, len) == 0);
        free(reply);
        free(want);
        /* the default limit (64 KiB) refuses it with a clear code */
        ck_assert_int_eq(hc_send("big", TOPT(), msg, size, NULL, NULL), -EMSGSIZE);
        send_expect_echo("big", server, "small after large");
        free(msg);
        kill_and_reap(server, SIGTERM);
}
END_TEST

/* Fifty secondaries sending at the same moment all get their own answer. */
START_TEST(test_forward_fifty_senders)
{
        pid_t server = spawn_server("many", (hc_options) {}, SERVE_ECHO), kids[50];
        int gate[2];

        ck_assert_int_eq(pipe2(gate, O_CLOEXEC), 0);
        for (int i = 0; i < 50; i++) {
                kids[i] = fork();
                ck_assert_int_ge(kids[i], 0);
                if (kids[i] == 0) {
                        char msg[32], *want = NULL;
                        void *reply = NULL;
                        char c;

                        close(gate[1]);
                        if (read(gate[0], &c, 1) < 0)     /* all start together */
                                child_exit(9);
                        snprintf(msg, sizeof msg, "sender %d", i);
                        if (hc_send("many", TOPT(.timeout_ms = 60000), msg, strlen(msg), &reply,
                                    NULL) != 0)
                                child_exit(1);
                        if (asprintf(&want, "%d %d %zu %s", (int) server, (int) getpid(),
                                     strlen(msg), msg) < 0)
                                child_exit(2);
                        child_exit(strcmp(reply, want) == 0 ? 0 : 3);
                }
        }
        close(gate[0]);
        close(gate[1]);                   /* EOF: go */
        for (int i = 0; i < 50; i++) {
                int st;
                ck_assert_int_eq(waitpid(kids[i], &st, 0), kids[i]);
                ck_assert(WIFEXITED(st));
                ck_assert_int_eq(WEXITSTATUS(st), 0);
        }
        kill_and_reap(server, SIGTERM);
}
END_TEST

/* argv and the working directory survive packing; anything else is not taken for them. */
START_TEST(test_forward_args_round_trip)
{
        char *argv[] = { "editor", "a file.txt", "", "--flag", NULL }, *cwd = NULL, **out = NULL;
        void *buf = NULL;
        size_t len = 0;
        char *p;

        ck_assert_int_eq(hc_args_pack("/some/dir", argv, &buf, &len), 0);
        ck_assert_int_eq(hc_args_unpack(buf, len, &cwd, &out), 4);
        ck_assert_str_eq(cwd, "/some/dir");
        for (int i = 0; i < 4; i++)
                ck_assert_str_eq(out[i], argv[i]);
        ck_assert_ptr_null(out[4]);
        free(out);

        /* damaged: truncated, wrong magic, empty */
        ck_assert_int_eq(hc_args_unpack(buf, len - 1, &cwd, &out), -EBADMSG);
        p = buf;
        p[0] ^= 1;
        ck_assert_int_eq(hc_args_unpack(buf, len, &cwd, &out), -EBADMSG);
        ck_assert_int_eq(hc_args_unpack(buf, 0, &cwd, &out), -EBADMSG);
        free(buf);

        /* NULL cwd means ours; no arguments at all is fine */
        ck_assert_int_eq(hc_args_pack(NULL, (char *[]) { NULL }, &buf, &len), 0);
        ck_assert_int_eq(hc_args_unpack(buf, len, &cwd, &out), 0);
        p = getcwd(NULL, 0);
        ck_assert_str_eq(cwd, p);
        free(p);
        free(out);
        free(buf);
}
END_TEST

/* Only the primary may listen, and only one listener at a time; freeing it removes the
 * socket, after which senders are told nobody listens. */
START_TEST(test_forward_only_primary_listens)
{
        hc_slot *first = NULL, *second = NULL;
        hc_listener *l = NULL, *l2 = NULL;
        char path[512];
        struct stat st;

        ck_assert_int_eq(hc_send("one", TOPT(), "x", 1, NULL, NULL), -ENOENT);
        ck_assert_int_eq(hc_join("one", TOPT(.max = 2), &first), 0);
        ck_assert_int_eq(hc_join("one", TOPT(.max = 2), &second), 0);
        ck_assert_int_eq(hc_slot_is_primary("one", TOPT(), first), 1);
        ck_assert_int_eq(hc_slot_is_primary("one", TOPT(), second), 0);

        ck_assert_int_eq(hc_listen("one", TOPT(), second, &l), -EBUSY);
        ck_assert_int_eq(hc_listen("one", TOPT(), first, &l), 0);
        ck_assert_int_eq(hc_listen("one", TOPT(), first, &l2), -EBUSY);
        ck_assert_int_ge(hc_listener_fd(l), 0);
        socket_path("one", path, sizeof path);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert(S_ISSOCK(st.st_mode));
        ck_assert_uint_eq(st.st_mode & 0777, 0600);        /* only its uid may connect */

        l = hc_listener_free(l);
        ck_assert_int_eq(stat(path, &st), -1);
        ck_assert_int_eq(hc_send("one", TOPT(), "x", 1, NULL, NULL), -ENOENT);

        /* when the first leaves, the second is promoted and may listen */
        first = hc_leave(first);
        ck_assert_int_eq(hc_slot_is_primary("one", TOPT(), second), 1);
        ck_assert_int_eq(hc_listen("one", TOPT(), second, &l), 0);
        l = hc_listener_free(l);
        second = hc_leave(second);
        ck_assert_int_eq(hc_listen("nope", TOPT(), second, &l), -EINVAL);
}
END_TEST

/* A primary that never answers costs the sender its timeout, no more; one that drops
 * the message is reported as such. */
START_TEST(test_forward_timeout_and_drop)
{
        pid_t silent = spawn_server("silent", (hc_options) {}, SERVE_SILENT);
        pid_t dropper = spawn_server("drop", (hc_options) {}, SERVE_DROP);
        long long t0 = mono_usec(), dt;

        ck_assert_int_eq(hc_send("silent", TOPT(.timeout_ms = 300), "x", 1, NULL, NULL), -ETIMEDOUT);
        dt = mono_usec() - t0;
        ck_assert_int_ge(dt, 300000);
        ck_assert_int_lt(dt, 10000000);
        ck_assert_int_eq(hc_send("drop", TOPT(), "x", 1, NULL, NULL), -ECONNRESET);
        kill_and_reap(silent, SIGTERM);
        kill_and_reap(dropper, SIGTERM);
}
END_TEST

/* ---- crash ---- */

/* The primary is SIGKILLed between messages: the secondary learns it was promoted,
 * listens over the dead one's socket, and the next message reaches it. */
START_TEST(test_forward_primary_killed_takeover)
{
        int ev[2];
        pid_t first, second;
        char c;

        ck_assert_int_eq(pipe2(ev, O_CLOEXEC), 0);
        first = spawn_server("take", (hc_options) {}, SERVE_ECHO);
        send_expect_echo("take", first, "to the first");

        second = fork();
        ck_assert_int_ge(second, 0);
        if (second == 0) {
                hc_listener *l = NULL;
                hc_slot *s = NULL;
                int r;

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                close(ev[0]);
                if (hc_join("take", TOPT(.max = 8), &s) < 0)
                        child_exit(10);
                if (hc_slot_is_primary("take", TOPT(), s) != 0)
                        child_exit(11);
                if (write(ev[1], "j", 1) != 1)
                        child_exit(14);
                /* sleeps until the count drops below 2, then checks */
                while ((r = hc_slot_is_primary("take", TOPT(), s)) == 0)
                        (void) hc_wait("take", TOPT(), 2, 1000);
                if (r != 1)
                        child_exit(12);
                if (hc_listen("take", TOPT(), s, &l) < 0)
                        child_exit(13);
                if (write(ev[1], "L", 1) != 1)
                        child_exit(15);
                serve(l, SERVE_ECHO);
        }
        close(ev[1]);
        ck_assert_int_eq(read(ev[0], &c, 1), 1);
        ck_assert_int_eq(c, 'j');
        send_expect_echo("take", first, "still the first");

        kill_and_reap(first, SIGKILL);
        ck_assert_int_eq(read(ev[0], &c, 1), 1);
        ck_assert_int_eq(c, 'L');
        send_expect_echo("take", second, "to the second");
        kill_and_reap(second, SIGKILL);        /* a crash too: its socket stays */
        close(ev[0]);

        /* and now nobody listens: the socket it left names no live primary */
        ck_assert_int_eq(hc_send("take", TOPT(), "x", 1, NULL, NULL), -ENOENT);
}
END_TEST

/* A socket file nobody listens on, a dead listener's socket and files planted where
 * sockets used to be never block a new primary. A listener sweeps the dead sockets of
 * its region; removing the region removes the last one. */
START_TEST(test_forward_stale_socket)
{
        static const char *const planted[] = { ".stale.sock", ".stale.sock~0123456789abcdef" };
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char dead[512];
        struct stat st;
        pid_t server;
        int fd;

        ck_assert_int_eq(hc_create("stale", TOPT()), 1);
        for (size_t i = 0; i < 2; i++) {
                snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", test_dir, planted[i]);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
                close(fd);                /* bound, never listening */
        }
        snprintf(dead, sizeof dead, "%s/.stale.0123456789abcdef.sock", test_dir);
        memcpy(sa.sun_path, dead, strlen(dead) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        close(fd);                        /* as a listener that was killed leaves it */

        ck_assert_int_eq(hc_send("stale", TOPT(), "x", 1, NULL, NULL), -ENOENT);
        server = spawn_server("stale", (hc_options) {}, SERVE_ECHO);
        send_expect_echo("stale", server, "over the stale one");
        ck_assert_int_eq(stat(dead, &st), -1);            /* the dead one was swept */

        /* killed: its socket is stale now, and hc_remove() takes it away */
        kill_and_reap(server, SIGKILL);        /* a crash: its socket stays */
        ck_assert_int_eq(hc_send("stale", TOPT(), "x", 1, NULL, NULL), -ENOENT);
        ck_assert_int_eq(hc_remove("stale", TOPT()), 0);
        ck_assert_int_eq(dir_entries(), 2);               /* what was planted, untouched */
        for (size_t i = 0; i < 2; i++) {
                char p[512];
                snprintf(p, sizeof p, "%s/%s", test_dir, planted[i]);
                ck_assert_int_eq(unlink(p), 0);
        }
}
END_TEST

/* ---- hostile ---- */

/* A peer of another uid is refused by the listener itself (the socket and directory let
 * it connect), and the listener goes on serving. */
START_TEST(test_forward_foreign_uid_refused)
{
        char path[512];
        struct stat st;
        pid_t server, kid;
        int status;

        if (geteuid() != 0)
                return;                   /* needs root to become somebody else */
        ck_assert_int_eq(chmod(test_dir, 01777), 0);
        ck_assert_int_eq(hc_create("uid", TOPT(.mode = 0666)), 1);
        server = spawn_server("uid", (hc_options) {}, SERVE_ECHO);
        socket_path("uid", path, sizeof path);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 0777, 0600);       /* the listener checks anyway */

        kid = fork();
        ck_assert_int_ge(kid, 0);
        if (kid == 0) {
                int r;

                if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                        child_exit(10);
                r = hc_send("uid", TOPT(), "let me in", 9, NULL, NULL);
                child_exit(r == -EPERM ? 0 : r == -EACCES ? 11 : 12);
        }
        ck_assert_int_eq(waitpid(kid, &status, 0), kid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
        send_expect_echo("uid", server, "but we are welcome");
        kill_and_reap(server, SIGTERM);
}
END_TEST

/* Root talks to another user's primary only when both sides opt in with HC_ALLOW_ROOT. */
START_TEST(test_forward_root_needs_consent)
{
        pid_t open_door, closed_door;
        void *reply = NULL;

        if (geteuid() != 0)
                return;
        ck_assert_int_eq(chmod(test_dir, 01777), 0);      /* nobody may make regions here */
        open_door = spawn_server_as("open", (hc_options) { .flags = HC_ALLOW_ROOT }, SERVE_ECHO,
                                    65534);
        closed_door = spawn_server_as("closed", (hc_options) {}, SERVE_ECHO, 65534);

        /* without the flag root does not even send to another user's listener */
        ck_assert_int_eq(hc_send("open", TOPT(), "x", 1, NULL, NULL), -EPERM);
        ck_assert_int_eq(hc_send("open", TOPT(.flags = HC_ALLOW_ROOT), "x", 1, &reply, NULL), 0);
        ck_assert_ptr_nonnull(strstr(reply, " 1 x"));
        free(reply);
        /* and that listener must want root's messages */
        ck_assert_int_eq(hc_send("closed", TOPT(.flags = HC_ALLOW_ROOT), "x", 1, NULL, NULL), -EPERM);
        kill_and_reap(open_door, SIGTERM);
        kill_and_reap(closed_door, SIGTERM);
}
END_TEST

/* A peer that sends garbage is dropped (told EBADMSG); the listener keeps serving. */
START_TEST(test_forward_garbage_dropped)
{
        pid_t server = spawn_server("junk", (hc_options) {}, SERVE_ECHO);
        const char junk[] = "GET / HTTP/1.0\r\n\r\n";
        int fd = raw_connect("junk");

        ck_assert_int_eq(write(fd, junk, sizeof junk), (ssize_t) sizeof junk);
        ck_assert_int_eq(raw_drain(fd), EBADMSG);
        send_expect_echo("junk", server, "after the junk");

        /* a peer that connects and closes at once is just forgotten */
        close(raw_connect("junk"));
        send_expect_echo("junk", server, "after the quitter");
        kill_and_reap(server, SIGTERM);
}
END_TEST

/* Too long a message is refused before it is read, on both sides. */
START_TEST(test_forward_oversize_dropped)
{
        pid_t server = spawn_server("big", (hc_options) { .message_max = 1024 }, SERVE_ECHO);
        struct frame f = { .magic = FRAME_REQUEST, .size = 1u << 30 };
        char *big = calloc(1, 4096);
        int fd;

        ck_assert_ptr_nonnull(big);
        memset(big, 'x', 4095);
        /* ours: the default limit */
        ck_assert_int_eq(hc_send("big", TOPT(), big, HC_MESSAGE_MAX_DEFAULT + 1, NULL, NULL), -EMSGSIZE);
        /* theirs: 1024 */
        ck_assert_int_eq(hc_send("big", TOPT(), big, 4095, NULL, NULL), -EMSGSIZE);
        fd = raw_connect("big");
        ck_assert_int_eq(write(fd, &f, sizeof f), (ssize_t) sizeof f);
        ck_assert_int_eq(raw_drain(fd), EMSGSIZE);
        big[1000] = '\0';
        send_expect_echo("big", server, big);
        free(big);
        kill_and_reap(server, SIGTERM);
}
END_TEST

/* A peer that stalls half-way is dropped at its deadline; meanwhile others are served. */
START_TEST(test_forward_stalled_dropped)
{
        pid_t server = spawn_server("slow", (hc_options) { .peer_timeout_ms = 500 }, SERVE_ECHO);
        struct frame f = { .magic = FRAME_REQUEST, .size = 100 };
        int fd = raw_connect("slow"), idle = raw_connect("slow");

        ck_assert_int_eq(write(fd, &f, sizeof f), (ssize_t) sizeof f);
        ck_assert_int_eq(write(fd, "part", 4), 4);        /* and then nothing */
        send_expect_echo("slow", server, "not held up");
        ck_assert_int_eq(raw_drain(fd), ETIMEDOUT);
        ck_assert_int_eq(raw_drain(idle), ETIMEDOUT);     /* connected, never wrote */
        send_expect_echo("slow", server, "still serving");
        kill_and_reap(server, SIGTERM);
}
END_TEST

/* Bad arguments are refused before anything happens. */
START_TEST(test_forward_bad_arguments)
{
        hc_listener *l = NULL;
        hc_message *m = NULL;

        ck_assert_int_eq(hc_send("bad/name", TOPT(), "x", 1, NULL, NULL), -EINVAL);
        ck_assert_int_eq(hc_send("ok", TOPT(), NULL, 1, NULL, NULL), -EINVAL);
        ck_assert_int_eq(hc_send("ok", TOPT(.timeout_ms = -2), "x", 1, NULL, NULL), -EINVAL);
        ck_assert_int_eq(hc_send("ok", TOPT(.message_max = (size_t) 1 << 31), "x", 1, NULL, NULL),
                         -EINVAL);
        ck_assert_int_eq(hc_listen("ok", TOPT(), NULL, &l), -EINVAL);
        ck_assert_int_eq(hc_listener_receive(NULL, &m), -EINVAL);
        ck_assert_int_eq(hc_listener_fd(NULL), -EINVAL);
        ck_assert_int_eq(hc_message_reply(NULL, "x", 1), -EINVAL);
        ck_assert_ptr_null(hc_message_free(NULL));
        ck_assert_ptr_null(hc_listener_free(NULL));
        ck_assert_int_eq(hc_slot_is_primary("ok", TOPT(), NULL), -EINVAL);
}
END_TEST

Suite *suite_listen(void) {
        Suite *s = suite_create("listen");
        TCase *tc;

        tc = tcase_new("core", 120);
        tcase_add_test(tc, test_forward_round_trip);
        tcase_add_test(tc, test_forward_fifty_senders);
        tcase_add_test(tc, test_forward_large_messages);
        tcase_add_test(tc, test_forward_args_round_trip);
        tcase_add_test(tc, test_forward_only_primary_listens);
        tcase_add_test(tc, test_forward_timeout_and_drop);
        suite_add_tcase(s, tc);

        tc = tcase_new("crash", 120);
        tcase_add_test(tc, test_forward_primary_killed_takeover);
        tcase_add_test(tc, test_forward_stale_socket);
        suite_add_tcase(s, tc);

        tc = tcase_new("hostile", 120);
        tcase_add_test(tc, test_forward_foreign_uid_refused);
        tcase_add_test(tc, test_forward_root_needs_consent);
        tcase_add_test(tc, test_forward_garbage_dropped);
        tcase_add_test(tc, test_forward_oversize_dropped);
        tcase_add_test(tc, test_forward_stalled_dropped);
        tcase_add_test(tc, test_forward_bad_arguments);
        suite_add_tcase(s, tc);
        return s;
}
