/*
 * xbd-guest - a minimal simulated guest for the control-plane tests.
 *
 * It creates simulated domain D, grants the pages of one or more empty
 * blkif rings to the backend domain and allocates their unbound event
 * channels, then writes what a frontend would put in xenstore to --out
 * (one line per queue: "Q ORDER PORT REF..."), so that the test script can
 * write correct, partial or malformed frontend keys itself.  It does no
 * I/O.  Signals:
 *   SIGUSR1  write "<grants in use> <ports connected>" to --out.status
 *   SIGUSR2  corrupt every ring's req_prod (more than a ring ahead of the
 *            responses) and notify: the backend must give up on the ring
 *   SIGTERM/SIGINT  destroy the domain and exit 0
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sim-guest.h"

#include <xen/io/blkif.h>

#define MAX_QUEUES 16

static void write_status(xsg_dom *d, const struct sg_ring *qs, unsigned nq, const char *out)
{
    char path[4096], text[64];
    int connected = 0;

    for (unsigned i = 0; i < nq; i++)
        connected += xsg_evtchn_is_connected(d, qs[i].port) == 1;
    snprintf(text, sizeof(text), "%d %d\n", xsg_grants_in_use(d), connected);
    snprintf(path, sizeof(path), "%s.status", out);
    sg_write_file(path, text);
}

static void corrupt(xsg_dom *d, const struct sg_ring *qs, unsigned nq)
{
    for (unsigned i = 0; i < nq; i++) {
        blkif_sring_t *s = xsg_page(d, qs[i].gfn[0]);
        /* Far more requests than the ring can hold. */
        __atomic_store_n(&s->req_prod, s->rsp_prod + 100000u, __ATOMIC_RELEASE);
        xsg_evtchn_notify(d, qs[i].port);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "domid", required_argument, NULL, 'd' },
        { "backend", required_argument, NULL, 'b' },
        { "queues", required_argument, NULL, 'q' },
        { "order", required_argument, NULL, 'o' },
        { "out", required_argument, NULL, 'O' },
        { NULL, 0, NULL, 0 },
    };
    unsigned domid = 0, backend = 0, nq = 1, order = 0;
    const char *out = NULL;
    struct sg_ring qs[MAX_QUEUES];
    char text[4096];
    size_t len = 0;
    sigset_t set;
    int c, sig;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': domid = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'b': backend = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'q': nq = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'o': order = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'O': out = optarg; break;
        default: return 2;
        }
    }
    if (!domid || !out || nq == 0 || nq > MAX_QUEUES || (1u << order) > SG_MAX_PAGES) {
        fprintf(stderr, "usage: xbd-guest --domid D --out FILE [--queues N<=16] "
                "[--order O<=4] [--backend B]\n");
        return 2;
    }
    /* Block the signals before anything else so none is lost. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);

    xsg_dom *d = xsg_dom_create((domid_t)domid, 64 + nq * SG_MAX_PAGES, 512);
    if (!d)
        sg_die("dom_create");
    for (unsigned i = 0; i < nq; i++) {
        qs[i].order = order;
        sg_ring_offer(d, (domid_t)backend, &qs[i]);
        sg_ring_describe(&qs[i], i, text, sizeof(text), &len);
    }
    sg_write_file(out, text);

    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGUSR1)
            write_status(d, qs, nq, out);
        else if (sig == SIGUSR2)
            corrupt(d, qs, nq);
        else
            break;
    }
    xsg_dom_destroy(d);
    return 0;
}
