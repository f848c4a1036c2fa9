/*
 * test-evtchn.c - the rules of the simulated event channels, through Xen's
 * libxenevtchn API (backend, dom0) and libxensim_guest (guest).
 */
#define _GNU_SOURCE
#include "simtest.h"
#include "xensim_guest.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xenevtchn.h>

#define GUEST 4

static xsg_dom *d;

static evtchn_port_t fe_unbound(domid_t to)
{
    evtchn_port_t p;

    REQUIRE(xsg_evtchn_alloc_unbound(d, to, &p) == 0);
    return p;
}

/* Bind as a backend does, and take the event every bind brings: as Xen,
 * the new port starts pending, since notifications sent while the
 * remote port was unbound were dropped. */
static int bind_clean(xenevtchn_handle *x, evtchn_port_t remote)
{
    int b = xenevtchn_bind_interdomain(x, GUEST, remote);

    REQUIRE(b > 0);
    CHECK(st_readable(xenevtchn_fd(x), 1000));
    CHECK(xenevtchn_pending(x) == b);
    CHECK(xenevtchn_unmask(x, (evtchn_port_t)b) == 0);
    return b;
}

/* Only a port the remote allocated unbound for us, and only once. */
static void check_bind_rules(void)
{
    xenevtchn_handle *a = xenevtchn_open(NULL, 0), *b = xenevtchn_open(NULL, 0);
    evtchn_port_t for7 = fe_unbound(7), for0 = fe_unbound(0);
    int p;

    REQUIRE(a && b);
    errno = 0;
    CHECK(xenevtchn_bind_interdomain(a, GUEST, for7) == -1 && errno == EINVAL);
    CHECK(xenevtchn_bind_interdomain(a, GUEST, 999) == -1);      /* not allocated */
    CHECK(xenevtchn_bind_interdomain(a, 55, for0) == -1);        /* wrong domain */
    CHECK(xsg_evtchn_is_connected(d, for0) == 0);
    p = xenevtchn_bind_interdomain(a, GUEST, for0);
    CHECK(p > 0);
    CHECK(xsg_evtchn_is_connected(d, for0) == 1);
    CHECK(xenevtchn_bind_interdomain(b, GUEST, for0) == -1);     /* only once */
    CHECK(xenevtchn_bind_interdomain(a, GUEST, for0) == -1);
    /* restrict: only the given domain afterwards */
    CHECK(xenevtchn_restrict(b, 9) == 0);
    CHECK(xenevtchn_bind_unbound_port(b, GUEST) == -1 && errno == EPERM);
    CHECK(xenevtchn_bind_virq(b, VIRQ_DOM_EXC) == -1);
    /* The backend closing makes the guest's port unbound again, ready for
     * a new backend (as Xen does). */
    CHECK(xenevtchn_unbind(a, (evtchn_port_t)p) == 0);
    CHECK(xsg_evtchn_is_connected(d, for0) == 0);
    p = xenevtchn_bind_interdomain(a, GUEST, for0);
    CHECK(p > 0);
    CHECK(xsg_evtchn_is_connected(d, for0) == 1);
    xenevtchn_close(a);                         /* close unbinds everything */
    CHECK(xsg_evtchn_is_connected(d, for0) == 0);
    xenevtchn_close(b);
    CHECK(xsg_evtchn_close(d, for7) == 0 && xsg_evtchn_close(d, for0) == 0);
    CHECK(xsg_evtchn_close(d, for0) == -1);     /* already closed */
}

/* One pollable fd per handle: readable exactly when a port is pending;
 * pending() masks; notifies to a masked port coalesce into one delivery
 * after unmask; many ports share one fd. */
