/*
 * libxenevtchn.c - the simulated host's libxenevtchn.so.1 (Xen's API and
 * ABI, see <xenevtchn.h>), for the backend domain $XENSIM_DOMID.
 */
#include "xsim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <xenevtchn.h>

struct xenevtchn_handle {
    struct xsim_evh h;
};

xenevtchn_handle *xenevtchn_open(struct xentoollog_logger *logger, unsigned int flags)
{
    xenevtchn_handle *x = calloc(1, sizeof(*x));
    int rc;

    (void)logger;
    if (!x)
        return NULL;
    if (!xsim_dir()) {
        free(x);
        return NULL;
    }
    xsim_lock_process();
    rc = xsim_evh_open(&x->h, xsim_self_domid(), !(flags & XENEVTCHN_NO_CLOEXEC));
    xsim_unlock_process();
    if (rc < 0) {
        int e = errno;
        free(x);
        errno = e;
        return NULL;
    }
    return x;
}

/* Adopting an fd: only an fd that is the socket of a live handle of this
 * process's domain (e.g. kept across exec) can be adopted. */
xenevtchn_handle *xenevtchn_fdopen(struct xentoollog_logger *logger, int fd,
                                   unsigned open_flags)
{
    struct sockaddr_un sa;
    socklen_t len = sizeof(sa);
    unsigned long dev, ino;
    unsigned dom, slot, serial;
    xenevtchn_handle *x;
    int tfd;

    (void)logger;
    (void)open_flags;
    if (!xsim_dir())
        return NULL;
    memset(&sa, 0, sizeof(sa));
    if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 || sa.sun_path[0] ||
        sscanf(sa.sun_path + 1, "xensim-%lx-%lx-d%u-h%u-%u", &dev, &ino, &dom,
               &slot, &serial) != 5 || dom != xsim_self_domid() ||
        slot >= XSIM_EVT_HANDLES) {
        errno = EINVAL;
        return NULL;
    }
    x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    xsim_lock_process();
    x->h.t = xsim_evt_table((domid_t)dom, &tfd);
    xsim_unlock_process();
    if (!x->h.t || x->h.t->handles[slot].serial != serial) {
        free(x);
        errno = EINVAL;
        return NULL;
    }
    x->h.tfd = tfd;
    x->h.domid = (domid_t)dom;
    x->h.slot = slot;
    x->h.serial = serial;
    x->h.sock = fd;
    /* The handle now belongs to this process (it may have been exec'd). */
    x->h.t->handles[slot].pid = getpid();
    return x;
}

int xenevtchn_close(xenevtchn_handle *x)
{
    if (!x)
        return 0;
    xsim_lock_process();
    xsim_evh_close(&x->h);
    xsim_unlock_process();
    free(x);
    return 0;
}

int xenevtchn_fd(xenevtchn_handle *x)
{
    return x->h.sock;
}

int xenevtchn_notify(xenevtchn_handle *x, evtchn_port_t port)
{
    int rc;

    xsim_lock_process();
    rc = xsim_evh_notify(&x->h, port);
    xsim_unlock_process();
    return rc;
}

xenevtchn_port_or_error_t xenevtchn_bind_unbound_port(xenevtchn_handle *x, uint32_t domid)
{
    int rc;

    if (domid >= DOMID_FIRST_RESERVED) {
        errno = EINVAL;
        return -1;
    }
    xsim_lock_process();
    rc = xsim_evh_bind_unbound(&x->h, (domid_t)domid);
    xsim_unlock_process();
    return rc;
}

xenevtchn_port_or_error_t xenevtchn_bind_interdomain(xenevtchn_handle *x, uint32_t domid,
                                                     evtchn_port_t remote_port)
{
    int rc;

    if (domid >= DOMID_FIRST_RESERVED) {
        errno = EINVAL;
        return -1;
    }
    xsim_lock_process();
    rc = xsim_evh_bind_interdomain(&x->h, (domid_t)domid, remote_port);
    xsim_unlock_process();
    return rc;
}

xenevtchn_port_or_error_t xenevtchn_bind_virq(xenevtchn_handle *x, unsigned int virq)
{
    int rc;

    xsim_lock_process();
    rc = xsim_evh_bind_virq(&x->h, virq);
    xsim_unlock_process();
    return rc;
}

int xenevtchn_unbind(xenevtchn_handle *x, evtchn_port_t port)
{
    int rc;

    xsim_lock_process();
    rc = xsim_evh_unbind(&x->h, port);
    xsim_unlock_process();
    return rc;
}

xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *x)
{
    int rc;

    xsim_lock_process();
    rc = xsim_evh_pending(&x->h);
    xsim_unlock_process();
    return rc;
}

int xenevtchn_unmask(xenevtchn_handle *x, evtchn_port_t port)
{
    int rc;

    xsim_lock_process();
    rc = xsim_evh_unmask(&x->h, port);
    xsim_unlock_process();
    return rc;
}

int xenevtchn_restrict(xenevtchn_handle *x, domid_t domid)
{
    x->h.restricted = true;
    x->h.restrict_dom = domid;
    return 0;
}
