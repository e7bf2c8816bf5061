/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * 'headcount run --replace [--kill-after SEC] NAME -- CMD': take a seat, stopping the
 * instance that holds it if need be (run-one --replace, GApplication's REPLACE).
 *
 * Whom we stop: nobody when one of seats 0..max-1 is free. When all are held, the one
 * holder that has run longest among them (the lowest sequence number): we need one seat,
 * so we stop one instance, and with --max 1 that is the instance. Its record must name a
 * process we can trust and reach: a record from another PID namespace or an unverified
 * one (a region that others may write) is refused, and so is a holder we may not signal,
 * before anything is sent to anybody.
 *
 * A record is not proof. It names the process that joined, and a seat is a lock of an
 * open file description that may outlive it: a script that took its seat on fd 9 ends,
 * a child it left in the background keeps the seat, and the script's pid goes to somebody
 * else. So we signal the process the record names only when the kernel shows that it
 * holds the seat (hc_region_holder(): its descriptors and their locks in /proc), or that
 * the 'headcount run' wrapper whose child it is holds it. When it does not, we say who
 * does (or that nobody can be identified), signal nobody, and exit as for a full region
 * (75, or --conflict-exit-code). A recorded holder that is ending, or gone, may still
 * hold the seat for a moment through what it leaves: we wait for the seat, at most
 * --kill-after, before we say so.
 *
 * How: SIGTERM, then SIGKILL when the holder still lives --kill-after seconds later
 * (default 5). We signal the holder's process group when the holder leads it, or when
 * the 'headcount run' wrapper that started it leads it (and it is not our own group);
 * otherwise the holder alone, and its wrapper too, so that a --restart wrapper ends its
 * loop. 'headcount run' gives CMD its own group with --replace, --restart and in the
 * fleet scope (see run.c). The holder and its wrapper are reached through pidfds opened
 * before the kernel showed that they hold the seat, and checked alive after that and
 * after we read their process group, so a reused PID is never signalled; a group is
 * signalled by its id, which the kernel does not give out again while the holder we
 * checked is in it.
 *
 * We wait for the holder's death on its pidfd and for the seat with hc_join()'s timeout:
 * no polling. Then we take the seat, lowest free first.
 *
 * Races: when several --replace launches start at once, each one keeps replacing until
 * it holds a seat: the one that got the seat may be stopped in turn by one that came
 * later to it. Nobody who holds a seat replaces anybody, so every round removes a
 * contender for good, and with --max 1 exactly one of them is left running, never none
 * and never two. The last to take the seat wins, which is the newest in the common case
 * of launches that follow each other.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "cleanup.h"
#include "instance.h"
#include "proc-stat.h"
#include "run.h"

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_pidfd_send_signal
#define __NR_pidfd_send_signal 424
#endif

#define REPLACE_ROUNDS_MAX 64           /* holders stopped before we give up */
#define REPLACE_KILL_WAIT_MS 5000       /* for a SIGKILLed holder to be gone */
#define RECORD_WAIT_MS 5000             /* for a new holder's record to be written */

/* The instance we stop. */
struct target {
        hc_instance in;         /* its record */
        int pidfd;              /* the holder */
        int wrapper_pidfd;      /* the 'headcount run' that started it, or -1 */
        pid_t wrapper;
        pid_t group;            /* the process group we signal instead, or 0 */
};

static int pidfd_open(pid_t pid) {
        return (int) syscall(__NR_pidfd_open, pid, 0);
}

static int pidfd_signal(int fd, int sig) {
        return (int) syscall(__NR_pidfd_send_signal, fd, sig, NULL, 0);
}

static void target_close(struct target *t) {
        if (t->pidfd >= 0)
                (void) close(t->pidfd);
        if (t->wrapper_pidfd >= 0)
                (void) close(t->wrapper_pidfd);
        t->pidfd = t->wrapper_pidfd = -1;
}

/* Whether PID is a 'headcount' process: the wrapper of a 'run'. */
static bool is_wrapper(pid_t pid) {
        char path[64], buf[32] = "";
        ssize_t n;
        int fd;

        (void) snprintf(path, sizeof path, "/proc/%d/comm", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof buf - 1);
        (void) close(fd);
        return n > 0 && strncmp(buf, "headcount\n", (size_t) n) == 0 && n == 10;
}

static void say_denied(const struct cli *c, const hc_instance *in) {
        struct passwd *pw = getpwuid(in->uid);

        message_error("cannot replace pid %d (user %s, uid %u) in region '%s': %s",
                      (int) in->pid, pw ? pw->pw_name : "?", (unsigned) in->uid, c->name,
                      strerror(EPERM));
}

/*
 * Picks the instance to stop into *ret: 1. 0 when one of our seats is free now,
 * -EAGAIN when the seats we could use are held but their records are still being
 * written, or an error of hc_list().
 */
static int pick(const struct cli *c, hc_instance *ret) {
        _cleanup_free_ hc_instance *list = NULL;
        unsigned held = 0;
        int n, best = -1;

        n = hc_list(c->name, CLI_OPTIONS(c), &list);
        if (n < 0)
                return n;
        for (int i = 0; i < n; i++) {
                if (list[i].slot >= c->max)
                        continue;
                held++;
                if (list[i].flags & HC_INSTANCE_NO_RECORD)
                        continue;
                if (best < 0 || list[i].seq < list[best].seq)
                        best = i;
        }
        if (held < c->max)
                return 0;
        if (best < 0)
                return -EAGAIN;
        *ret = list[best];
        return 1;
}

/*
 * Whether the seat of IN is still held under the same record: the seat has not changed
 * hands since we picked it. Only for waiting on a seat; never the ground for a signal.
 */
static bool same_record(const struct cli *c, const hc_instance *in) {
        _cleanup_free_ hc_instance *list = NULL;
        int n = hc_list(c->name, CLI_OPTIONS(c), &list);

        for (int i = 0; i < n; i++)
                if (list[i].slot == in->slot)
                        return !(list[i].flags & HC_INSTANCE_NO_RECORD) &&
                                list[i].seq == in->seq && list[i].pid == in->pid;
        return false;
}

/* What the kernel says of PID and seat SLOT: PID when it holds the seat now, or, with PID
 * 0, some process that does; -ESRCH when none is proven, or another error. */
static int holder_proof(const struct cli *c, unsigned slot, pid_t pid) {
        hc_region *rg = NULL;
        int r;

        r = hc_region_open(c->name, CLI_OPTIONS(c, .flags = HC_NO_CREATE), &rg);
        if (r < 0)
                return r;
        r = hc_region_holder(rg, slot, pid);
        (void) hc_region_close(rg);
        return r;
}

/* Whether PID still holds the seat of IN: proven, not recorded. */
static bool still_held(const struct cli *c, const hc_instance *in, pid_t pid) {
        return pid > 0 && holder_proof(c, in->slot, pid) == pid;
}

/* Whether PID is ending: a zombie, or past the point of no return in exit (PF_EXITING),
 * when its descriptors may be closed already while it still has its pid. */
static bool ending(pid_t pid) {
        struct proc_stat st;
        int r = proc_stat_read(pid, &st);

        if (r == -EBADMSG)
                return false;
        if (r < 0)
                return true;              /* gone already */
        return st.state == 'Z' || st.state == 'X' || (st.flags & PROC_PF_EXITING);
}

/* Says that the process IN names does not hold its seat, and who does: nothing is
 * signalled. PROOF is what the kernel said of it. Returns the exit status. */
static int say_not_holder(const struct cli *c, const hc_instance *in, int proof) {
        int found;

        if (proof == -EACCES || proof == -EXDEV) {
                message_error("cannot replace pid %d in region '%s': cannot prove that it holds "
                              "seat %u (%s); nothing was signalled", (int) in->pid, c->name,
                              in->slot, proof == -EACCES ? "its descriptors may not be read" :
                              "/proc cannot show it");
                return c->conflict_exit_code;
        }
        found = holder_proof(c, in->slot, 0);
        if (found > 0)
                message_error("cannot replace pid %d in region '%s': it does not hold seat %u; "
                              "pid %d does; nothing was signalled", (int) in->pid, c->name,
                              in->slot, found);
        else
                message_error("cannot replace pid %d in region '%s': it does not hold seat %u, "
                              "and nobody can be identified as its holder; nothing was "
                              "signalled", (int) in->pid, c->name, in->slot);
        return c->conflict_exit_code;
}

/*
 * Opens the holder named by T->in and decides what to signal. Returns 0, -ESRCH when
 * the holder is gone or ending (or the record changed), or an exit status after saying
 * why: EXIT_FAILURE, or the conflict status when it does not hold its seat.
 */
static int target_open(const struct cli *c, struct target *t) {
        struct proc_stat st;
        pid_t ppid, pgrp;
        int proof;

        t->pidfd = t->wrapper_pidfd = -1;
        t->group = t->wrapper = 0;
        if (t->in.flags & (HC_INSTANCE_OTHER_PIDNS | HC_INSTANCE_OTHER_BOOT)) {
                message_error("cannot replace pid %d in region '%s': it is not a process of "
                              "this PID namespace", (int) t->in.pid, c->name);
                return EXIT_FAILURE;
        }
        if (t->in.flags & HC_INSTANCE_UNVERIFIED) {
                message_error("cannot replace pid %d in region '%s': the record is unverified "
                              "(others may write the region)", (int) t->in.pid, c->name);
                return EXIT_FAILURE;
        }
        if (t->in.pid <= 1 || t->in.pid == getpid())
                return -ESRCH;
        t->pidfd = pidfd_open(t->in.pid);
        if (t->pidfd < 0) {
                if (errno == ESRCH)
                        return -ESRCH;
                message_error("cannot replace pid %d in region '%s': %s", (int) t->in.pid,
                              c->name, strerror(errno));
                return EXIT_FAILURE;
        }
        if (pidfd_signal(t->pidfd, 0) < 0) {
                if (errno == ESRCH)
                        return -ESRCH;
                say_denied(c, &t->in);
                return EXIT_FAILURE;
        }
        if (proc_stat_read(t->in.pid, &st) < 0)
                return -ESRCH;
        ppid = st.ppid;
        pgrp = st.pgrp;
        if (ppid > 1 && is_wrapper(ppid)) {
                t->wrapper_pidfd = pidfd_open(ppid);
                if (t->wrapper_pidfd >= 0 && pidfd_signal(t->wrapper_pidfd, 0) == 0)
                        t->wrapper = ppid;
                else if (t->wrapper_pidfd >= 0) {
                        (void) close(t->wrapper_pidfd);
                        t->wrapper_pidfd = -1;
                }
        }
        /* The kernel's word, not the record's: the process holds the seat, or its wrapper
         * does (a command may close the descriptor it inherited). The pidfds were opened
         * before, and are checked alive after: the process proven is the one they reach. */
        proof = holder_proof(c, t->in.slot, t->in.pid);
        if (proof != t->in.pid && t->wrapper > 0 && still_held(c, &t->in, t->wrapper))
                proof = t->in.pid;
        if (proof != t->in.pid) {
                if (pidfd_signal(t->pidfd, 0) < 0 || ending(t->in.pid) || !same_record(c, &t->in))
                        return -ESRCH;  /* ending: what it leaves may hold the seat a moment */
                return say_not_holder(c, &t->in, proof);
        }
        if (pgrp == t->in.pid || (t->wrapper > 0 && pgrp == t->wrapper))
                t->group = pgrp;
        if (t->group == getpgrp() || t->group <= 1)
                t->group = 0;
        /* what we read in /proc was the holder's if it still lives now */
        if (pidfd_signal(t->pidfd, 0) < 0)
                return -ESRCH;
        return 0;
}

static void target_signal(const struct target *t, int sig) {
        if (t->group > 0)
                (void) kill(-t->group, sig);
        else
                (void) pidfd_signal(t->pidfd, sig);
        if (t->wrapper_pidfd >= 0 && t->group != t->wrapper)
                (void) pidfd_signal(t->wrapper_pidfd, sig);
}

/* Waits until the holder and its wrapper are gone, at most TIMEOUT_MS; true when they are. */
static bool target_wait(const struct target *t, int timeout_ms) {
        int64_t deadline = run_now_ms() + timeout_ms;
        struct pollfd p[2] = {
                { .fd = t->pidfd, .events = POLLIN },
                { .fd = t->wrapper_pidfd, .events = POLLIN },
        };

        for (;;) {
                int64_t left = deadline - run_now_ms();

                if (poll(p, 2, left > 0 ? (int) left : 0) < 0 && errno != EINTR)
                        return false;
                if (p[0].revents)
                        p[0].fd = -1;
                if (p[1].revents)
                        p[1].fd = -1;
                if (p[0].fd < 0 && p[1].fd < 0)
                        return true;
                if (left <= 0)
                        return false;
        }
}

/* Stops T: SIGTERM, SIGKILL after --kill-after. 0 once it is gone, or EXIT_FAILURE. */
static int target_stop(const struct cli *c, struct target *t) {
        target_signal(t, SIGTERM);
        if (target_wait(t, c->kill_after_ms))
                return 0;
        target_signal(t, SIGKILL);
        if (target_wait(t, REPLACE_KILL_WAIT_MS))
                return 0;
        message_error("cannot replace pid %d in region '%s': it did not end after SIGKILL",
                      (int) t->in.pid, c->name);
        return EXIT_FAILURE;
}

static void sleep_ms(int ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

        (void) nanosleep(&ts, NULL);
}

/*
 * Waits for a seat while the seat of IN is still held under its record (its holder has
 * ended; what it left is ending), at most --kill-after. Returns as hc_join(), -ETIMEDOUT
 * also as soon as another launch took that seat instead: then that one is next. The
 * record changing sends no event, so this looks again every JOIN_STEP_MS.
 */
#define JOIN_STEP_MS 50
static int join_while_held(const struct cli *c, const hc_instance *in, hc_slot **ret) {
        int64_t deadline = run_now_ms() + c->kill_after_ms;
        int r;

        do {
                r = hc_join(c->name, RUN_OPTIONS(c, JOIN_STEP_MS), ret);
                if (r != -ETIMEDOUT)
                        return r;
        } while (run_now_ms() < deadline && same_record(c, in));
        return r;
}

int run_replace(const struct cli *c, hc_slot **ret) {
        int64_t record_deadline = -1;

        for (int round = 0; round < REPLACE_ROUNDS_MAX;) {
                struct target t = {};
                int r;

                r = hc_join(c->name, RUN_OPTIONS(c, 0), ret);
                if (r == 0)
                        return 0;
                if (r != -EBUSY)
                        return region_failure(c, "join", r);
                r = pick(c, &t.in);
                if (r == 0) {
                        round++;        /* a seat came free: take it */
                        continue;
                }
                if (r == -EAGAIN) {
                        /* a holder between its join and its record: a moment */
                        if (record_deadline < 0)
                                record_deadline = run_now_ms() + RECORD_WAIT_MS;
                        if (run_now_ms() > record_deadline) {
                                message_error("cannot replace the holders in region '%s': "
                                              "their records cannot be read", c->name);
                                return EXIT_FAILURE;
                        }
                        sleep_ms(10);
                        continue;
                }
                record_deadline = -1;
                if (r < 0) {
                        message_error("cannot list region '%s': %s", c->name, strerror(-r));
                        return EXIT_FAILURE;
                }

                r = target_open(c, &t);
                if (r == -ESRCH) {
                        /* gone already, or going: wait for its seat to come free */
                        target_close(&t);
                        r = join_while_held(c, &t.in, ret);
                        if (r == 0)
                                return 0;
                        if (r == -ETIMEDOUT && same_record(c, &t.in) &&
                            !still_held(c, &t.in, t.in.pid))
                                return say_not_holder(c, &t.in, -ESRCH);
                        if (r != -ETIMEDOUT) {
                                message_error("cannot join region '%s': %s", c->name,
                                              strerror(-r));
                                return EXIT_FAILURE;
                        }
                        round++;
                        continue;
                }
                if (r != 0) {
                        target_close(&t);
                        return r;
                }
                r = target_stop(c, &t);
                target_close(&t);
                if (r != 0)
                        return r;
                round++;

                /* Gone. Its seat comes free when the last copy of its descriptor is
                 * closed: at once, or when what it started in its group ends. Unless
                 * another launch took it first: then that one is next. */
                if (!same_record(c, &t.in))
                        continue;
                r = hc_join(c->name, RUN_OPTIONS(c, c->kill_after_ms), ret);
                if (r == 0)
                        return 0;
                if (r != -ETIMEDOUT) {
                        message_error("cannot join region '%s': %s", c->name, strerror(-r));
                        return EXIT_FAILURE;
                }
                if (t.group > 0 && same_record(c, &t.in)) {
                        (void) kill(-t.group, SIGKILL);
                        r = hc_join(c->name, RUN_OPTIONS(c, REPLACE_KILL_WAIT_MS), ret);
                        if (r == 0)
                                return 0;
                }
        }
        message_error("cannot replace the holders in region '%s': seats keep being taken",
                      c->name);
        return c->conflict_exit_code;
}