static void check_delivery_and_masking(void)
{
    xenevtchn_handle *x = xenevtchn_open(NULL, 0);
    evtchn_port_t f1 = fe_unbound(0), f2 = fe_unbound(0);
    int b1, b2, fd, i;

    REQUIRE(x);
    fd = xenevtchn_fd(x);
    b1 = bind_clean(x, f1);
    b2 = bind_clean(x, f2);
    REQUIRE(b1 > 0 && b2 > 0);
    CHECK(!st_readable(fd, 0));
    CHECK(xenevtchn_pending(x) == -1 && errno == EAGAIN);
    CHECK(xsg_evtchn_notify(d, f1) == 0);
    CHECK(st_readable(fd, 1000));
    CHECK(xenevtchn_pending(x) == b1);
    CHECK(!st_readable(fd, 0));
    /* masked now: a flood of notifies is one pending bit */
    for (i = 0; i < 10000; i++)
        CHECK(xsg_evtchn_notify(d, f1) == 0);
    CHECK(!st_readable(fd, 50));
    CHECK(xenevtchn_pending(x) == -1);
    CHECK(xenevtchn_unmask(x, (evtchn_port_t)b1) == 0);
    CHECK(st_readable(fd, 1000));
    CHECK(xenevtchn_pending(x) == b1);
    CHECK(!st_readable(fd, 0));
    CHECK(xenevtchn_unmask(x, (evtchn_port_t)b1) == 0);
    CHECK(!st_readable(fd, 20));              /* exactly one delivery */
    /* two ports, one fd, delivery order kept */
    CHECK(xsg_evtchn_notify(d, f2) == 0);
    CHECK(xsg_evtchn_notify(d, f1) == 0);
    CHECK(st_readable(fd, 1000));
    CHECK(xenevtchn_pending(x) == b2);
    CHECK(st_readable(fd, 0));
    CHECK(xenevtchn_pending(x) == b1);
    CHECK(!st_readable(fd, 0));
    CHECK(xenevtchn_unmask(x, (evtchn_port_t)b1) == 0 &&
          xenevtchn_unmask(x, (evtchn_port_t)b2) == 0);
    /* backend -> guest */
    CHECK(!st_readable(xsg_evtchn_fd(d), 0));
    CHECK(xenevtchn_notify(x, (evtchn_port_t)b2) == 0);
    CHECK(st_readable(xsg_evtchn_fd(d), 1000));
    CHECK(xsg_evtchn_pending(d) == (int)f2);
    CHECK(xsg_evtchn_pending(d) == -1 && errno == EAGAIN);
    CHECK(xsg_evtchn_unmask(d, f2) == 0);
    xenevtchn_close(x);
    CHECK(xsg_evtchn_close(d, f1) == 0 && xsg_evtchn_close(d, f2) == 0);
}

/* Notify on a port that is not (or no longer) bound fails. */
static void check_notify_unbound(void)
{
    xenevtchn_handle *x = xenevtchn_open(NULL, 0);
    evtchn_port_t f = fe_unbound(0);
    int b;

    REQUIRE(x);
    errno = 0;
    CHECK(xenevtchn_notify(x, 77) == -1 && errno == ENOTCONN);
    CHECK(xenevtchn_notify(x, 0) == -1);
    CHECK(xsg_evtchn_notify(d, 300) == -1);
    b = xenevtchn_bind_interdomain(x, GUEST, f);
    REQUIRE(b > 0);
    CHECK(xenevtchn_notify(x, (evtchn_port_t)b) == 0);
    CHECK(xenevtchn_unbind(x, (evtchn_port_t)b) == 0);
    CHECK(xenevtchn_notify(x, (evtchn_port_t)b) == -1);
    CHECK(xenevtchn_unbind(x, (evtchn_port_t)b) == -1);
    while (xsg_evtchn_pending(d) >= 0)
        ;
    CHECK(xsg_evtchn_close(d, f) == 0);
    CHECK(xsg_evtchn_notify(d, f) == -1);
    xenevtchn_close(x);
}

/* Unbinding a port with an undelivered event leaves no stale delivery for
 * a later binding of the same port number. */
static void check_unbind_clean(void)
{
    xenevtchn_handle *x = xenevtchn_open(NULL, 0);
    evtchn_port_t f = fe_unbound(0), f2;
    int b, b2, fd;

    REQUIRE(x);
    fd = xenevtchn_fd(x);
    b = bind_clean(x, f);
    CHECK(xsg_evtchn_notify(d, f) == 0);
    CHECK(st_readable(fd, 1000));
    CHECK(xenevtchn_unbind(x, (evtchn_port_t)b) == 0);
    CHECK(!st_readable(fd, 0));
    CHECK(xenevtchn_pending(x) == -1);
    CHECK(xsg_evtchn_close(d, f) == 0);
    f2 = fe_unbound(0);
    b2 = bind_clean(x, f2);
    CHECK(b2 == b);                       /* same number: the case that matters */
    CHECK(!st_readable(fd, 20));
    CHECK(xenevtchn_pending(x) == -1);
    /* and the masked-pending case */
    CHECK(xsg_evtchn_notify(d, f2) == 0);
    CHECK(xenevtchn_pending(x) == b2);
    CHECK(xsg_evtchn_notify(d, f2) == 0);     /* pending while masked */
    CHECK(xenevtchn_unbind(x, (evtchn_port_t)b2) == 0);
    CHECK(xsg_evtchn_close(d, f2) == 0);
    f2 = fe_unbound(0);
    b2 = bind_clean(x, f2);
    CHECK(b2 == b);
    CHECK(xenevtchn_unmask(x, (evtchn_port_t)b2) == 0);
    CHECK(!st_readable(fd, 20));
    xenevtchn_close(x);
    CHECK(xsg_evtchn_close(d, f2) == 0);
}

