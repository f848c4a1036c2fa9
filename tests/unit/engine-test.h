/* engine-test.h - what the I/O engine's unit tests share (test-nowait,
 * test-pool-hol, test-nowait-refused): an operation that records its
 * completion, a timer callback that only wakes the loop up, and a shell
 * runner for their set-up (file systems, loop devices). */
#ifndef XBD_TEST_ENGINE_TEST_H
#define XBD_TEST_ENGINE_TEST_H

#include <stddef.h>
#include <sys/uio.h>
#include <ev.h>

#include "io_aio.h"

/* One request to the engine with one buffer; op_done records the result
 * and counts the calls (exactly one is the engine's promise). */
struct op {
    struct xbd_aio aio;         /* first: the callback gets this pointer */
    struct iovec iov;
    long res;
    int calls;
};

void op_done(struct xbd_aio *a, long res);

/* A repeating timer with this callback only wakes the loop up, so that
 * the tests' bounded waits (ev_run(EVRUN_ONCE) until a deadline) end. */
void wake_tick_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* Run the shell command tmpl with every "@" replaced by arg; with out,
 * its first output line goes there (without the newline).  The command's
 * status as system()/pclose() give it (0: success). */
int sh(const char *tmpl, const char *arg, char *out, size_t outlen);

/* For the pool tests: a 64 MiB ext4 image loop-mounted on <dir>/mnt
 * (dir: a mkdtemp() template, filled in) with *held open on the sparse
 * 1 GiB file <dir>/mnt/held (its fallocate() waits while the mount is
 * frozen), *mnt on the mount's directory (FIFREEZE, FITHAW) and *plain on
 * the 1 MiB file <dir>/plain, outside it.  0, or 77 (skip: not root, no
 * loop mount); a descriptor it cannot open is -1.  held_fs_done unmounts
 * and removes it all. */
int held_fs_setup(char *dir, int *held, int *mnt, int *plain);
void held_fs_done(const char *dir);

#endif
