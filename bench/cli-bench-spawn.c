/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Times whole processes for bench/cli-bench.sh: each command is started with
 * posix_spawn() and waited for, in rounds that take the commands in turn, so that all
 * of them see the same machine load. Prints one line per command: its label, the median
 * and the 10th and 90th percentile wall time in microseconds. The commands' output goes to
 * /dev/null.
 *
 *   cli-bench-spawn ROUNDS LABEL CMD [ARG...] ';;' LABEL CMD [ARG...] ...
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

#define MAX_CMDS 8

struct cmd {
        const char *label;
        char **argv;
        double *usec;
};

static double now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int compare(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

int main(int argc, char *argv[]) {
        struct cmd cmds[MAX_CMDS];
        posix_spawn_file_actions_t fa;
        int ncmds = 0, rounds;

        if (argc < 4) {
                fprintf(stderr, "usage: %s ROUNDS LABEL CMD [ARG...] [';;' LABEL CMD...]\n", argv[0]);
                return 64;
        }
        rounds = atoi(argv[1]);
        for (int i = 2; i < argc && ncmds < MAX_CMDS;) {
                cmds[ncmds].label = argv[i++];
                cmds[ncmds].argv = argv + i;
                while (i < argc && strcmp(argv[i], ";;") != 0)
                        i++;
                if (i < argc)
                        argv[i++] = NULL;
                cmds[ncmds].usec = calloc((size_t) rounds, sizeof(double));
                if (!cmds[ncmds].usec)
                        return 1;
                ncmds++;
        }

        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);

        for (int r = 0; r < rounds; r++)
                for (int c = 0; c < ncmds; c++) {
                        double t0 = now_usec();
                        pid_t pid;
                        int status;

                        if (posix_spawn(&pid, cmds[c].argv[0], &fa, NULL, cmds[c].argv, environ) != 0 ||
                            waitpid(pid, &status, 0) != pid) {
                                perror(cmds[c].argv[0]);
                                return 1;
                        }
                        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                                fprintf(stderr, "%s: exit status %d\n", cmds[c].label, status);
                                return 1;
                        }
                        cmds[c].usec[r] = now_usec() - t0;
                }

        for (int c = 0; c < ncmds; c++) {
                qsort(cmds[c].usec, (size_t) rounds, sizeof(double), compare);
                printf("%s %.1f %.1f %.1f\n", cmds[c].label, cmds[c].usec[rounds / 2],
                       cmds[c].usec[rounds / 10], cmds[c].usec[rounds * 9 / 10]);
        }
        return 0;
}
