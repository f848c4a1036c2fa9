/*
 * test-clock-reads.c - a ring given its loop's clock (loop_stats.h), as
 * the daemon gives it, reads the clock never itself: requests are dated
 * by the loop's wake-up, which the loop reads once per iteration.  In a
 * PV dom0 clock_gettime is usually a system call (no vDSO without a
 * stable TSC), and three or four reads per request were a quarter of
 * xenblkd's dom0 CPU per I/O on the real-Xen tier.
 *
 * Counted, never timed: clock_gettime is wrapped (-Wl,--wrap) for the
 * daemon's objects (libev, a shared library, is not wrapped: its two
 * reads per iteration are the only ones left).  With the ring reading the
 * clock per request as it used to (three reads: taken from the ring,
 * completed, grants released), this counted 198 reads for the 64
 * requests in 3 iterations and failed; with loop_stats reading the clock
 * itself at wake-up and before the poll, it counted 6.
 *
 * The loop's stamp is libev's own monotonic reading, recovered from a
 * timer (loop_stats.c): checked against CLOCK_MONOTONIC read around the
 * batch, and the loop's iterations still counted and timed.
 */
#include "config.h"

#include <stdio.h>
#include <time.h>

#include "check.h"
#include "fe.h"
#include "rig.h"

static unsigned long clock_reads;

int __real_clock_gettime(clockid_t clk, struct timespec *ts);
int __wrap_clock_gettime(clockid_t clk, struct timespec *ts);

int __wrap_clock_gettime(clockid_t clk, struct timespec *ts)
{
    clock_reads++;
    return __real_clock_gettime(clk, ts);
}

/* Two full rings of 4 KiB reads (the first maps the persistent grants);
 * the second is measured: clock reads and loop iterations it took. */
static uint64_t real_mono_ns(void)
{
    struct timespec ts;

    __real_clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void batch(unsigned long *reads, uint64_t *iterations, unsigned *n)
{
    struct fe f;
    struct be b;

    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 1, .persistent = true))
        return;
    *n = f.fr.nr_ents;
    for (int round = 0; round < 2; round++) {
        unsigned long r0 = clock_reads;
        uint64_t i0 = b.clock.iterations, c0 = b.clock.busy.count;
        uint64_t t0 = real_mono_ns(), t1;

        for (unsigned i = 0; i < *n; i++)
            fe_rw_page(&f, BLKIF_OP_READ, i, (uint64_t)i * 8, i % FE_NPAGES);
        fe_push(&f);
        expect_all(&b, &f, *n, BLKIF_RSP_OKAY);
        t1 = real_mono_ns();
        *reads = clock_reads - r0;
        *iterations = b.clock.iterations - i0;
        /* The last wake-up was during the batch, on CLOCK_MONOTONIC. */
        CHECK(t0 <= xbd_loop_now_ns(&b.clock) && xbd_loop_now_ns(&b.clock) <= t1);
        CHECK(*iterations >= 1);
        CHECK_EQ(b.clock.busy.count - c0, *iterations);
    }
    /* Dated by the loop's clock, every request still has its latency. */
    CHECK_EQ(xbd_ring_get_stats(b.ring)->lat[XBD_LAT_READ].count, 2 * (uint64_t)*n);
    rig_down(&b, &f);
}

int main(int argc, char **argv)
{
    unsigned long reads = 0;
    uint64_t iterations = 0;
    unsigned n = 0;

    rig_init(argc, argv);
    batch(&reads, &iterations, &n);
    printf("%lu clock reads for %u requests in %llu loop iterations\n", reads, n,
           (unsigned long long)iterations);
    CHECK(n >= 32);
    /* Nothing per request, nothing per iteration. */
    CHECK_EQ(reads, 0);
    return check_result("test-clock-reads");
}
