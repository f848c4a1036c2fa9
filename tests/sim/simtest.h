/*
 * simtest.h - tiny helpers shared by the tests of the simulated host.
 */
#ifndef SIMTEST_H
#define SIMTEST_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

/* Make sure the process runs on the simulated libxengnttab/libxenevtchn
 * (re-executing itself with LD_LIBRARY_PATH=<dir of the binary>/lib if
 * needed), create a private $XENSIM_DIR removed at exit, and check that
 * the libraries really loaded are the simulated ones. */
void st_init(int argc, char **argv);
const char *st_dir(void);

extern int st_failures;
#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            st_failures++;                                                  \
        }                                                                   \
    } while (0)
#define REQUIRE(cond)                                                       \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "FATAL %s:%d: %s\n", __FILE__, __LINE__, #cond);\
            exit(1);                                                        \
        }                                                                   \
    } while (0)

/* Run fn in a child process; returns its exit status (or 128+signal). */
int st_in_child(int (*fn)(void *), void *arg);
/* Fork a child running fn, do not wait. */
pid_t st_spawn(int (*fn)(void *), void *arg);
int st_wait(pid_t pid);
/* Wait until fd is readable, up to ms; 1 readable, 0 not. */
int st_readable(int fd, int ms);
/* Final verdict: prints and returns the exit code (0 pass, 1 fail). */
int st_done(const char *name);

#endif
