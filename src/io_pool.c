/*
 * io_pool.c - worker threads for blocking operations (see io_pool.h).
 *
 * One mutex guards the two lists the loop and the workers share (jobs to
 * run, jobs finished); it is held only to link or unlink a job, never
 * while a job runs, so the loop never waits for a discard.  The loop alone
 * counts the jobs it holds (submit, reap), so the bound needs no lock.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "io_pool.h"
#include "xenblkd/log.h"

/* A worker thread's slot; state changes under the lock, FREE -> LIVE only
 * in the loop (grow), EXITED -> FREE only there (join_exited). */
struct xbd_pool_worker {
    struct xbd_pool *p;
    pthread_t tid;
    enum { W_FREE, W_LIVE, W_EXITED } state;
};

struct xbd_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;            /* todo became non-empty, or stop */
    struct xbd_pool_job *todo, **todo_tail;
    struct xbd_pool_job *done, **done_tail;
    bool stop;
    int efd;
    unsigned capacity;
    unsigned held;                  /* loop only */
    unsigned base, max;             /* threads kept, threads at most */
    unsigned ntodo;                 /* jobs in todo */
    unsigned live;                  /* workers started and not exited */
    unsigned idle;                  /* of which waiting for a job */
    unsigned exited;                /* slots to join (join_exited) */
    unsigned idle_exit_ms;          /* a worker over base exits after this */
    bool create_failed;             /* said once, until a creation works */
    struct xbd_pool_worker *workers; /* max slots */
};

static void push(struct xbd_pool_job ***tail, struct xbd_pool_job *j)
{
    j->next = NULL;
    **tail = j;
    *tail = &j->next;
}

