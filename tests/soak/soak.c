/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The chaos soak: worker processes join, leave, count, list, wait on, create and remove
 * a few regions with various max, while this driver sends them SIGKILL, SIGTERM and
 * SIGSTOP/SIGCONT at random moments, preferring workers that are in the middle of a
 * join or a creation. Usage: soak [SECONDS [WORKERS]].
 *
 * What is checked, all the time and at every "freeze" (every worker stopped and every
 * killed one reaped, so that nothing moves):
 *   - the exact count of a region never exceeds its max;
 *   - at a freeze it equals the number of workers that hold a seat there, give or take
 *     the workers caught between a call and the note they keep of its outcome (exact
 *     when there are none); hc_list has as many entries, each naming one of those
 *     workers, except for seats being taken right then (see freeze_and_check());
 *   - no operation runs past its own timeout plus a generous margin (time spent stopped
 *     by us does not count);
 *   - every worker ends by our signal or with status 0 (no crash, no failed call);
 *   - at the end, once everyone has gone: the count is 0, hc_list() shows nobody, after
 *     it hc_reap() finds no dead record to clear, and no temporary file
 *     (".NAME.ID.tmp") remains after hc_names().
 * Prints the totals and exits 1 on any violation.
 *
 * Workers note what they are doing in a page shared with the driver. The note is the
 * driver's knowledge, the seat locks are the truth: the point is to see them agree.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "headcount.h"

#define WORKERS_MAX 64
#define MARGIN_NS (15 * 1000000000LL)    /* beyond an operation's own timeout */

static const struct {
        const char *name;
        unsigned max;
} regions[] = {
        { "solo", 1 },
        { "pair", 2 },
        { "few",  4 },
        { "many", 9 },
};
#define N_REGIONS (sizeof regions / sizeof regions[0])

enum state {
        IDLE,
        JOINING,        /* inside hc_join()/hc_region_join() */
        HOLDING,        /* holds a seat */
        LEAVING,        /* inside hc_leave() */
        CREATING,       /* inside hc_create() */
        QUERYING,       /* count, list, wait, remove */
};

/* One worker's note, in the shared page. Written by the worker, read by the driver;
 * op_start_ns is also moved forward by the driver while the worker is stopped. */
struct note {
        int state;                      /* enum state */
        int region;                     /* index into regions[] for the state */
        int64_t op_start_ns;            /* CLOCK_MONOTONIC when the current call began; 0 none */
        int64_t op_timeout_ns;          /* the call's own bound */
        uint64_t ops;                   /* calls made */
        int last_error;                 /* an unexpected result, for the report */
        char last_call[24];
};

struct shared {
        volatile int stop;              /* the driver asks workers to finish */
        struct note notes[WORKERS_MAX];
};

struct worker {
        pid_t pid;
        bool stopped;                   /* by us; waiting for SIGCONT */
        int64_t stopped_ns;             /* since when */
        int64_t cont_at_ns;             /* chaos: when to send SIGCONT */
        unsigned sent;                  /* the fatal signals we sent, as 1 << signo */
};

static struct shared *sh;
static char dir[64];
static struct worker workers[WORKERS_MAX];
static unsigned n_workers = 16;
static uint64_t total_ops, violations, sigkills, sigterms, sigstops, kills_in_join,
        kills_in_create, freezes, exact_checks, spawned;