static evtchn_port_t flood_port;
static int flooder(void *arg)
{
    struct timespec t0, t;

    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        if (xsg_evtchn_notify(d, flood_port) < 0)
            return 1;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 300);
    return 0;
}

/* A guest notifying in a tight loop (another process) wakes a masked
 * backend once, not once per notify. */
static void check_flood(void)
{
    xenevtchn_handle *x = xenevtchn_open(NULL, 0);
    int b, fd, wakeups = 0, got = 0;
    pid_t pid;

    REQUIRE(x);
    fd = xenevtchn_fd(x);
    flood_port = fe_unbound(0);
    b = bind_clean(x, flood_port);
    pid = st_spawn(flooder, NULL);
    /* Never unmask while the flood runs: one wake-up, the first notify's,
     * however long the forked flooder takes to start... */
    if (st_readable(fd, 10000)) {
        wakeups++;
        if (xenevtchn_pending(x) == b)
            got++;
    }
    /* ...and no other once it has ended: a delivery's datagram is sent by
     * the notify itself, so all of them are queued by then. */
    CHECK(st_wait(pid) == 0);
    while (st_readable(fd, 0)) {
        wakeups++;
        if (xenevtchn_pending(x) == b)
            got++;
        if (wakeups > 5)
            break;
    }
    CHECK(wakeups == 1 && got == 1);
    CHECK(xenevtchn_unmask(x, (evtchn_port_t)b) == 0);
    CHECK(st_readable(fd, 1000));             /* coalesced into one */
    CHECK(xenevtchn_pending(x) == b);
    CHECK(xenevtchn_unmask(x, (evtchn_port_t)b) == 0);
    CHECK(!st_readable(fd, 20));
    xenevtchn_close(x);
    CHECK(xsg_evtchn_close(d, flood_port) == 0);
}

static evtchn_port_t dying_port;
static int bind_and_die(void *arg)
{
    xenevtchn_handle *x = xenevtchn_open(NULL, 0);

    (void)arg;
    if (!x || xenevtchn_bind_interdomain(x, GUEST, dying_port) < 0)
        return 2;
    raise(SIGKILL);
    return 0;
}

/* Bindings of a process killed with SIGKILL are released. */
static void check_dead_binding_reaped(void)
{
    xenevtchn_handle *x;

    dying_port = fe_unbound(0);
    CHECK(st_in_child(bind_and_die, NULL) == 128 + SIGKILL);
    CHECK(xsg_evtchn_is_connected(d, dying_port) == 0);
    x = xenevtchn_open(NULL, 0);
    REQUIRE(x);
    CHECK(xenevtchn_bind_interdomain(x, GUEST, dying_port) > 0);
    CHECK(xsg_evtchn_is_connected(d, dying_port) == 1);
    xenevtchn_close(x);
    CHECK(xsg_evtchn_close(d, dying_port) == 0);
}

/* What Xen does when a backend process holding an interdomain channel
 * dies: its end is closed, the guest's port goes back to unbound for the
 * backend's domain (so a notification the guest sends meanwhile goes
 * nowhere, without an error), and a successor binds the same guest port
 * again, even with a handle it opened before the death, and gets an event
 * at once (Xen marks a newly bound port pending), then the guest's. */
static void check_backend_successor(void)
{
    xenevtchn_handle *x = xenevtchn_open(NULL, 0);   /* opened before */
    int b;

    REQUIRE(x);
    dying_port = fe_unbound(0);
    CHECK(st_in_child(bind_and_die, NULL) == 128 + SIGKILL);
    CHECK(xsg_evtchn_notify(d, dying_port) == 0);    /* into the void */
    /* Nothing else looked at the port since the death (the guest's port
     * going back to unbound is check_dead_binding_reaped's). */
    b = bind_clean(x, dying_port);
    CHECK(xsg_evtchn_is_connected(d, dying_port) == 1);
    CHECK(!st_readable(xenevtchn_fd(x), 20));        /* nothing stale */
    CHECK(xsg_evtchn_notify(d, dying_port) == 0);
    CHECK(st_readable(xenevtchn_fd(x), 1000));
    CHECK(xenevtchn_pending(x) == b);
    CHECK(xenevtchn_notify(x, (evtchn_port_t)b) == 0);   /* and back */
    CHECK(st_readable(xsg_evtchn_fd(d), 1000));
    CHECK(xsg_evtchn_pending(d) == (int)dying_port);
    CHECK(xsg_evtchn_unmask(d, dying_port) == 0);
    xenevtchn_close(x);
    CHECK(xsg_evtchn_close(d, dying_port) == 0);
}

