/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A program with a shared variable, for test-section.c, which starts it several times as
 * independent processes (fork and exec) and drives it over stdin and stdout:
 *   section-helper DIR NAME    attaches, prints "attached COUNTER WHO", then obeys
 *   get | inc | who TEXT | lock | unlock | die | detach    one line each
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "headcount.h"

struct shared {
        long counter;
        char who[32];
};

static HC_SHARED_SECTION(struct shared, var) = { .value = { .counter = 100, .who = "seed" } };

int main(int argc, char *argv[]) {
        char line[128];
        int r;

        if (argc != 3)
                return 64;
        r = hc_section_attach(argv[2], HC_OPTIONS(.dir = argv[1]), &var, sizeof var);
        if (r < 0) {
                printf("error %d\n", r);
                return 1;
        }
        printf("attached %ld %s\n", var.value.counter, var.value.who);
        fflush(stdout);

        while (fgets(line, sizeof line, stdin)) {
                line[strcspn(line, "\n")] = '\0';
                if (strcmp(line, "get") == 0)
                        printf("%ld %s\n", var.value.counter, var.value.who);
                else if (strcmp(line, "inc") == 0) {
                        r = hc_section_lock(&var, -1);
                        var.value.counter++;
                        printf("%ld %d\n", var.value.counter, r);
                        (void) hc_section_unlock(&var);
                } else if (strncmp(line, "who ", 4) == 0) {
                        size_t n = strnlen(line + 4, sizeof var.value.who - 1);

                        r = hc_section_lock(&var, -1);
                        memcpy(var.value.who, line + 4, n);
                        var.value.who[n] = '\0';
                        (void) hc_section_unlock(&var);
                        printf("ok %d\n", r);
                } else if (strcmp(line, "lock") == 0)
                        printf("%d\n", hc_section_lock(&var, 5000));
                else if (strcmp(line, "unlock") == 0)
                        printf("%d\n", hc_section_unlock(&var));
                else if (strcmp(line, "die") == 0) {
                        (void) hc_section_lock(&var, -1);
                        var.value.counter = -1;          /* half-way through an update */
                        raise(SIGKILL);
                } else if (strcmp(line, "detach") == 0) {
                        r = hc_section_detach(&var);
                        var.value.counter += 1000;       /* private from now on */
                        printf("%d %ld\n", r, var.value.counter);
                } else
                        printf("what?\n");
                fflush(stdout);
        }
        return 0;
}