static int64_t now_ns(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t rng_state;

static uint32_t rnd(uint32_t n) {
        /* xorshift64*: good enough to pick moments and operations */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return (uint32_t) ((rng_state * UINT64_C(2685821657736338717)) >> 32) % n;
}

static void violation(const char *format, ...) {
        va_list ap;

        violations++;
        fputs("soak: VIOLATION: ", stderr);
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fputc('\n', stderr);
}

static const hc_options *opts(unsigned max) {
        static hc_options o;

        o = (hc_options) { .size = sizeof o, .dir = dir, .max = max };
        return &o;
}

/* ---- The worker ---- */

static struct note *me;

static void begin(enum state st, int region, const char *call, int timeout_ms) {
        snprintf(me->last_call, sizeof me->last_call, "%s", call);
        me->op_timeout_ns = (int64_t) timeout_ms * 1000000LL;
        __atomic_store_n(&me->op_start_ns, now_ns(), __ATOMIC_RELAXED);
        me->region = region;
        __atomic_store_n(&me->state, st, __ATOMIC_RELEASE);
}

static void end(enum state st) {
        __atomic_store_n(&me->state, st, __ATOMIC_RELEASE);
        __atomic_store_n(&me->op_start_ns, 0, __ATOMIC_RELAXED);
        me->ops++;
}

static void unexpected(const char *call, int r) {
        me->last_error = r;
        fprintf(stderr, "soak: worker %d: %s: %s\n", (int) getpid(), call, strerror(-r));
        _exit(3);
}

static void pause_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static volatile sig_atomic_t term_asked;

static void on_term(int sig) {
        (void) sig;
        term_asked = 1;
}

static void hold(int ri, hc_slot *s) {
        hc_instance *l = NULL;
        int r;

        end(HOLDING);
        /* while holding, the region can never look empty or over full to us */
        if (rnd(3) == 0) {
                begin(HOLDING, ri, "count while holding", 0);
                r = hc_count(regions[ri].name, opts(0));
                end(HOLDING);
                if (r < 1 || (unsigned) r > regions[ri].max)
                        unexpected("count while holding", r < 0 ? r : -ERANGE);
        } else if (rnd(3) == 0) {
                begin(HOLDING, ri, "list while holding", 0);
                r = hc_list(regions[ri].name, opts(0), &l);
                end(HOLDING);
                if (r < 1 || (unsigned) r > regions[ri].max)
                        unexpected("list while holding", r < 0 ? r : -ERANGE);
                free(l);
        }
        pause_ms(rnd(20));
        begin(LEAVING, ri, "leave", 0);
        s = hc_leave(s);
        end(IDLE);
}

static _Noreturn void worker_main(unsigned idx) {
        hc_region *handle[N_REGIONS] = {};

        me = &sh->notes[idx];
        memset(me, 0, sizeof *me);
        rng_state = (uint64_t) getpid() * UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t) now_ns();
        if (idx % 2) {
                /* half of the workers leave cleanly on SIGTERM, and see EINTR meanwhile */
                struct sigaction sa = { .sa_handler = on_term };
                sigemptyset(&sa.sa_mask);
                (void) sigaction(SIGTERM, &sa, NULL);
        }

        while (!sh->stop && !term_asked) {
                int ri = (int) rnd(N_REGIONS), op = (int) rnd(100), timeout, r;
                const char *name = regions[ri].name;
                unsigned max = regions[ri].max;
                hc_instance *l = NULL;
                hc_slot *s = NULL;

                if (op < 40) {
                        timeout = rnd(2) ? 0 : (int) rnd(200);
                        begin(JOINING, ri, "join", timeout);
                        r = hc_join(name, HC_OPTIONS(.dir = dir, .max = max,
                                                     .timeout_ms = timeout, .tag = "soak"), &s);
                        if (r == 0)
                                hold(ri, s);
                        else if (r == -EBUSY || r == -ETIMEDOUT || r == -EINTR)
                                end(IDLE);
                        else
                                unexpected("join", r);
                } else if (op < 50) {
                        if (!handle[ri]) {
                                begin(CREATING, ri, "region_open", 0);
                                r = hc_region_open(name, opts(max), &handle[ri]);
                                end(IDLE);
                                if (r < 0)
                                        unexpected("region_open", r);
                        }
                        begin(JOINING, ri, "region_join", 0);
                        r = hc_region_join(handle[ri], opts(max), &s);
                        if (r == 0)
                                hold(ri, s);
                        else if (r == -EBUSY)
                                end(IDLE);
                        else if (r == -ESTALE) {        /* retired: open the name again */
                                end(IDLE);
                                handle[ri] = hc_region_close(handle[ri]);
                        } else
                                unexpected("region_join", r);
                } else if (op < 65) {
                        begin(QUERYING, ri, "count", 0);
                        r = hc_count(name, opts(0));
                        end(IDLE);
                        if (r < 0 && r != -ENOENT)
                                unexpected("count", r);
                        if (r > (int) max)
                                unexpected("count over max", -ERANGE);
                } else if (op < 77) {
                        begin(QUERYING, ri, "list", 0);
                        r = hc_list(name, opts(0), &l);
                        end(IDLE);
                        if (r < 0 && r != -ENOENT)
                                unexpected("list", r);
                        if (r > (int) max)
                                unexpected("list over max", -ERANGE);
                        free(l);
                } else if (op < 89) {
                        timeout = (int) rnd(150);
                        begin(QUERYING, ri, "wait", timeout);
                        r = hc_wait(name, opts(0), max, timeout);
                        end(IDLE);
                        if (r < 0 && r != -ETIMEDOUT && r != -EINTR)
                                unexpected("wait", r);
                } else if (op < 95) {
                        begin(CREATING, ri, "create", 0);
                        r = hc_create(name, opts(0));
                        end(IDLE);
                        if (r < 0 && r != -EINTR)
                                unexpected("create", r);
                } else {
                        /* retire the region when nobody is in it: the next join creates
                         * it again, which gives the kills creations to land in */
                        begin(QUERYING, ri, "remove", 5000);
                        r = hc_remove(name, opts(0));
                        end(IDLE);
                        if (r < 0 && r != -EBUSY && r != -ENOENT && r != -EINTR)
                                unexpected("remove", r);
                }
        }
        for (unsigned i = 0; i < N_REGIONS; i++)
                handle[i] = hc_region_close(handle[i]);
        _exit(0);
}

