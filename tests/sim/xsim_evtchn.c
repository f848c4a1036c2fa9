/*
 * xsim_evtchn.c - simulated event channels.
 *
 * Each domain has a port table file ($XENSIM_DIR/evtchn/dom<D>) shared by
 * every process; a port is owned by one handle (a slot in the same file).
 * Each handle has one datagram socket in the abstract namespace that serves
 * as its pollable fd.  Invariant (kept under the table's flock): a handle's
 * socket holds exactly one one-byte "doorbell" datagram iff nready > 0, i.e.
 * the fd is readable exactly when pending() has a port to return.  A port
 * is delivered at most once until it is unmasked, so a guest notifying in a
 * tight loop only sets a pending bit: the backend sees one wake-up.
 */
#include "xsim.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct evt_table {
    struct evt_table *next;
    domid_t domid;
    int fd;
    struct xsim_evt_hdr *t;
    char dir[PATH_MAX];
};

static struct evt_table *tables;     /* protected by the process lock */

struct xsim_evt_hdr *xsim_evt_table(domid_t domid, int *fd)
{
    const char *dir = xsim_dir();
    char path[PATH_MAX];
    struct evt_table *e;

    if (!dir)
        return NULL;
    for (e = tables; e; e = e->next) {
        if (e->domid == domid && strcmp(e->dir, dir) == 0) {
            *fd = e->fd;
            return e->t;
        }
    }
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    snprintf(path, sizeof(path), "%s/evtchn", dir);
    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
        free(e);
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/evtchn/dom%u", dir, domid);
    e->t = xsim_map_file(path, sizeof(*e->t), true, &e->fd);
    if (!e->t) {
        free(e);
        return NULL;
    }
    if (xsim_flock(e->fd) == 0) {
        if (e->t->magic != XSIM_EVT_MAGIC) {
            e->t->version = 1;
            e->t->domid = domid;
            e->t->nr_ports = XSIM_EVT_PORTS;
            e->t->nr_handles = XSIM_EVT_HANDLES;
            e->t->magic = XSIM_EVT_MAGIC;
        }
        xsim_funlock(e->fd);
    }
    e->domid = domid;
    snprintf(e->dir, sizeof(e->dir), "%s", dir);
    e->next = tables;
    tables = e;
    *fd = e->fd;
    return e->t;
}

/* Abstract socket name of a handle: unique per simulated host (inode of
 * $XENSIM_DIR), domain, slot and serial; vanishes with its process. */
static socklen_t sock_name(struct sockaddr_un *sa, domid_t dom, uint32_t slot,
                           uint32_t serial)
{
    const char *dir = getenv("XENSIM_DIR");
    struct stat st = { 0 };
    int n;

    if (dir)
        stat(dir, &st);
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1,
                 "xensim-%lx-%lx-d%u-h%u-%u", (unsigned long)st.st_dev,
                 (unsigned long)st.st_ino, dom, slot, serial);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static void ring_bell(domid_t dom, struct xsim_evt_hdr *t, uint32_t slot)
{
    struct sockaddr_un sa;
    socklen_t len = sock_name(&sa, dom, slot, t->handles[slot].serial);
    char b = 'e';
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    if (s < 0)
        return;
    /* A dead receiver (ECONNREFUSED) is reaped later; nothing to do. */
    (void)sendto(s, &b, 1, MSG_DONTWAIT, (struct sockaddr *)&sa, len);
    close(s);
}