static void wake_loop(struct xbd_pool *p)
{
    uint64_t one = 1;

    /* Only fails when the counter is about to overflow, and then the loop
     * is readable anyway. */
    if (write(p->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        xbd_warn("worker pool eventfd: %s", strerror(errno));
}

/* When an idle worker over the base gives up waiting. */
static void idle_deadline(const struct xbd_pool *p, struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += p->idle_exit_ms / 1000;
    ts->tv_nsec += (long)(p->idle_exit_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *worker(void *arg)
{
    struct xbd_pool_worker *w = arg;
    struct xbd_pool *p = w->p;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        struct xbd_pool_job *j;
        struct timespec until;
        bool timed_out = false;

        /* Workers over the base were started for disks whose jobs hang
         * (grow): once those let go and nothing needs them for a while,
         * they go.  Only the daemon's pace: nothing waits for it but the
         * join of the thread (xbd_pool_reap). */
        idle_deadline(p, &until);
        p->idle++;
        while (!p->todo && !p->stop && !timed_out) {
            if (p->live > p->base)
                timed_out = pthread_cond_timedwait(&p->work, &p->lock, &until) == ETIMEDOUT;
            else
                pthread_cond_wait(&p->work, &p->lock);
        }
        p->idle--;
        if (p->stop)
            break;
        if (!p->todo) {
            if (p->live <= p->base)
                continue;
            w->state = W_EXITED;
            p->live--;
            p->exited++;
            wake_loop(p);
            break;
        }
        j = p->todo;
        p->todo = j->next;
        p->ntodo--;
        if (!p->todo)
            p->todo_tail = &p->todo;
        pthread_mutex_unlock(&p->lock);

        j->run(j);

        pthread_mutex_lock(&p->lock);
        push(&p->done_tail, j);
        wake_loop(p);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Start the worker of slot i (FREE).  Workers must never take a signal
 * meant for the loop (SIGTERM, SIGHUP are libev's): they start with every
 * signal blocked. */
static int start_worker(struct xbd_pool *p, unsigned i)
{
    struct xbd_pool_worker *w = &p->workers[i];
    sigset_t all, old;
    char name[16];
    int err;

    w->p = p;
    pthread_mutex_lock(&p->lock);
    w->state = W_LIVE;
    p->live++;
    pthread_mutex_unlock(&p->lock);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&w->tid, NULL, worker, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        pthread_mutex_lock(&p->lock);
        w->state = W_FREE;
        p->live--;
        pthread_mutex_unlock(&p->lock);
        return err;
    }
    /* Named for top -H and ps -L (15 characters at most); a failure
     * costs only the name. */
    snprintf(name, sizeof(name), "xbd-io-%u", i % 100000u);
    (void)pthread_setname_np(w->tid, name);
    return 0;
}

/* Join the n workers that exited idle (loop only, n taken from exited
 * under the lock): their slots are free again. */
static int slot_state(struct xbd_pool *p, unsigned i)
{
    int st;

    pthread_mutex_lock(&p->lock);
    st = p->workers[i].state;
    pthread_mutex_unlock(&p->lock);
    return st;
}

static void join_slot(struct xbd_pool *p, unsigned i)
{
    pthread_join(p->workers[i].tid, NULL);
    pthread_mutex_lock(&p->lock);
    p->workers[i].state = W_FREE;
    pthread_mutex_unlock(&p->lock);
}

static void join_exited(struct xbd_pool *p, unsigned n)
{
    for (unsigned i = 0; n && i < p->max; i++) {
        if (slot_state(p, i) != W_EXITED)
            continue;
        join_slot(p, i);
        n--;
    }
}

/* A job waits and no worker is free to take it: one more worker, if
 * under max.  A failure is logged (once until a creation works again);
 * the job then waits for a worker that exists. */
static void grow(struct xbd_pool *p)
{
    unsigned i, n, live;
    int err;

    pthread_mutex_lock(&p->lock);
    n = p->exited;
    p->exited = 0;
    pthread_mutex_unlock(&p->lock);
    join_exited(p, n);
    for (i = 0; i < p->max && slot_state(p, i) != W_FREE; i++)
        ;
    if (i == p->max)
        return;
    err = start_worker(p, i);
    if (err && !p->create_failed) {
        pthread_mutex_lock(&p->lock);
        live = p->live;
        pthread_mutex_unlock(&p->lock);
        xbd_warn("worker pool: cannot start a thread (%s): the %u there are serve "
                 "every disk's jobs in turn", strerror(err), live);
    }
    p->create_failed = err != 0;
}

unsigned xbd_pool_stop(struct xbd_pool *p)
{
    unsigned dropped = 0;

    pthread_mutex_lock(&p->lock);
    p->stop = true;
    /* Not started: dropped.  Their owners are going away with us; a ring
     * journal makes a successor execute them. */
    for (struct xbd_pool_job *j = p->todo; j; j = j->next)
        dropped++;
    p->todo = NULL;
    p->ntodo = 0;
    p->todo_tail = &p->todo;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    return dropped;
}

void xbd_pool_join(struct xbd_pool *p)
{
    xbd_pool_stop(p);
    for (unsigned i = 0; i < p->max; i++)
        if (slot_state(p, i) != W_FREE)
            join_slot(p, i);
    p->live = p->exited = 0;
}

void xbd_pool_free(struct xbd_pool *p)
{
    if (!p)
        return;
    xbd_pool_join(p);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->lock);
    close(p->efd);
    free(p->workers);
    free(p);
}

struct xbd_pool *xbd_pool_new(unsigned threads, unsigned max_threads, unsigned capacity,
                              unsigned idle_exit_ms)
{
    struct xbd_pool *p = calloc(1, sizeof(*p));
    pthread_condattr_t ca;
    int err = 0;

    if (!p || !threads || max_threads < threads || capacity < threads) {
        free(p);
        xbd_err("worker pool: bad size or out of memory");
        return NULL;
    }
    p->workers = calloc(max_threads, sizeof(*p->workers));
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!p->workers || p->efd < 0) {
        xbd_err("worker pool: %s", p->workers ? strerror(errno) : "out of memory");
        if (p->efd >= 0)
            close(p->efd);
        free(p->workers);
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    /* Idle deadlines on CLOCK_MONOTONIC: a clock step moves none. */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->work, &ca);
    pthread_condattr_destroy(&ca);
    p->todo_tail = &p->todo;
    p->done_tail = &p->done;
    p->capacity = capacity;
    p->base = threads;
    p->max = max_threads;
    p->idle_exit_ms = idle_exit_ms;
    for (unsigned i = 0; i < threads && !err; i++)
        err = start_worker(p, i);
    if (err) {
        xbd_err("worker pool: cannot start a thread: %s", strerror(err));
        xbd_pool_free(p);
        return NULL;
    }
    return p;
}

int xbd_pool_submit(struct xbd_pool *p, struct xbd_pool_job *j)
{
    bool starved;

    if (p->held >= p->capacity)
        return -EAGAIN;
    p->held++;
    pthread_mutex_lock(&p->lock);
    push(&p->todo_tail, j);
    p->ntodo++;
    /* More jobs waiting than workers waiting for one: every worker is
     * busy (held by a job, perhaps on storage that hangs).  Never while
     * one is idle, so no thread is made per job when the pool keeps up. */
    starved = p->ntodo > p->idle && p->live < p->max;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
    if (starved)
        grow(p);
    return 0;
}

int xbd_pool_fd(const struct xbd_pool *p)
{
    return p->efd;
}

struct xbd_pool_job *xbd_pool_reap(struct xbd_pool *p)
{
    struct xbd_pool_job *list, *j;
    uint64_t cnt;
    unsigned exited;

    /* Drain the eventfd first: a job finishing after this read re-arms
     * it, so none is ever left unannounced. */
    if (read(p->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
        xbd_warn("worker pool eventfd: %s", strerror(errno));
    pthread_mutex_lock(&p->lock);
    list = p->done;
    p->done = NULL;
    p->done_tail = &p->done;
    exited = p->exited;
    p->exited = 0;
    pthread_mutex_unlock(&p->lock);
    for (j = list; j; j = j->next)
        p->held--;
    join_exited(p, exited);
    return list;
}

unsigned xbd_pool_held(const struct xbd_pool *p)
{
    return p->held;
}

bool xbd_pool_full(const struct xbd_pool *p)
{
    return p->held >= p->capacity;
}

void xbd_pool_get_workers(struct xbd_pool *p, unsigned *busy, unsigned *live)
{
    pthread_mutex_lock(&p->lock);
    *live = p->live;
    *busy = p->live - p->idle;
    pthread_mutex_unlock(&p->lock);
}