/* ---- The driver ---- */

static void spawn(unsigned i) {
        pid_t pid;

        memset(&sh->notes[i], 0, sizeof sh->notes[i]);
        pid = fork();
        if (pid < 0) {
                perror("soak: fork");
                exit(2);
        }
        if (pid == 0)
                worker_main(i);
        workers[i] = (struct worker) { .pid = pid };
        spawned++;
}

/* Accounts for a worker that has ended with STATUS. */
static void ended(unsigned i, int status) {
        struct worker *w = &workers[i];
        struct note *n = &sh->notes[i];

        total_ops += n->ops;
        if (WIFSIGNALED(status)) {
                if (!(w->sent & (1u << WTERMSIG(status))))
                        violation("worker %d died of signal %d, which we did not send, during %s",
                                  (int) w->pid, WTERMSIG(status), n->last_call);
        } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
                violation("worker %d exited with %d after %s: %s", (int) w->pid,
                          WEXITSTATUS(status), n->last_call, strerror(-n->last_error));
        w->pid = 0;
}

/* Waits for worker I to stop or end; false when it ended. */
static bool await_stop(unsigned i) {
        int status;

        for (;;) {
                pid_t p = waitpid(workers[i].pid, &status, WUNTRACED);
                if (p < 0 && errno == EINTR)
                        continue;
                if (p < 0) {
                        perror("soak: waitpid");
                        exit(2);
                }
                if (WIFSTOPPED(status))
                        return true;
                ended(i, status);
                return false;
        }
}

static void stop_worker(unsigned i) {
        struct worker *w = &workers[i];

        if (w->stopped)
                return;
        (void) kill(w->pid, SIGSTOP);
        if (await_stop(i)) {
                w->stopped = true;
                w->stopped_ns = now_ns();
        }
}