static void drain_bell(int sock)
{
    char buf[16];

    while (recv(sock, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
        ;
}

/* Fault evt_kill (CONTRACT.md), where a backend's notification wakes the
 * guest: the notifier dies here, holding the guest's table lock, the
 * guest's port marked delivered, its handle neither counting it nor
 * woken (the most there is to repair: repair_handle). */
static void die_notifying(struct xsim_faults *f)
{
    if (f && xsim_fault_fire(&f->evt_kill_countdown)) {
        __atomic_fetch_add(&f->fired, 1, __ATOMIC_SEQ_CST);
        raise(SIGKILL);
    }
}

/* Locked: queue port for its handle's pending(); masks it.  f: the
 * faults of a backend's notification (die_notifying), else NULL. */
static void deliver(domid_t dom, struct xsim_evt_hdr *t, uint32_t port,
                    struct xsim_faults *f)
{
    struct xsim_evt_port *p = &t->ports[port];
    uint32_t slot;

    if (!p->handle)
        return;
    slot = p->handle - 1u;
    p->delivered = 1;
    if (!t->handles[slot].nready)
        die_notifying(f);
    p->masked = 1;
    p->pending = 0;
    p->seq = ++t->next_seq;
    if (t->handles[slot].nready++ == 0)
        ring_bell(dom, t, slot);
}

/* Locked: an event arrives on port. */
static void signal_port(domid_t dom, struct xsim_evt_hdr *t, uint32_t port,
                        struct xsim_faults *f)
{
    struct xsim_evt_port *p = &t->ports[port];

    if (p->masked || p->delivered)
        p->pending = 1;            /* coalesce until unmask */
    else
        deliver(dom, t, port, f);
}

/* Locked: a process that died inside deliver() (killed between its stores
 * to the peer's port and its doorbell, by SIGKILL or the fault evt_kill)
 * left the peer's handle counting wrong, or not woken: the peer would
 * sleep for good, every later event coalescing into the port delivered
 * to no one.  In Xen a notification is one hypercall, done whole or not
 * at all: finish it for the dead notifier.  nready is again the number of
 * ports delivered to the handle, and a handle with any rings its bell (a
 * second datagram is harmless: pending() drains the socket when it
 * returns the last port). */
static void repair_handle(domid_t dom, struct xsim_evt_hdr *t, uint32_t slot)
{
    uint32_t port, n = 0;

    if (slot >= XSIM_EVT_HANDLES || !t->handles[slot].pid)
        return;
    for (port = 1; port < XSIM_EVT_PORTS; port++) {
        struct xsim_evt_port *p = &t->ports[port];

        if (p->delivered && p->handle == slot + 1) {
            p->masked = 1;
            n++;
        }
    }
    t->handles[slot].nready = n;
    if (n)
        ring_bell(dom, t, slot);
}

/* Locked, by the owner (sock >= 0) or a reaper of a dead owner (-1). */
static void undeliver(struct xsim_evt_hdr *t, uint32_t port, int sock)
{
    struct xsim_evt_port *p = &t->ports[port];
    struct xsim_evt_handle *h;

    if (!p->delivered || !p->handle)
        return;
    p->delivered = 0;
    h = &t->handles[p->handle - 1u];
    if (h->nready && --h->nready == 0 && sock >= 0)
        drain_bell(sock);
}

struct fixup {
    domid_t dom;        /* peer domain ... */
    uint32_t port;      /* ... and port to turn back into unbound */
};

/* Locked: free port; returns true and fills *fx if the peer needs fixing
 * (done after unlocking, as its table has its own lock). */
static bool close_port(domid_t dom, struct xsim_evt_hdr *t, uint32_t port,
                       int sock, struct fixup *fx)
{
    struct xsim_evt_port *p = &t->ports[port];
    bool need = false;

    undeliver(t, port, sock);
    if (p->state == XSIM_ECS_INTERDOMAIN) {
        fx->dom = p->remote_dom;
        fx->port = p->remote_port;
        need = true;
    }
    memset(p, 0, sizeof(*p));
    (void)dom;
    return need;
}

static void lock_two(int fa, domid_t da, int fb, domid_t db);
static void unlock_two(int fa, int fb);

/* As in Xen, the peer of a closed interdomain channel becomes unbound,
 * waiting for a new connection from the closer's domain.  dead: the closer
 * is a dead process being reaped, which may have died notifying this very
 * peer (repair_handle). */
static void apply_fixup(domid_t closer, uint32_t closer_port, const struct fixup *fx,
                        bool dead)
{
    int fd;
    struct xsim_evt_hdr *t = xsim_evt_table(fx->dom, &fd);
    struct xsim_evt_port *p;

    if (!t || fx->port == 0 || fx->port >= XSIM_EVT_PORTS)
        return;
    xsim_flock(fd);
    p = &t->ports[fx->port];
    if (p->state == XSIM_ECS_INTERDOMAIN && p->remote_dom == closer &&
        p->remote_port == closer_port) {
        p->state = XSIM_ECS_UNBOUND;
        p->remote_port = 0;
        if (dead && p->handle)
            repair_handle(fx->dom, t, p->handle - 1u);
    }
    xsim_funlock(fd);
}

/* Locked: close every port of handle slots whose process is gone. */
static unsigned reap_table(domid_t dom, struct xsim_evt_hdr *t,
                           struct fixup *fx, uint32_t *fxport, unsigned max)
{
    unsigned n = 0;
    uint32_t s, port;
    /* A process holds many handles (one per ring), mostly side by side:
     * ask about each pid once per run of its slots (xsim_pid_dead reads
     * /proc, and this runs at every open and bind). */
    int32_t last_pid = 0;
    bool last_dead = false;

    for (s = 0; s < XSIM_EVT_HANDLES; s++) {
        int32_t pid = t->handles[s].pid;

        if (!pid)
            continue;
        if (pid != last_pid) {
            last_pid = pid;
            last_dead = xsim_pid_dead(pid);
        }
        if (!last_dead)
            continue;
        for (port = 1; port < XSIM_EVT_PORTS; port++) {
            if (t->ports[port].handle != s + 1)
                continue;
            if (close_port(dom, t, port, -1, &fx[n]) && n < max)
                fxport[n++] = port;
        }
        memset(&t->handles[s], 0, sizeof(t->handles[s]));
    }
    return n;
}

/* Reap dead handles of a domain's table (takes and drops its lock). */
static void reap_domain(domid_t dom)
{
    struct fixup fx[64];
    uint32_t fxport[64];
    unsigned n, i;
    int fd;
    struct xsim_evt_hdr *t = xsim_evt_table(dom, &fd);

    if (!t)
        return;
    xsim_flock(fd);
    n = reap_table(dom, t, fx, fxport, 64);
    xsim_funlock(fd);
    for (i = 0; i < n; i++)
        apply_fixup(dom, fxport[i], &fx[i], true);
}

int xsim_evh_open(struct xsim_evh *h, domid_t domid, bool cloexec)
{
    struct sockaddr_un sa;
    socklen_t len;
    uint32_t s;

    memset(h, 0, sizeof(*h));
    h->sock = -1;
    h->domid = domid;
    h->t = xsim_evt_table(domid, &h->tfd);
    if (!h->t)
        return -1;
    reap_domain(domid);
    xsim_flock(h->tfd);
    for (s = 0; s < XSIM_EVT_HANDLES; s++) {
        if (!h->t->handles[s].pid)
            break;
    }
    if (s == XSIM_EVT_HANDLES) {
        xsim_funlock(h->tfd);
        errno = EMFILE;
        return -1;
    }
    h->slot = s;
    h->serial = ++h->t->next_serial;
    h->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | (cloexec ? SOCK_CLOEXEC : 0), 0);
    len = sock_name(&sa, domid, s, h->serial);
    if (h->sock < 0 || bind(h->sock, (struct sockaddr *)&sa, len) < 0) {
        int e = errno;
        xsim_funlock(h->tfd);
        if (h->sock >= 0)
            close(h->sock);
        errno = e;
        return -1;
    }
    h->t->handles[s] = (struct xsim_evt_handle){ .pid = getpid(), .serial = h->serial };
    xsim_funlock(h->tfd);
    return h->sock;
}

void xsim_evh_close(struct xsim_evh *h)
{
    struct fixup fx[XSIM_EVT_PORTS];
    uint32_t fxport[XSIM_EVT_PORTS];
    unsigned n = 0, i;
    uint32_t port;

    if (!h->t)
        return;
    xsim_flock(h->tfd);
    for (port = 1; port < XSIM_EVT_PORTS; port++) {
        if (h->t->ports[port].handle == h->slot + 1 &&
            close_port(h->domid, h->t, port, h->sock, &fx[n]))
            fxport[n++] = port;
    }
    memset(&h->t->handles[h->slot], 0, sizeof(h->t->handles[h->slot]));
    xsim_funlock(h->tfd);
    for (i = 0; i < n; i++)
        apply_fixup(h->domid, fxport[i], &fx[i], false);
    close(h->sock);
    h->t = NULL;
}

/* Locked: lowest free port (port 0 is never valid, as in Xen). */
static int alloc_port(struct xsim_evt_hdr *t)
{
    uint32_t p;

    for (p = 1; p < XSIM_EVT_PORTS; p++) {
        if (t->ports[p].state == XSIM_ECS_FREE)
            return (int)p;
    }
    errno = ENOSPC;
    return -1;
}

static bool restricted_out(struct xsim_evh *h, domid_t remote)
{
    if (h->restricted && remote != h->restrict_dom) {
        errno = EPERM;
        return true;
    }
    return false;
}

int xsim_evh_bind_unbound(struct xsim_evh *h, domid_t remote)
{
    int port;

    if (restricted_out(h, remote))
        return -1;
    xsim_flock(h->tfd);
    port = alloc_port(h->t);
    if (port > 0)
        h->t->ports[port] = (struct xsim_evt_port){
            .state = XSIM_ECS_UNBOUND, .remote_dom = remote,
            .handle = (uint16_t)(h->slot + 1),
        };
    xsim_funlock(h->tfd);
    return port;
}

static void lock_two(int fa, domid_t da, int fb, domid_t db)
{
    if (fa == fb) {
        xsim_flock(fa);
    } else if (da < db) {
        xsim_flock(fa);
        xsim_flock(fb);
    } else {
        xsim_flock(fb);
        xsim_flock(fa);
    }
}

static void unlock_two(int fa, int fb)
{
    xsim_funlock(fa);
    if (fb != fa)
        xsim_funlock(fb);
}

int xsim_evh_bind_interdomain(struct xsim_evh *h, domid_t remote, uint32_t rport)
{
    struct xsim_evt_hdr *rt;
    struct xsim_evt_port *rp;
    int rfd, port;

    if (restricted_out(h, remote))
        return -1;
    if (rport == 0 || rport >= XSIM_EVT_PORTS) {
        errno = EINVAL;
        return -1;
    }
    rt = xsim_evt_table(remote, &rfd);
    if (!rt)
        return -1;
    /* A dead process's ports are closed as Xen closes them when the
     * process's evtchn file goes: in either table (the remote port may
     * still point at a dead handle of our own domain, e.g. a killed
     * predecessor of this backend, whatever the age of this handle). */
    reap_domain(remote);
    if (remote != h->domid)
        reap_domain(h->domid);
    lock_two(h->tfd, h->domid, rfd, remote);
    rp = &rt->ports[rport];
    /* Only a port the remote allocated unbound for us, and only once. */
    if (rp->state != XSIM_ECS_UNBOUND || rp->remote_dom != h->domid) {
        unlock_two(h->tfd, rfd);
        errno = EINVAL;
        return -1;
    }
    port = alloc_port(h->t);
    if (port > 0) {
        h->t->ports[port] = (struct xsim_evt_port){
            .state = XSIM_ECS_INTERDOMAIN, .remote_dom = remote,
            .remote_port = rport, .handle = (uint16_t)(h->slot + 1),
        };
        rp->state = XSIM_ECS_INTERDOMAIN;
        rp->remote_port = (uint32_t)port;
        /* As Xen: notifications sent while the remote port was unbound
         * were dropped, so the new local port starts pending (the binder
         * gets one event at once and looks at the shared state). */
        signal_port(h->domid, h->t, (uint32_t)port, NULL);
    }
    unlock_two(h->tfd, rfd);
    return port;
}

int xsim_evh_bind_virq(struct xsim_evh *h, uint32_t virq)
{
    uint32_t p;
    int port;

    if (h->restricted) {
        errno = EPERM;
        return -1;
    }
    xsim_flock(h->tfd);
    for (p = 1; p < XSIM_EVT_PORTS; p++) {
        if (h->t->ports[p].state == XSIM_ECS_VIRQ && h->t->ports[p].remote_port == virq) {
            xsim_funlock(h->tfd);
            errno = EEXIST;
            return -1;
        }
    }
    port = alloc_port(h->t);
    if (port > 0)
        h->t->ports[port] = (struct xsim_evt_port){
            .state = XSIM_ECS_VIRQ, .remote_port = virq,
            .handle = (uint16_t)(h->slot + 1),
        };
    xsim_funlock(h->tfd);
    return port;
}

static bool owned(struct xsim_evh *h, uint32_t port)
{
    return port > 0 && port < XSIM_EVT_PORTS &&
           h->t->ports[port].state != XSIM_ECS_FREE &&
           h->t->ports[port].handle == h->slot + 1;
}

int xsim_evh_unbind(struct xsim_evh *h, uint32_t port)
{
    struct fixup fx;
    bool need;

    xsim_flock(h->tfd);
    if (!owned(h, port)) {
        xsim_funlock(h->tfd);
        errno = ENOTCONN;
        return -1;
    }
    need = close_port(h->domid, h->t, port, h->sock, &fx);
    xsim_funlock(h->tfd);
    if (need)
        apply_fixup(h->domid, port, &fx, false);
    return 0;
}

int xsim_evh_notify(struct xsim_evh *h, uint32_t port)
{
    struct xsim_faults *f = xsim_faults();
    struct xsim_evt_hdr *rt;
    struct xsim_evt_port *p;
    domid_t rdom;
    uint32_t rport;
    uint8_t state;
    int rfd;

    xsim_flock(h->tfd);
    if (!owned(h, port)) {
        xsim_funlock(h->tfd);
        errno = ENOTCONN;
        return -1;
    }
    p = &h->t->ports[port];
    state = p->state;
    rdom = p->remote_dom;
    rport = p->remote_port;
    xsim_funlock(h->tfd);
    if (state == XSIM_ECS_UNBOUND)
        return 0;                   /* Xen silently drops it */
    if (state != XSIM_ECS_INTERDOMAIN) {
        errno = EINVAL;
        return -1;
    }
    if (f) {
        uint32_t delay = __atomic_load_n(&f->evt_delay_us, __ATOMIC_RELAXED);
        if (delay)
            usleep(delay);
        if (xsim_fault_fire(&f->evt_drop_countdown)) {
            __atomic_fetch_add(&f->fired, 1, __ATOMIC_RELAXED);
            return 0;
        }
    }
    rt = xsim_evt_table(rdom, &rfd);
    if (!rt)
        return -1;
    xsim_flock(rfd);
    p = &rt->ports[rport < XSIM_EVT_PORTS ? rport : 0];
    /* The peer must still be bound to us (it may have closed meanwhile). */
    if (rport && p->state == XSIM_ECS_INTERDOMAIN && p->remote_dom == h->domid &&
        p->remote_port == port)
        signal_port(rdom, rt, rport, h->domid == 0 ? f : NULL);
    xsim_funlock(rfd);
    return 0;
}

int xsim_evh_pending(struct xsim_evh *h)
{
    uint32_t port, best = 0;
    uint64_t best_seq = UINT64_MAX;

    xsim_flock(h->tfd);
    if (h->t->handles[h->slot].nready) {
        for (port = 1; port < XSIM_EVT_PORTS; port++) {
            struct xsim_evt_port *p = &h->t->ports[port];
            if (p->delivered && p->handle == h->slot + 1 && p->seq < best_seq) {
                best = port;
                best_seq = p->seq;
            }
        }
    }
    if (best)
        undeliver(h->t, best, h->sock);   /* stays masked until unmask() */
    else
        drain_bell(h->sock);              /* keep the fd honest */
    xsim_funlock(h->tfd);
    if (!best) {
        errno = EAGAIN;
        return -1;
    }
    return (int)best;
}

int xsim_evh_unmask(struct xsim_evh *h, uint32_t port)
{
    struct xsim_evt_port *p;

    xsim_flock(h->tfd);
    /* Like the Linux evtchn device, unmasking a port that is not ours is
     * silently ignored. */
    if (owned(h, port)) {
        p = &h->t->ports[port];
        p->masked = 0;
        if (p->pending && !p->delivered)
            deliver(h->domid, h->t, port, NULL);
    }
    xsim_funlock(h->tfd);
    return 0;
}

int xsim_evh_is_connected(struct xsim_evh *h, uint32_t port)
{
    struct xsim_evt_port *p;
    struct xsim_evt_hdr *rt;
    domid_t rdom;
    uint32_t rport;
    int rfd, ok;

    xsim_flock(h->tfd);
    if (!owned(h, port)) {
        xsim_funlock(h->tfd);
        errno = ENOTCONN;
        return -1;
    }
    p = &h->t->ports[port];
    ok = p->state == XSIM_ECS_INTERDOMAIN;
    rdom = p->remote_dom;
    rport = p->remote_port;
    xsim_funlock(h->tfd);
    if (!ok)
        return 0;
    /* A peer whose process died is disconnected: reap before answering. */
    reap_domain(rdom);
    rt = xsim_evt_table(rdom, &rfd);
    if (!rt)
        return -1;
    xsim_flock(rfd);
    p = &rt->ports[rport < XSIM_EVT_PORTS ? rport : 0];
    ok = rport && p->state == XSIM_ECS_INTERDOMAIN && p->remote_dom == h->domid &&
         p->remote_port == port;
    xsim_funlock(rfd);
    return ok;
}

void xsim_evt_raise(domid_t dom, uint32_t port, domid_t from_dom)
{
    int fd;
    struct xsim_evt_hdr *t = xsim_evt_table(dom, &fd);
    struct xsim_evt_port *p;

    (void)from_dom;
    if (!t || port == 0 || port >= XSIM_EVT_PORTS)
        return;
    xsim_flock(fd);
    p = &t->ports[port];
    if (p->state == XSIM_ECS_INTERDOMAIN || p->state == XSIM_ECS_UNBOUND)
        signal_port(dom, t, port, NULL);
    xsim_funlock(fd);
}

int xsim_evt_peer(domid_t dom, uint32_t port, domid_t *rdom, uint32_t *rport)
{
    int fd, rc = -1;
    struct xsim_evt_hdr *t = xsim_evt_table(dom, &fd);

    if (!t || port == 0 || port >= XSIM_EVT_PORTS) {
        errno = EINVAL;
        return -1;
    }
    xsim_flock(fd);
    if (t->ports[port].state == XSIM_ECS_INTERDOMAIN) {
        *rdom = t->ports[port].remote_dom;
        *rport = t->ports[port].remote_port;
        rc = 0;
    }
    xsim_funlock(fd);
    if (rc)
        errno = ENOTCONN;
    return rc;
}