static int bind_notify_die(void *arg)
{
    xenevtchn_handle *x = xenevtchn_open(NULL, 0);
    int b;

    (void)arg;
    if (!x || (b = xenevtchn_bind_interdomain(x, GUEST, dying_port)) < 0)
        return 2;
    if (xsg_fault_set("evt_kill=1") < 0)
        return 3;
    xenevtchn_notify(x, (evtchn_port_t)b);      /* dies in here */
    return 4;
}

/* A backend killed in the middle of a notification (fault evt_kill: the
 * guest's port marked delivered, the guest's handle neither counting it
 * nor woken), as
 * SIGKILL can catch a daemon answering requests.  In Xen the notification
 * is one hypercall: it happened or it did not.  Either way the guest is
 * not left behind: once the dead backend is reaped (here by its
 * successor's bind), the guest is woken for the event, and the
 * successor's notifications reach it.  Without the repair the guest's port
 * stayed delivered with no wake-up, every later notification coalesced
 * into it, and the guest slept for good (tests/daemon/restart-kills.sh
 * stalled so, once in about 25 runs under load). */
static void check_notifier_killed_halfway(void)
{
    xenevtchn_handle *x = xenevtchn_open(NULL, 0);
    uint64_t fired = xsg_fault_fired();
    int b;

    REQUIRE(x);
    dying_port = fe_unbound(0);
    CHECK(st_in_child(bind_notify_die, NULL) == 128 + SIGKILL);
    CHECK(xsg_fault_fired() == fired + 1);
    CHECK(!st_readable(xsg_evtchn_fd(d), 0));      /* died before the wake-up */
    b = bind_clean(x, dying_port);                  /* reaps the dead one */
    CHECK(st_readable(xsg_evtchn_fd(d), 1000));
    CHECK(xsg_evtchn_pending(d) == (int)dying_port);
    CHECK(xsg_evtchn_pending(d) == -1);             /* once */
    CHECK(xsg_evtchn_unmask(d, dying_port) == 0);
    CHECK(xenevtchn_notify(x, (evtchn_port_t)b) == 0);
    CHECK(st_readable(xsg_evtchn_fd(d), 1000));
    CHECK(xsg_evtchn_pending(d) == (int)dying_port);
    CHECK(xsg_evtchn_unmask(d, dying_port) == 0);
    xenevtchn_close(x);
    CHECK(xsg_evtchn_close(d, dying_port) == 0);
}

/* Fault injection: a dropped notification never arrives. */
static void check_drop_fault(void)
{
    xenevtchn_handle *x = xenevtchn_open(NULL, 0);
    evtchn_port_t f = fe_unbound(0);
    uint64_t fired = xsg_fault_fired();
    int b;

    REQUIRE(x);
    b = bind_clean(x, f);
    CHECK(xsg_fault_set("evt_drop=2") == 0);
    CHECK(xsg_evtchn_notify(d, f) == 0);      /* 1st: delivered */
    CHECK(xenevtchn_pending(x) == b);
    CHECK(xenevtchn_unmask(x, (evtchn_port_t)b) == 0);
    CHECK(xsg_evtchn_notify(d, f) == 0);      /* 2nd: dropped */
    CHECK(!st_readable(xenevtchn_fd(x), 50));
    CHECK(xsg_evtchn_notify(d, f) == 0);      /* 3rd: delivered */
    CHECK(st_readable(xenevtchn_fd(x), 1000));
    CHECK(xenevtchn_pending(x) == b);
    CHECK(xsg_fault_fired() == fired + 1);
    CHECK(xsg_fault_set("bogus=1") == -1);
    xenevtchn_close(x);
    CHECK(xsg_evtchn_close(d, f) == 0);
}

static void check_virq(void)
{
    xenevtchn_handle *x = xenevtchn_open(NULL, 0);
    int p;

    REQUIRE(x);
    p = xenevtchn_bind_virq(x, VIRQ_DOM_EXC);
    CHECK(p > 0);
    CHECK(xenevtchn_bind_virq(x, VIRQ_DOM_EXC) == -1);
    CHECK(xenevtchn_unbind(x, (evtchn_port_t)p) == 0);
    xenevtchn_close(x);
}

int main(int argc, char **argv)
{
    st_init(argc, argv);
    d = xsg_dom_create(GUEST, 4, 64);
    REQUIRE(d);
    check_bind_rules();
    check_delivery_and_masking();
    check_notify_unbound();
    check_unbind_clean();
    check_flood();
    check_dead_binding_reaped();
    check_backend_successor();
    check_notifier_killed_halfway();
    check_drop_fault();
    check_virq();
    CHECK(xsg_dom_destroy(d) == 0);
    return st_done("test-evtchn");
}
