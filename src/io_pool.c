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
#include <unistd.h>
#include <sys/eventfd.h>

#include "io_pool.h"
#include "xenblkd/log.h"

struct xbd_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;            /* todo became non-empty, or stop */
    struct xbd_pool_job *todo, **todo_tail;
    struct xbd_pool_job *done, **done_tail;
    bool stop;
    int efd;
    unsigned capacity;
    unsigned held;                  /* loop only */
    unsigned nthreads;
    pthread_t *threads;
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

static void *worker(void *arg)
{
    struct xbd_pool *p = arg;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        struct xbd_pool_job *j;

        while (!p->todo && !p->stop)
            pthread_cond_wait(&p->work, &p->lock);
        if (p->stop)
            break;
        j = p->todo;
        p->todo = j->next;
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

/* Workers must never take a signal meant for the loop (SIGTERM, SIGHUP
 * are libev's): they start with every signal blocked. */
static int start_workers(struct xbd_pool *p, unsigned want)
{
    sigset_t all, old;
    int err = 0;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (p->nthreads = 0; p->nthreads < want; p->nthreads++) {
        char name[16];

        err = pthread_create(&p->threads[p->nthreads], NULL, worker, p);
        if (err)
            break;
        /* Named for top -H and ps -L (15 characters at most); a failure
         * costs only the name. */
        snprintf(name, sizeof(name), "xbd-io-%u", p->nthreads % 100000u);
        (void)pthread_setname_np(p->threads[p->nthreads], name);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return err;
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
    p->todo_tail = &p->todo;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    return dropped;
}

void xbd_pool_join(struct xbd_pool *p)
{
    xbd_pool_stop(p);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
}

void xbd_pool_free(struct xbd_pool *p)
{
    if (!p)
        return;
    xbd_pool_join(p);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->lock);
    close(p->efd);
    free(p->threads);
    free(p);
}

struct xbd_pool *xbd_pool_new(unsigned threads, unsigned capacity)
{
    struct xbd_pool *p = calloc(1, sizeof(*p));
    int err;

    if (!p || !threads || capacity < threads) {
        free(p);
        xbd_err("worker pool: bad size or out of memory");
        return NULL;
    }
    p->threads = calloc(threads, sizeof(*p->threads));
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!p->threads || p->efd < 0) {
        xbd_err("worker pool: %s", p->threads ? strerror(errno) : "out of memory");
        if (p->efd >= 0)
            close(p->efd);
        free(p->threads);
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    p->todo_tail = &p->todo;
    p->done_tail = &p->done;
    p->capacity = capacity;
    err = start_workers(p, threads);
    if (err) {
        xbd_err("worker pool: cannot start a thread: %s", strerror(err));
        xbd_pool_free(p);
        return NULL;
    }
    return p;
}

int xbd_pool_submit(struct xbd_pool *p, struct xbd_pool_job *j)
{
    if (p->held >= p->capacity)
        return -EAGAIN;
    p->held++;
    pthread_mutex_lock(&p->lock);
    push(&p->todo_tail, j);
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
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

    /* Drain the eventfd first: a job finishing after this read re-arms
     * it, so none is ever left unannounced. */
    if (read(p->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
        xbd_warn("worker pool eventfd: %s", strerror(errno));
    pthread_mutex_lock(&p->lock);
    list = p->done;
    p->done = NULL;
    p->done_tail = &p->done;
    pthread_mutex_unlock(&p->lock);
    for (j = list; j; j = j->next)
        p->held--;
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
