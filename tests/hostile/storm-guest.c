/*
 * storm-guest - a simulated guest that, once the backend has bound its
 * event channel, either notifies it in a tight loop (--storm: an
 * event-channel storm on an empty ring, no request is ever produced) or
 * is the victim next to such a storm (--burst: N requests pushed at once,
 * more than the backend handles in one callback, with a single
 * notification, as a well-behaved frontend would).
 *
 *   storm-guest --domid D --out FILE [--order O] [--backend B]
 *               (--storm SECONDS | --burst N | --bad N)
 *
 * Like tests/daemon/xbd-guest (and with its code, tests/daemon/sim-guest.c)
 * it creates simulated domain D, grants the pages of one empty ring to the
 * backend domain, allocates the unbound event channel, and writes
 * "0 ORDER PORT REF..." to FILE for the test
 * script to publish as frontend keys (tests/daemon/lib.sh fe_write_rings).
 * When the port is connected it storms for SECONDS (or until SIGUSR1: a
 * test ends the storm when it has seen what it needed, whatever the
 * machine's load) and writes
 * "<notifications sent> <seconds>" to FILE.storm, or pushes N one-page
 * reads of sector 0 (the ring must hold N: 128 needs --order 2), waits up
 * to 20 s for their responses without notifying again, and writes
 * "<responses> <milliseconds>" to FILE.burst.  --bad N pushes N one-page
 * reads naming a grant that was never granted (ref 5, reserved), a
 * ring's worth at a time, and writes "<responses> <errors> <milliseconds>"
 * to FILE.bad once all are answered (60 s at most per batch); with
 * --break, once FILE.go exists, it sends one more ring's worth of them
 * (so that whatever budget the backend has for logging about it is spent)
 * and moves req_prod more than a ring ahead and notifies (the backend
 * must disconnect it).  The ring layout is the
 * native one (publish protocol x86_64-abi on x86-64).  SIGTERM/SIGINT destroy
 * the domain and exit 0; exit 1 if the backend never connects (60 s).
 */
#include "config.h"

#include <getopt.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim-guest.h"

#include <xen/io/blkif.h>

/* ring.h's macros need real fences between this guest and the backend. */
#undef xen_mb
#undef xen_wmb
#define xen_mb()  __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define xen_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)

static volatile sig_atomic_t quit;
static volatile sig_atomic_t stop_storm;   /* SIGUSR1: the test has seen enough */

static void on_stop_storm(int sig)
{
    (void)sig;
    stop_storm = 1;
}

static void on_quit(int sig)
{
    quit = 1;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void do_storm(xsg_dom *d, evtchn_port_t port, double secs, const char *out)
{
    char text[64], path[4096];
    unsigned long sent = 0;
    double t0 = now();

    while (!quit && !stop_storm && now() - t0 < secs) {
        for (int i = 0; i < 64; i++)
            if (xsg_evtchn_notify(d, port) == 0)
                sent++;
    }
    snprintf(text, sizeof(text), "%lu %.3f\n", sent, now() - t0);
    snprintf(path, sizeof(path), "%s.storm", out);
    sg_write_file(path, text);
}

static void do_burst(xsg_dom *d, void *ring, unsigned order, evtchn_port_t port,
                     unsigned backend, unsigned n, const char *out)
{
    blkif_front_ring_t fr;
    char text[64], path[4096];
    uint32_t gfn;
    grant_ref_t ref;
    int notify;

    FRONT_RING_INIT(&fr, (blkif_sring_t *)ring, (size_t)XSG_PAGE_SIZE << order);
    if (n > RING_SIZE(&fr)) {
        fprintf(stderr, "storm-guest: %u requests do not fit a ring of %u\n", n,
                RING_SIZE(&fr));
        exit(1);
    }
    if (xsg_page_alloc(d, &gfn) < 0 || xsg_grant(d, (domid_t)backend, gfn, false, &ref) < 0)
        sg_die("data page");
    for (unsigned i = 0; i < n; i++) {
        blkif_request_t *r = RING_GET_REQUEST(&fr, fr.req_prod_pvt);

        memset(r, 0, sizeof(*r));
        r->operation = BLKIF_OP_READ;
        r->nr_segments = 1;
        r->id = i;
        r->sector_number = 0;
        r->seg[0].gref = ref;
        r->seg[0].first_sect = 0;
        r->seg[0].last_sect = 7;
        fr.req_prod_pvt++;
    }
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&fr, notify);
    if (notify)
        xsg_evtchn_notify(d, port);
    double t0 = now();
    unsigned got = 0;
    while (!quit && now() - t0 < 20) {
        got = __atomic_load_n(&fr.sring->rsp_prod, __ATOMIC_ACQUIRE);
        if (got >= n)
            break;
        nanosleep(&(struct timespec){ 0, 1000 * 1000 }, NULL);
    }
    snprintf(text, sizeof(text), "%u %.0f\n", got, (now() - t0) * 1000);
    snprintf(path, sizeof(path), "%s.burst", out);
    sg_write_file(path, text);
}

/* Wait until rsp_prod reaches want (notifying the backend meanwhile is
 * not needed: it was notified when the batch was pushed). */
static bool wait_rsp(blkif_front_ring_t *fr, RING_IDX want)
{
    double t0 = now();

    while (!quit && now() - t0 < 60) {
        RING_IDX got = __atomic_load_n(&fr->sring->rsp_prod, __ATOMIC_ACQUIRE);
        if ((int)(got - want) >= 0)
            return true;
        nanosleep(&(struct timespec){ 0, 200 * 1000 }, NULL);
    }
    return false;
}