static void cont_worker(unsigned i) {
        struct worker *w = &workers[i];
        struct note *n = &sh->notes[i];
        int64_t start = __atomic_load_n(&n->op_start_ns, __ATOMIC_RELAXED);

        if (!w->pid || !w->stopped)
                return;
        /* time spent stopped by us does not count against the worker's call */
        if (start)
                __atomic_store_n(&n->op_start_ns, start + (now_ns() - w->stopped_ns),
                                 __ATOMIC_RELAXED);
        w->stopped = false;
        w->cont_at_ns = 0;
        (void) kill(w->pid, SIGCONT);
}

static void reap_ended(void) {
        for (unsigned i = 0; i < n_workers; i++) {
                int status;
                pid_t p;

                if (!workers[i].pid)
                        continue;
                p = waitpid(workers[i].pid, &status, WNOHANG);
                if (p == workers[i].pid && !WIFSTOPPED(status) && !WIFCONTINUED(status))
                        ended(i, status);
        }
}

static void check_hangs(void) {
        int64_t t = now_ns();

        for (unsigned i = 0; i < n_workers; i++) {
                struct note *n = &sh->notes[i];
                int64_t start = __atomic_load_n(&n->op_start_ns, __ATOMIC_RELAXED);

                if (!workers[i].pid || workers[i].stopped || !start)
                        continue;
                if (t - start > n->op_timeout_ns + MARGIN_NS) {
                        violation("worker %d: %s has run for %.1f s (its bound: %.1f s)",
                                  (int) workers[i].pid, n->last_call, (t - start) / 1e9,
                                  n->op_timeout_ns / 1e9);
                        __atomic_store_n(&n->op_start_ns, 0, __ATOMIC_RELAXED);
                }
        }
}

static void check_max(void) {
        for (unsigned r = 0; r < N_REGIONS; r++) {
                int c = hc_count(regions[r].name, opts(0));

                if (c < 0 && c != -ENOENT)
                        violation("count of '%s' failed: %s", regions[r].name, strerror(-c));
                if (c > (int) regions[r].max)
                        violation("count of '%s' is %d, over its max %u", regions[r].name, c,
                                  regions[r].max);
        }
}

/* Every worker stopped, every killed one reaped: the count must match our notes. */
static void freeze_and_check(void) {
        for (unsigned i = 0; i < n_workers; i++)
                if (workers[i].pid)
                        stop_worker(i);
        freezes++;

        for (unsigned r = 0; r < N_REGIONS; r++) {
                unsigned holding = 0, moving = 0, stale = 0;
                hc_instance *l = NULL;
                int c, n;

                for (unsigned i = 0; i < n_workers; i++) {
                        struct note *no = &sh->notes[i];
                        int st = __atomic_load_n(&no->state, __ATOMIC_ACQUIRE);

                        if (!workers[i].pid || no->region != (int) r)
                                continue;
                        if (st == HOLDING)
                                holding++;
                        else if (st == JOINING || st == LEAVING)
                                moving++;
                }
                c = hc_count(regions[r].name, opts(0));
                if (c == -ENOENT)
                        c = 0;
                if (c < 0) {
                        violation("count of '%s' failed: %s", regions[r].name, strerror(-c));
                        continue;
                }
                if ((unsigned) c < holding || (unsigned) c > holding + moving)
                        violation("count of '%s' is %d; workers holding %u, in a join or leave %u",
                                  regions[r].name, c, holding, moving);
                if (moving == 0)
                        exact_checks++;
                if (c > (int) regions[r].max)
                        violation("count of '%s' is %d, over its max %u", regions[r].name, c,
                                  regions[r].max);

                n = hc_list(regions[r].name, opts(0), &l);
                if (n == -ENOENT)
                        n = 0;
                if (n < 0) {
                        violation("list of '%s' failed: %s", regions[r].name, strerror(-n));
                        continue;
                }
                if (n != c)
                        violation("list of '%s' has %d entries, count said %d", regions[r].name,
                                  n, c);
                for (int k = 0; k < n; k++) {
                        bool known = false;

                        if (l[k].flags & HC_INSTANCE_NO_RECORD) {
                                stale++;
                                continue;
                        }
                        for (unsigned i = 0; i < n_workers; i++) {
                                int st = __atomic_load_n(&sh->notes[i].state, __ATOMIC_ACQUIRE);
                                if (workers[i].pid == l[k].pid && sh->notes[i].region == (int) r &&
                                    (st == HOLDING || st == JOINING || st == LEAVING))
                                        known = true;
                        }
                        if (!known)
                                stale++;
                }
                /* A seat taken a moment ago shows no record, or still the record of its
                 * previous holder, until the joiner has written its own; a seat being
                 * given back shows no record, since a leave erases its record first (a
                 * record left on a free seat means a death): only a worker in a join or
                 * a leave may explain an entry that names none of our holders. */
                if (stale > moving)
                        violation("list of '%s' has %u entries for none of the %u holders, "
                                  "and only %u joiners and leavers to explain them",
                                  regions[r].name, stale, holding, moving);
                free(l);
        }

        for (unsigned i = 0; i < n_workers; i++)
                if (workers[i].pid && !workers[i].cont_at_ns)
                        cont_worker(i);
}

