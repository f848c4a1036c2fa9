/*
 * evil-backend - a deliberately misbehaving blkif backend, to prove that
 * the frontend notices.  It negotiates over xenstore like a backend, maps
 * the single-page ring through libxengnttab/libxenevtchn (the simulated
 * ones, via LD_LIBRARY_PATH) and answers requests according to MODE:
 *
 *   ok           answer everything correctly (data is not transferred)
 *   reorder      answer every batch in reverse order (legal)
 *   dup          answer the first request twice
 *   wrong-op     answer with another operation
 *   bad-id       answer with an id the frontend never used
 *   overflow     publish rsp_prod more than a ring ahead
 *   keep-mapped  map each data grant and never unmap it (the frontend
 *                must fail to end access when persistent grants are off)
 *
 * usage: evil-backend BACKEND_DIR FRONTEND_DIR FRONTEND_DOMID MODE
 * Only the x86_64 layout, one queue, one ring page.  Exits 0 once the
 * frontend has closed (or the run timed out after 30 s: exit 1).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>

#include "blkif_abi.h"

static struct xs_handle *xs;
static const char *be, *fe, *mode;
static uint32_t fe_domid;

static void die(const char *what)
{
    fprintf(stderr, "evil-backend: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void put(const char *key, const char *val)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", be, key);
    if (!xs_write(xs, XBT_NULL, p, val, strlen(val)))
        die(p);
}

static long get(const char *dir, const char *key)
{
    char p[256];
    unsigned len;
    snprintf(p, sizeof(p), "%s/%s", dir, key);
    char *v = xs_read(xs, XBT_NULL, p, &len);
    long r = v ? strtol(v, NULL, 10) : -1;
    free(v);
    return r;
}

static time_t deadline;

/* Wait until the frontend's state is a or b. */
static void wait_fe(long a, long b)
{
    for (;;) {
        long s = get(fe, "state");
        if (s == a || s == b)
            return;
        if (time(NULL) > deadline) {
            fprintf(stderr, "evil-backend: timeout waiting for frontend state %ld/%ld (is %ld)\n", a, b, s);
            exit(1);
        }
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

static bool is(const char *m) { return !strcmp(mode, m); }

static void respond(blkif_x86_64_back_ring_t *r, uint64_t id, uint8_t op, int16_t st)
{
    struct blkif_x86_64_response *rsp = RING_GET_RESPONSE(r, r->rsp_prod_pvt);
    memset(rsp, 0, sizeof(*rsp));
    rsp->id = id;
    rsp->operation = op;
    rsp->status = st;
    r->rsp_prod_pvt++;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: evil-backend BACKEND_DIR FRONTEND_DIR FRONTEND_DOMID MODE\n");
        return 2;
    }
    be = argv[1];
    fe = argv[2];
    fe_domid = (uint32_t)strtoul(argv[3], NULL, 10);
    mode = argv[4];
    deadline = time(NULL) + 30;
    xs = xs_open(0);
    if (!xs)
        die("xs_open");
    xengnttab_handle *xgt = xengnttab_open(NULL, 0);
    xenevtchn_handle *xce = xenevtchn_open(NULL, 0);
    if (!xgt || !xce)
        die("opening gnttab/evtchn");

    put("feature-persistent", is("keep-mapped") ? "0" : "1");
    put("feature-flush-cache", "1");
    put("state", "2");
    wait_fe(3, 3);
    long ref = get(fe, "ring-ref"), port = get(fe, "event-channel");
    if (ref < 0 || port < 0) {
        fprintf(stderr, "evil-backend: no ring-ref/event-channel\n");
        return 1;
    }
    void *page = xengnttab_map_grant_ref(xgt, fe_domid, (uint32_t)ref, PROT_READ | PROT_WRITE);
    if (!page)
        die("mapping the ring");
    xenevtchn_port_or_error_t lp = xenevtchn_bind_interdomain(xce, fe_domid, (evtchn_port_t)port);
    if (lp < 0)
        die("binding the event channel");
    blkif_x86_64_back_ring_t r;
    BACK_RING_INIT(&r, (blkif_x86_64_sring_t *)page, 4096);
    put("sectors", "2048");
    put("info", "0");
    put("sector-size", "512");
    put("state", "4");

    bool answered_once = false;
    struct pollfd p = { .fd = xenevtchn_fd(xce), .events = POLLIN };
    while (time(NULL) <= deadline) {
        long fs = get(fe, "state");
        if (fs == 5 || fs == 6)
            break;
        if (poll(&p, 1, 100) > 0) {
            xenevtchn_port_or_error_t pp = xenevtchn_pending(xce);
            if (pp >= 0)
                xenevtchn_unmask(xce, (evtchn_port_t)pp);
        }
        struct blkif_x86_64_request batch[64];
        unsigned n = 0;
        int more;
        do {
            RING_IDX rp = r.sring->req_prod;
            xen_rmb();
            while (r.req_cons != rp && n < 64) {
                RING_COPY_REQUEST(&r, r.req_cons, &batch[n]);
                r.req_cons++;
                n++;
            }
            RING_FINAL_CHECK_FOR_REQUESTS(&r, more);
        } while (more && n < 64);
        if (n > 0 && is("close-midway")) {
            /* Leave with these requests unanswered: Closing, let go of
             * the ring, Closed, without waiting for the frontend. */
            put("state", "5");
            xengnttab_unmap(xgt, page, 1);
            xenevtchn_unbind(xce, (evtchn_port_t)lp);
            put("state", "6");
            wait_fe(6, 6);
            xenevtchn_close(xce);
            xengnttab_close(xgt);
            xs_close(xs);
            return time(NULL) <= deadline ? 0 : 1;
        }
        for (unsigned i = 0; i < n; i++) {
            struct blkif_x86_64_request *q = is("reorder") ? &batch[n - 1 - i] : &batch[i];
            uint8_t op = q->operation;
            if (op == BLKIF_OP_INDIRECT)
                op = ((struct blkif_x86_64_request_indirect *)q)->indirect_op;
            uint64_t id = q->id;
            if (is("keep-mapped") && q->operation != BLKIF_OP_INDIRECT && q->nr_segments > 0 &&
                !xengnttab_map_grant_ref(xgt, fe_domid, q->seg[0].gref, PROT_READ))
                die("mapping a data grant");
            if (is("wrong-op"))
                op = (uint8_t)(op + 1);
            if (is("bad-id"))
                id ^= 0x5a5a0000ull;
            respond(&r, id, op, BLKIF_RSP_OKAY);
            if (is("dup") && !answered_once)
                respond(&r, id, op, BLKIF_RSP_OKAY);
            answered_once = true;
        }
        if (n > 0) {
            int notify;
            RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&r, notify);
            if (is("overflow"))
                r.sring->rsp_prod += RING_SIZE(&r) + 5;
            if (notify || is("overflow"))
                xenevtchn_notify(xce, (evtchn_port_t)lp);
        }
    }
    /* Close like a backend: Closing, then Closed once the frontend is. */
    put("state", "5");
    wait_fe(6, 6);
    xengnttab_unmap(xgt, page, 1);
    xenevtchn_unbind(xce, (evtchn_port_t)lp);
    put("state", "6");
    xenevtchn_close(xce);
    xengnttab_close(xgt);
    xs_close(xs);
    return time(NULL) <= deadline ? 0 : 1;
}
