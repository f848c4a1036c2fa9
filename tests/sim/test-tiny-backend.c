/*
 * test-tiny-backend.c - the "tiny backend": a backend using Xen's real
 * libxengnttab/libxenevtchn API (resolved at run time to the simulation)
 * and a guest in another process using libxensim_guest and Xen's own
 * io/ring.h + io/blkif.h macros exchange one blkif request and response
 * over a granted shared ring, with notifications both ways.
 */
#define _GNU_SOURCE
#include "simtest.h"
#include "xensim_guest.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
/* ring.h leaves the barriers to its user (the kernel, or xenctrl.h). */
#define mb()  __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define rmb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define wmb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#include <xen/io/blkif.h>
#include <xen/io/ring.h>
#include <xenevtchn.h>
#include <xengnttab.h>

#define GUEST 1
#define PATTERN 0xb5

struct hello {
    grant_ref_t ring_ref;
    evtchn_port_t port;
};

static int to_be[2], to_fe[2];

#define GCHECK(c)                                                             \
    do {                                                                      \
        if (!(c)) {                                                           \
            fprintf(stderr, "guest FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);\
            return 1;                                                         \
        }                                                                     \
    } while (0)

static int wait_connected(xsg_dom *d, evtchn_port_t port)
{
    int i;

    for (i = 0; i < 5000; i++) {
        if (xsg_evtchn_is_connected(d, port) == 1)
            return 1;
        usleep(1000);
    }
    return 0;
}

static int guest(void *arg)
{
    xsg_dom *d = xsg_dom_create(GUEST, 16, 64);
    blkif_front_ring_t front;
    blkif_sring_t *sring;
    blkif_request_t *req;
    blkif_response_t *rsp;
    struct hello h;
    uint32_t gfn_ring, gfn_data;
    grant_ref_t data_ref;
    uint8_t *data;
    int notify, i;
    char c;

    (void)arg;
    GCHECK(d);
    GCHECK(xsg_page_alloc(d, &gfn_ring) == 0 && xsg_page_alloc(d, &gfn_data) == 0);
    sring = xsg_page(d, gfn_ring);
    SHARED_RING_INIT(sring);
    FRONT_RING_INIT(&front, sring, XSG_PAGE_SIZE);
    data = xsg_page(d, gfn_data);
    memset(data, 0, XSG_PAGE_SIZE);
    GCHECK(xsg_grant(d, 0, gfn_ring, false, &h.ring_ref) == 0);
    GCHECK(xsg_grant(d, 0, gfn_data, false, &data_ref) == 0);
    GCHECK(xsg_evtchn_alloc_unbound(d, 0, &h.port) == 0);
    GCHECK(write(to_be[1], &h, sizeof(h)) == sizeof(h));
    GCHECK(wait_connected(d, h.port));

    req = RING_GET_REQUEST(&front, front.req_prod_pvt);
    memset(req, 0, sizeof(*req));
    req->operation = BLKIF_OP_READ;
    req->id = 42;
    req->nr_segments = 1;
    req->seg[0].gref = data_ref;
    req->seg[0].first_sect = 0;
    req->seg[0].last_sect = 7;
    front.req_prod_pvt++;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&front, notify);
    GCHECK(notify);
    GCHECK(xsg_evtchn_notify(d, h.port) == 0);

    GCHECK(st_readable(xsg_evtchn_fd(d), 5000));
    GCHECK(xsg_evtchn_pending(d) == (int)h.port);
    GCHECK(xsg_evtchn_unmask(d, h.port) == 0);
    GCHECK(RING_HAS_UNCONSUMED_RESPONSES(&front) == 1);
    rsp = RING_GET_RESPONSE(&front, front.rsp_cons);
    GCHECK(rsp->id == 42 && rsp->operation == BLKIF_OP_READ && rsp->status == BLKIF_RSP_OKAY);
    front.rsp_cons++;
    for (i = 0; i < (int)XSG_PAGE_SIZE; i++)
        GCHECK(data[i] == PATTERN);
    /* The backend still maps the ring: ending access must fail. */
    GCHECK(xsg_end_access(d, h.ring_ref) == -1 && errno == EBUSY);
    GCHECK(xsg_end_access(d, data_ref) == 0);   /* data page already unmapped */

    c = 'r';
    GCHECK(write(to_be[1], &c, 1) == 1);
    GCHECK(read(to_fe[0], &c, 1) == 1 && c == 'u');
    GCHECK(xsg_end_access(d, h.ring_ref) == 0);
    GCHECK(xsg_grants_in_use(d) == 0);
    GCHECK(xsg_evtchn_is_connected(d, h.port) == 0);
    GCHECK(xsg_dom_destroy(d) == 0);
    return 0;
}

int main(int argc, char **argv)
{
    xengnttab_handle *gt;
    xenevtchn_handle *ev;
    blkif_back_ring_t back;
    blkif_request_t req;
    blkif_response_t *rsp;
    struct hello h;
    void *ring;
    uint8_t *data;
    int lport, notify;
    pid_t pid;
    char c;

    st_init(argc, argv);
    REQUIRE(pipe(to_be) == 0 && pipe(to_fe) == 0);
    pid = st_spawn(guest, NULL);
    REQUIRE(read(to_be[0], &h, sizeof(h)) == sizeof(h));

    gt = xengnttab_open(NULL, 0);
    ev = xenevtchn_open(NULL, 0);
    REQUIRE(gt && ev);
    ring = xengnttab_map_grant_ref(gt, GUEST, h.ring_ref, PROT_READ | PROT_WRITE);
    REQUIRE(ring);
    BACK_RING_INIT(&back, (blkif_sring_t *)ring, XSG_PAGE_SIZE);
    lport = xenevtchn_bind_interdomain(ev, GUEST, h.port);
    REQUIRE(lport > 0);

    /* As on Xen, the first event comes from the bind itself (a new port
     * starts pending): a backend looks at the ring on every event until
     * the request is there. */
    while (!RING_HAS_UNCONSUMED_REQUESTS(&back)) {
        REQUIRE(st_readable(xenevtchn_fd(ev), 5000));
        CHECK(xenevtchn_pending(ev) == lport);
        CHECK(xenevtchn_unmask(ev, (evtchn_port_t)lport) == 0);
    }
    RING_COPY_REQUEST(&back, back.req_cons, &req);
    back.req_cons++;
    CHECK(req.operation == BLKIF_OP_READ && req.id == 42 && req.nr_segments == 1);

    data = xengnttab_map_grant_ref(gt, GUEST, req.seg[0].gref, PROT_READ | PROT_WRITE);
    REQUIRE(data);
    memset(data, PATTERN, XSG_PAGE_SIZE);        /* "read from disk" */
    CHECK(xengnttab_unmap(gt, data, 1) == 0);

    rsp = RING_GET_RESPONSE(&back, back.rsp_prod_pvt);
    memset(rsp, 0, sizeof(*rsp));
    rsp->id = req.id;
    rsp->operation = req.operation;
    rsp->status = BLKIF_RSP_OKAY;
    back.rsp_prod_pvt++;
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&back, notify);
    CHECK(notify);
    CHECK(xenevtchn_notify(ev, (evtchn_port_t)lport) == 0);

    CHECK(read(to_be[0], &c, 1) == 1 && c == 'r');
    CHECK(xengnttab_unmap(gt, ring, 1) == 0);
    CHECK(xenevtchn_unbind(ev, (evtchn_port_t)lport) == 0);
    xenevtchn_close(ev);
    xengnttab_close(gt);
    c = 'u';
    REQUIRE(write(to_fe[1], &c, 1) == 1);
    CHECK(st_wait(pid) == 0);
    return st_done("test-tiny-backend");
}