/* Send n bad requests, a ring's worth at a time; count the answers. */
static void send_bad(xsg_dom *d, blkif_front_ring_t *frp, evtchn_port_t port, unsigned long n,
                     unsigned long *answered, unsigned long *errors)
{
    blkif_front_ring_t fr = *frp;
    unsigned long sent = 0;
    int notify;

    while (!quit && sent < n) {
        unsigned batch = RING_SIZE(&fr);

        if (batch > n - sent)
            batch = (unsigned)(n - sent);
        for (unsigned i = 0; i < batch; i++) {
            blkif_request_t *r = RING_GET_REQUEST(&fr, fr.req_prod_pvt);

            memset(r, 0, sizeof(*r));
            r->operation = BLKIF_OP_READ;
            r->nr_segments = 1;
            r->id = sent + i;
            r->seg[0].gref = 5;         /* reserved: never granted */
            r->seg[0].last_sect = 7;
            fr.req_prod_pvt++;
        }
        sent += batch;
        RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&fr, notify);
        if (notify)
            xsg_evtchn_notify(d, port);
        if (!wait_rsp(&fr, fr.req_prod_pvt))
            break;
        while (fr.rsp_cons != fr.req_prod_pvt) {
            blkif_response_t *rsp = RING_GET_RESPONSE(&fr, fr.rsp_cons);
            if (rsp->status != BLKIF_RSP_OKAY)
                (*errors)++;
            (*answered)++;
            fr.rsp_cons++;
        }
    }
    *frp = fr;
}

static void do_bad(xsg_dom *d, void *ring, unsigned order, evtchn_port_t port, unsigned long n,
                   bool brk, const char *out)
{
    blkif_front_ring_t fr;
    char text[96], path[4096];
    unsigned long answered = 0, errors = 0;
    double t0 = now();

    FRONT_RING_INIT(&fr, (blkif_sring_t *)ring, (size_t)XSG_PAGE_SIZE << order);
    send_bad(d, &fr, port, n, &answered, &errors);
    snprintf(text, sizeof(text), "%lu %lu %.0f\n", answered, errors, (now() - t0) * 1000);
    snprintf(path, sizeof(path), "%s.bad", out);
    sg_write_file(path, text);
    if (brk) {
        snprintf(path, sizeof(path), "%s.go", out);
        while (!quit && access(path, F_OK) != 0)
            nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
        send_bad(d, &fr, port, RING_SIZE(&fr), &answered, &errors);
        __atomic_store_n(&fr.sring->req_prod, fr.req_prod_pvt + 2 * RING_SIZE(&fr) + 1,
                         __ATOMIC_RELEASE);
        xsg_evtchn_notify(d, port);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "domid", required_argument, NULL, 'd' },
        { "backend", required_argument, NULL, 'b' },
        { "order", required_argument, NULL, 'o' },
        { "out", required_argument, NULL, 'O' },
        { "storm", required_argument, NULL, 's' },
        { "burst", required_argument, NULL, 'n' },
        { "bad", required_argument, NULL, 'B' },
        { "break", no_argument, NULL, 'K' },
        { NULL, 0, NULL, 0 },
    };
    unsigned domid = 0, backend = 0, order = 0;
    double storm = 0;
    unsigned burst = 0;
    unsigned long bad = 0;
    bool brk = false;
    const char *out = NULL;
    struct sg_ring ring = { 0 };
    char text[4096];
    size_t len = 0;
    int c;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': domid = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'b': backend = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'o': order = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'O': out = optarg; break;
        case 's': storm = strtod(optarg, NULL); break;
        case 'n': burst = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'B': bad = strtoul(optarg, NULL, 0); break;
        case 'K': brk = true; break;
        default: return 2;
        }
    }
    if (!domid || !out || (storm > 0) + (burst > 0) + (bad > 0) != 1 ||
        (1u << order) > SG_MAX_PAGES) {
        fprintf(stderr, "usage: storm-guest --domid D --out FILE (--storm SECONDS | "
                "--burst N | --bad N [--break]) [--order O<=4] [--backend B]\n");
        return 2;
    }
    signal(SIGTERM, on_quit);
    signal(SIGINT, on_quit);
    signal(SIGUSR1, on_stop_storm);

    xsg_dom *d = xsg_dom_create((domid_t)domid, 64, 256);
    if (!d)
        sg_die("dom_create");
    ring.order = order;
    sg_ring_offer(d, (domid_t)backend, &ring);
    sg_ring_describe(&ring, 0, text, sizeof(text), &len);
    sg_write_file(out, text);

    double t0 = now();
    while (!quit && xsg_evtchn_is_connected(d, ring.port) != 1) {
        if (now() - t0 > 60) {
            fprintf(stderr, "storm-guest: the backend never bound port %u\n", ring.port);
            xsg_dom_destroy(d);
            return 1;
        }
        nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
    }

    if (burst)
        do_burst(d, xsg_page(d, ring.gfn[0]), order, ring.port, backend, burst, out);
    else if (bad)
        do_bad(d, xsg_page(d, ring.gfn[0]), order, ring.port, bad, brk, out);
    else
        do_storm(d, ring.port, storm, out);

    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &old);
    while (!quit)
        sigsuspend(&old);       /* no lost wake-up between test and wait */
    xsg_dom_destroy(d);
    return 0;
}
