/*
 * simtest.c - helpers for the simulated host's tests (see simtest.h).
 */
#define _GNU_SOURCE
#include "simtest.h"

#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xenevtchn.h>
#include <xengnttab.h>

int st_failures;
static char tmpdir[PATH_MAX];
static pid_t owner;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    if (owner == getpid() && tmpdir[0])
        nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void on_signal(int sig)
{
    cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void reexec_with_sim(char **argv)
{
    char exe[PATH_MAX], lib[PATH_MAX + 8];
    const char *cur = getenv("LD_LIBRARY_PATH");
    char *slash;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    REQUIRE(n > 0);
    exe[n] = 0;
    slash = strrchr(exe, '/');
    REQUIRE(slash);
    *slash = 0;
    snprintf(lib, sizeof(lib), "%s/lib", exe);
    if (cur && strncmp(cur, lib, strlen(lib)) == 0)
        return;                          /* already first in the path */
    setenv("LD_LIBRARY_PATH", lib, 1);
    execv("/proc/self/exe", argv);
    perror("re-exec");
    exit(1);
}

static void assert_sim_loaded(void)
{
    Dl_info a, b;

    REQUIRE(dladdr((void *)xengnttab_open, &a) && a.dli_fname);
    REQUIRE(dladdr((void *)xenevtchn_open, &b) && b.dli_fname);
    if (!strstr(a.dli_fname, "tests/sim/lib/") || !strstr(b.dli_fname, "tests/sim/lib/")) {
        fprintf(stderr, "FATAL: real Xen libraries loaded (%s, %s), not the simulation\n",
                a.dli_fname, b.dli_fname);
        exit(1);
    }
}

void st_init(int argc, char **argv)
{
    const char *base = getenv("TMPDIR");

    (void)argc;
    reexec_with_sim(argv);
    assert_sim_loaded();
    snprintf(tmpdir, sizeof(tmpdir), "%s/xsimtest.XXXXXX", base && *base ? base : "/tmp");
    REQUIRE(mkdtemp(tmpdir));
    owner = getpid();
    atexit(cleanup);
    /* Best effort even on a crash: a failing test must not leave its
     * simulated host behind. */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGSEGV, on_signal);
    signal(SIGBUS, on_signal);
    signal(SIGABRT, on_signal);
    signal(SIGFPE, on_signal);
    signal(SIGPIPE, SIG_IGN);
    setenv("XENSIM_DIR", tmpdir, 1);
    setenv("XENSIM_DOMID", "0", 1);
}

const char *st_dir(void)
{
    return tmpdir;
}

pid_t st_spawn(int (*fn)(void *), void *arg)
{
    pid_t pid;

    fflush(NULL);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0)
        _exit(fn(arg));
    return pid;
}

int st_wait(pid_t pid)
{
    int status;

    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

int st_in_child(int (*fn)(void *), void *arg)
{
    return st_wait(st_spawn(fn, arg));
}

int st_readable(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    return poll(&p, 1, ms) > 0 && (p.revents & POLLIN);
}

int st_done(const char *name)
{
    if (st_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, st_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}
