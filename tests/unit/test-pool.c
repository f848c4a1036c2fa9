/*
 * test-pool.c - the worker pool of blocking operations (src/io_pool.c):
 * jobs run off the calling thread and come back through the eventfd, the
 * queue is bounded (a job over capacity is refused with EAGAIN until a
 * reap makes room), and stopping the pool with jobs in flight drops those
 * not started while freeing it waits for the running ones, so nothing runs on
 * memory its owner is about to release.  Every wait is on an event (a
 * semaphore, the eventfd), never on time.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "io_pool.h"
#include "xenblkd/log.h"

#define THREADS 2
#define CAP     4

struct tjob {
    struct xbd_pool_job job;    /* first: the pool hands this pointer back */
    sem_t started, go;
    bool ran, finished;
    pthread_t thread;
};

static void tjob_run(struct xbd_pool_job *j)
{
    struct tjob *t = (struct tjob *)j;

    t->thread = pthread_self();
    t->ran = true;
    sem_post(&t->started);
    sem_wait(&t->go);           /* held until the test lets it finish */
    t->finished = true;
}

static void tjob_init(struct tjob *t)
{
    memset(t, 0, sizeof(*t));
    t->job.run = tjob_run;
    sem_init(&t->started, 0, 0);
    sem_init(&t->go, 0, 0);
}

/* For the failure case only: a job no worker takes. */
static bool started_within(struct tjob *t, int seconds)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += seconds;
    return sem_timedwait(&t->started, &until) == 0;
}

/* Wait until the pool says a job finished, then collect every finished
 * one; returns how many. */
static unsigned wait_reap(struct xbd_pool *p)
{
    struct pollfd pfd = { .fd = xbd_pool_fd(p), .events = POLLIN };
    struct xbd_pool_job *j;
    unsigned n = 0;

    CHECK_EQ(poll(&pfd, 1, 20000), 1);
    for (j = xbd_pool_reap(p); j; j = j->next)
        n++;
    return n;
}

static void test_bounded(void)
{
    struct xbd_pool *p = xbd_pool_new(THREADS, THREADS, CAP, 0);
    struct tjob t[CAP + 1];
    unsigned i, reaped = 0;

    CHECK(p != NULL);
    if (!p)
        return;
    for (i = 0; i <= CAP; i++)
        tjob_init(&t[i]);
    for (i = 0; i < CAP; i++)
        CHECK_EQ(xbd_pool_submit(p, &t[i].job), 0);
    /* Full: the fifth is refused, and stays the caller's. */
    CHECK(xbd_pool_full(p));
    CHECK_EQ(xbd_pool_held(p), CAP);
    CHECK_EQ(xbd_pool_submit(p, &t[CAP].job), -EAGAIN);
    /* Jobs run in workers, never in the submitting thread, at most
     * THREADS at once. */
    sem_wait(&t[0].started);
    sem_wait(&t[1].started);
    CHECK(!pthread_equal(t[0].thread, pthread_self()));
    CHECK(!t[2].ran && !t[3].ran);
    /* Finishing one and reaping it makes room again. */
    sem_post(&t[0].go);
    reaped = wait_reap(p);
    CHECK_EQ(reaped, 1);
    CHECK(t[0].finished);
    CHECK_EQ(xbd_pool_held(p), CAP - 1);
    CHECK_EQ(xbd_pool_submit(p, &t[CAP].job), 0);
    for (i = 1; i <= CAP; i++)
        sem_post(&t[i].go);
    while (reaped < CAP + 1)
        reaped += wait_reap(p);
    CHECK_EQ(reaped, CAP + 1);
    CHECK_EQ(xbd_pool_held(p), 0);
    for (i = 0; i <= CAP; i++)
        CHECK(t[i].finished);
    xbd_pool_free(p);
}

struct freer {
    struct xbd_pool *p;
    struct tjob *t;
    bool finished_at_return;    /* both running jobs, when free returned */
};

static void *do_free(void *arg)
{
    struct freer *f = arg;

    xbd_pool_free(f->p);
    f->finished_at_return = f->t[0].finished && f->t[1].finished;
    return NULL;
}

/* Stop with two jobs running and two queued: the queued ones are dropped
 * and never run; free returns only once the running ones finished. */
static void test_free_in_flight(void)
{
    struct xbd_pool *p = xbd_pool_new(THREADS, THREADS, CAP, 0);
    struct tjob t[CAP];
    struct freer f = { .p = p, .t = t };
    pthread_t th;
    unsigned i;

    CHECK(p != NULL);
    if (!p)
        return;
    for (i = 0; i < CAP; i++) {
        tjob_init(&t[i]);
        CHECK_EQ(xbd_pool_submit(p, &t[i].job), 0);
    }
    sem_wait(&t[0].started);
    sem_wait(&t[1].started);
    CHECK_EQ(xbd_pool_stop(p), 2);
    CHECK_EQ(pthread_create(&th, NULL, do_free, &f), 0);
    /* Released only now: a free that did not wait would have returned
     * with them unfinished. */
    sem_post(&t[0].go);
    sem_post(&t[1].go);
    pthread_join(th, NULL);
    CHECK(f.finished_at_return);
    CHECK(!t[2].ran && !t[3].ran);
}

/* One worker kept, three at most: three jobs that block all run at once
 * (two workers started because every other one was busy), none started
 * while one was idle; once they finished, the workers over the one kept
 * exit idle (after 1 ms here) and the reaps join them. */
static void test_grow(void)
{
    struct xbd_pool *p = xbd_pool_new(1, 3, 4, 1);
    struct pollfd pfd = { .fd = p ? xbd_pool_fd(p) : -1, .events = POLLIN };
    struct tjob t[4];
    unsigned i, busy, live, reaped = 0;

    CHECK(p != NULL);
    if (!p)
        return;
    for (i = 0; i < 4; i++)
        tjob_init(&t[i]);
    xbd_pool_get_workers(p, &busy, &live);
    CHECK_EQ(live, 1);
    for (i = 0; i < 3; i++) {
        CHECK_EQ(xbd_pool_submit(p, &t[i].job), 0);
        CHECK(started_within(&t[i], 20));
    }
    xbd_pool_get_workers(p, &busy, &live);
    CHECK_EQ(busy, 3);
    CHECK_EQ(live, 3);
    /* At max: the fourth waits for a worker. */
    CHECK_EQ(xbd_pool_submit(p, &t[3].job), 0);
    xbd_pool_get_workers(p, &busy, &live);
    CHECK_EQ(live, 3);
    for (i = 0; i < 4; i++)
        sem_post(&t[i].go);
    while (reaped < 4)
        reaped += wait_reap(p);
    /* Each exit wakes the eventfd; the reap joins. */
    while (live > 1 && poll(&pfd, 1, 20000) == 1) {
        xbd_pool_reap(p);
        xbd_pool_get_workers(p, &busy, &live);
    }
    CHECK_EQ(live, 1);
    CHECK_EQ(busy, 0);
    /* An idle worker takes the next job: no thread is started. */
    tjob_init(&t[0]);
    CHECK_EQ(xbd_pool_submit(p, &t[0].job), 0);
    xbd_pool_get_workers(p, &busy, &live);
    CHECK_EQ(live, 1);
    sem_post(&t[0].go);
    while (!wait_reap(p))
        ;
    xbd_pool_free(p);
}

int main(void)
{
    xbd_log_init(true, XBD_LOG_WARN);
    test_bounded();
    test_free_in_flight();
    test_grow();
    return check_result("test-pool");
}