/* One act of chaos on a random worker, preferring one in a join or a creation. */
static void chaos(void) {
        unsigned i = rnd(n_workers), sig = rnd(100);
        struct worker *w;
        int st;

        if (rnd(2)) {
                for (unsigned k = 0; k < n_workers; k++) {
                        unsigned j = (i + k) % n_workers;
                        int s = __atomic_load_n(&sh->notes[j].state, __ATOMIC_ACQUIRE);
                        if (workers[j].pid && !workers[j].stopped && !workers[j].sent &&
                            (s == JOINING || s == CREATING)) {
                                i = j;
                                break;
                        }
                }
        }
        w = &workers[i];
        if (!w->pid || w->stopped || w->sent)
                return;
        st = __atomic_load_n(&sh->notes[i].state, __ATOMIC_ACQUIRE);
        if (sig < 40) {
                w->sent |= 1u << SIGKILL;
                (void) kill(w->pid, SIGKILL);
                sigkills++;
        } else if (sig < 60) {
                w->sent |= 1u << SIGTERM;
                (void) kill(w->pid, SIGTERM);
                sigterms++;
        } else {
                stop_worker(i);
                if (w->pid && w->stopped)
                        w->cont_at_ns = now_ns() + (int64_t) rnd(50) * 1000000LL;
                sigstops++;
                return;
        }
        if (st == JOINING)
                kills_in_join++;
        else if (st == CREATING)
                kills_in_create++;
}

static unsigned temporaries(void) {
        DIR *d = opendir(dir);
        struct dirent *de;
        unsigned n = 0;
        size_t len;

        if (!d)
                return 0;
        while ((de = readdir(d))) {
                len = strlen(de->d_name);
                if (de->d_name[0] == '.' && len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0) {
                        fprintf(stderr, "soak: temporary left: %s\n", de->d_name);
                        n++;
                }
        }
        closedir(d);
        return n;
}

static int names_cb(const char *name, int count, void *u) {
        (void) u;
        if (count < 0)
                violation("names: region '%s' cannot be read: %s", name, strerror(-count));
        else if (count > 0)
                violation("names: region '%s' still has %d instances", name, count);
        return 0;
}

static void final_checks(void) {
        for (unsigned r = 0; r < N_REGIONS; r++) {
                hc_instance *l = NULL;
                int c = hc_count(regions[r].name, opts(0)), n;

                if (c > 0 || (c < 0 && c != -ENOENT))
                        violation("after the end, '%s' counts %d", regions[r].name, c);
                /* hc_list() clears the records that dead holders and leaves without a
                 * handle left behind; after it nothing may be left for the reaper */
                n = hc_list(regions[r].name, opts(0), &l);
                if (n > 0 || (n < 0 && n != -ENOENT))
                        violation("after the end, hc_list('%s') returned %d", regions[r].name, n);
                free(l);
                n = hc_reap(regions[r].name, opts(0));
                if (n > 0 || (n < 0 && n != -ENOENT))
                        violation("after the end and a list, hc_reap('%s') cleared %d records",
                                  regions[r].name, n);
        }
        if (hc_names(opts(0), names_cb, NULL) < 0)
                violation("hc_names failed");
        if (temporaries() > 0)
                violation("temporary files remain after hc_names()");
}

