/*
 * io_pool.h - a small pool of worker threads for the operations Linux has
 * no asynchronous form for (BLKDISCARD, BLKSECDISCARD, fallocate punch
 * hole, fdatasync where IOCB_CMD_FDSYNC is refused), so that none of them
 * ever runs in the event loop every guest shares.
 *
 * The pool sees opaque jobs only: run() is called in a worker, the job is
 * then handed back to the loop, which learns about it through an eventfd
 * (xbd_pool_fd) and collects it with xbd_pool_reap.  Whoever submitted a
 * job owns its memory and must keep it valid until it is reaped (or until
 * xbd_pool_free returned).  The queue is bounded: xbd_pool_submit refuses
 * a job once <capacity> jobs are queued, running or finished but not yet
 * reaped; the caller keeps it and tries again after a reap.
 */
#ifndef XENBLKD_IO_POOL_H
#define XENBLKD_IO_POOL_H

#include <stdbool.h>

struct xbd_pool_job;
typedef void xbd_pool_run_fn(struct xbd_pool_job *j);

struct xbd_pool_job {
    xbd_pool_run_fn *run;       /* in a worker thread, without any lock */
    struct xbd_pool_job *next;  /* the pool's */
};

struct xbd_pool;

/* <threads> workers, at most <capacity> jobs held.  When a job is
 * submitted while every worker is busy (perhaps held by storage that
 * hangs), one more is started, up to <max_threads> (a failure is logged;
 * the job waits for a worker that exists); a worker over <threads> exits
 * once idle for <idle_exit_ms>.  NULL + log line on failure. */
struct xbd_pool *xbd_pool_new(unsigned threads, unsigned max_threads, unsigned capacity,
                              unsigned idle_exit_ms);
/* Stop taking jobs: those not yet started are dropped (never run, never
 * reaped; their owners are going away); returns how many.  Only at exit:
 * an orderly stop waits for its jobs before. */
unsigned xbd_pool_stop(struct xbd_pool *p);
/* Stop (if not done yet) and wait for the jobs running to finish, joining
 * every worker: after it, no worker touches a job (or its file
 * descriptor) again. */
void xbd_pool_join(struct xbd_pool *p);
/* Stop (if not done yet), wait for the jobs running to finish, join the
 * workers, free. */
void xbd_pool_free(struct xbd_pool *p);

/* 0, or -EAGAIN when the pool holds <capacity> jobs already. */
int xbd_pool_submit(struct xbd_pool *p, struct xbd_pool_job *j);
/* Readable (EV_READ) when finished jobs wait to be reaped, or a worker
 * exited idle and waits to be joined. */
int xbd_pool_fd(const struct xbd_pool *p);
/* The finished jobs, oldest first (linked by next), NULL if none; joins
 * the workers that exited idle. */
struct xbd_pool_job *xbd_pool_reap(struct xbd_pool *p);
/* Jobs submitted and not yet reaped. */
unsigned xbd_pool_held(const struct xbd_pool *p);
bool xbd_pool_full(const struct xbd_pool *p);
/* Workers running a job now, and workers there are. */
void xbd_pool_get_workers(struct xbd_pool *p, unsigned *busy, unsigned *live);

#endif
