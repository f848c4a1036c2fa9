/*
 * test-clock-reads.c - a ring given its loop's clock (loop_stats.h), as
 * the daemon gives it, reads the clock never itself: requests are dated
 * by the loop's wake-up, which the loop reads once per iteration.  In a
 * PV dom0 clock_gettime is usually a system call (no vDSO without a
 * stable TSC), and three or four reads per request were a quarter of
 * xenblkd's dom0 CPU per I/O on the real-Xen tier.
 *
 * Counted, never timed: clock_gettime is wrapped (-Wl,--wrap) for the
 * daemon's objects, and the loop's own reads are two per iteration (its
 * wake-up and its busy time), which loop_stats counts.  With the ring
 * reading the clock per request as it used to (three reads: taken from
 * the ring, completed, grants released), this counted 198 reads for the
 * 64 requests in 3 iterations and failed.
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
static void batch(unsigned long *reads, uint64_t *iterations, unsigned *n)
{
    struct fe f;
    struct be b;

    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 1, .persistent = true))
        return;
    *n = f.fr.nr_ents;
    for (int round = 0; round < 2; round++) {
        unsigned long r0 = clock_reads;
        uint64_t i0 = b.clock.iterations;

        for (unsigned i = 0; i < *n; i++)
            fe_rw_page(&f, BLKIF_OP_READ, i, (uint64_t)i * 8, i % FE_NPAGES);
        fe_push(&f);
        expect_all(&b, &f, *n, BLKIF_RSP_OKAY);
        *reads = clock_reads - r0;
        *iterations = b.clock.iterations - i0;
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
    /* The loop's two per iteration, and one more for an iteration whose
     * wake-up is counted but not yet its end; nothing per request. */
    CHECK(reads <= 2 * iterations + 1);
    return check_result("test-clock-reads");
}