static void cleanup_dir(void) {
        for (unsigned r = 0; r < N_REGIONS; r++)
                (void) hc_remove(regions[r].name, opts(0));
        if (rmdir(dir) < 0)
                fprintf(stderr, "soak: %s is not empty after removing the regions\n", dir);
}

static void on_alarm(int sig) {
        (void) sig;
        static const char msg[] = "soak: VIOLATION: the driver itself hung for 60 s\n";
        (void) !write(STDERR_FILENO, msg, sizeof msg - 1);
        _exit(1);
}

int main(int argc, char *argv[]) {
        int seconds = argc > 1 ? atoi(argv[1]) : 60;
        int64_t deadline, next_freeze, t;

        if (argc > 2)
                n_workers = (unsigned) atoi(argv[2]);
        if (seconds <= 0 || n_workers < 2 || n_workers > WORKERS_MAX) {
                fprintf(stderr, "usage: soak [SECONDS [WORKERS (2..%d)]]\n", WORKERS_MAX);
                return 64;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        rng_state = (uint64_t) now_ns() ^ (uint64_t) getpid() << 32;
        signal(SIGALRM, on_alarm);
        sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (sh == MAP_FAILED) {
                perror("soak: mmap");
                return 2;
        }
        snprintf(dir, sizeof dir, "/dev/shm/hc-soak-XXXXXX");
        if (!mkdtemp(dir)) {
                perror("soak: mkdtemp");
                return 2;
        }
        printf("soak: %d s, %u workers, regions in %s\n", seconds, n_workers, dir);

        for (unsigned i = 0; i < n_workers; i++)
                spawn(i);
        deadline = now_ns() + (int64_t) seconds * 1000000000LL;
        next_freeze = now_ns() + 100000000LL;
        while ((t = now_ns()) < deadline) {
                alarm(60);
                pause_ms(1 + rnd(5));
                reap_ended();
                for (unsigned i = 0; i < n_workers; i++) {
                        if (!workers[i].pid)
                                spawn(i);
                        else if (workers[i].cont_at_ns && now_ns() >= workers[i].cont_at_ns)
                                cont_worker(i);
                }
                if (rnd(4) == 0)
                        chaos();
                check_max();
                check_hangs();
                if (now_ns() >= next_freeze) {
                        reap_ended();
                        freeze_and_check();
                        next_freeze = now_ns() + 50000000LL + rnd(200) * 1000000LL;
                }
        }

        /* The end: let the stopped go, ask everyone to finish, and wait for them. */
        sh->stop = 1;
        for (unsigned i = 0; i < n_workers; i++)
                if (workers[i].pid && workers[i].stopped)
                        cont_worker(i);
        for (unsigned i = 0; i < n_workers; i++) {
                int status;

                if (!workers[i].pid)
                        continue;
                alarm(60);
                if (waitpid(workers[i].pid, &status, 0) == workers[i].pid)
                        ended(i, status);
        }
        alarm(60);
        final_checks();
        cleanup_dir();
        alarm(0);

        printf("soak: operations %" PRIu64 ", workers started %" PRIu64 ", SIGKILL %" PRIu64
               ", SIGTERM %" PRIu64 ", SIGSTOP %" PRIu64 ", kills during a join %" PRIu64
               ", during a creation %" PRIu64 ", freezes %" PRIu64 " (exact checks %" PRIu64
               "), violations %" PRIu64 "\n", total_ops, spawned, sigkills, sigterms, sigstops,
               kills_in_join, kills_in_create, freezes, exact_checks, violations);
        return violations ? 1 : 0;
}
