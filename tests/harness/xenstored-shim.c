/*
 * xenstored-shim.c - LD_PRELOAD shim that lets Debian's unmodified C
 * xenstored (Xen 4.17) run on a machine without Xen, for one test.
 *
 * xenstored talks to the hypervisor for three things only: domain
 * information (libxenctrl), the xenstore rings of introduced domains
 * (libxengnttab) and their event channels plus VIRQ_DOM_EXC
 * (libxenevtchn).  In the simulated host every client reaches xenstored
 * over its Unix socket, so none of this is needed: we answer just enough
 * for xenstored to start, introduce dom0 and serve sockets.  The list of
 * faked functions is exactly what `nm -D xenstored` shows it importing
 * from those libraries; each one says why it exists.
 *
 * Two /proc/xen files are redirected to files in $XSIM_SHIM_DIR: dom0's
 * xenstore event channel number (xsd_port) and dom0's ring page (xsd_kva),
 * which xenstored opens and mmaps when it introduces dom0.  Without dom0
 * introduced xenstored has no database (-D crashes on the first write).
 *
 * This object is preloaded into a binary built without sanitizers, so it
 * is never built with them either.  It keeps no state that matters: every
 * handle is a dummy and every port number a counter.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xenevtchn.h>
#include <xengnttab.h>

/* Any non-NULL pointer works as a handle: xenstored only passes it back. */
static char dummy_handle[64];

/* Port numbers handed out by the fake bind calls (0 means "none" to
 * xenstored, so start at 1). */
static evtchn_port_t next_port = 1;

/* Pipe whose read end is the "event channel fd" xenstored polls.  Nothing
 * is ever written to it: there are no events in the simulation. */
static int evtchn_pipe[2] = { -1, -1 };

static void shim_die(const char *msg)
{
    fprintf(stderr, "xenstored-shim: %s\n", msg);
    abort();
}

/* ---- libxenctrl ------------------------------------------------------ */

/* domain_init() opens the hypervisor interface and dies if it fails. */
xc_interface *xc_interface_open(xentoollog_logger *logger,
                                xentoollog_logger *dombuild_logger,
                                unsigned open_flags)
{
    return (xc_interface *)dummy_handle;
}

int xc_interface_close(xc_interface *xch)
{
    return 0;
}

/* Called to decide whether a domain exists (permissions naming a domain
 * that does not exist are dropped) and whether introduced domains died.
 * In the simulation every domain exists and is running. */
int xc_domain_getinfo(xc_interface *xch, uint32_t first_domid,
                      unsigned int max_doms, xc_dominfo_t *info)
{
    if (max_doms == 0)
        return 0;
    memset(info, 0, sizeof(*info));
    info->domid = first_domid;
    info->running = 1;
    return 1;
}

/* ---- libxengnttab ---------------------------------------------------- */

/* domain_init() opens gnttab and sets the grant limit unconditionally. */
xengnttab_handle *xengnttab_open(xentoollog_logger *logger,
                                 unsigned open_flags)
{
    return (xengnttab_handle *)dummy_handle;
}

int xengnttab_close(xengnttab_handle *xgt)
{
    return 0;
}

int xengnttab_set_max_grants(xengnttab_handle *xgt, uint32_t nr_grants)
{
    return 0;
}

/* Used to map the ring of a domain introduced with XS_INTRODUCE.  Simulated
 * guests use the socket, so introduction is refused cleanly. */
void *xengnttab_map_grant_ref(xengnttab_handle *xgt, uint32_t domid,
                              uint32_t ref, int prot)
{
    errno = ENOSYS;
    return NULL;
}

int xengnttab_unmap(xengnttab_handle *xgt, void *start_address,
                    uint32_t count)
{
    return 0;
}

/* ---- libxenevtchn ---------------------------------------------------- */

static xenevtchn_handle *evtchn_handle(void)
{
    if (evtchn_pipe[0] < 0 && pipe2(evtchn_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return NULL;
    return (xenevtchn_handle *)dummy_handle;
}

/* domain_init() opens the evtchn device (fdopen is the live-update path). */
xenevtchn_handle *xenevtchn_open(xentoollog_logger *logger, unsigned flags)
{
    return evtchn_handle();
}

xenevtchn_handle *xenevtchn_fdopen(xentoollog_logger *logger, int fd,
                                   unsigned open_flags)
{
    return evtchn_handle();
}

/* The main loop polls this fd; it never becomes readable. */
int xenevtchn_fd(xenevtchn_handle *xce)
{
    return evtchn_pipe[0];
}

/* VIRQ_DOM_EXC (domain died) and dom0's xenstore channel must bind. */
xenevtchn_port_or_error_t xenevtchn_bind_virq(xenevtchn_handle *xce,
                                              unsigned int virq)
{
    return (xenevtchn_port_or_error_t)next_port++;
}

xenevtchn_port_or_error_t
xenevtchn_bind_interdomain(xenevtchn_handle *xce, uint32_t domid,
                           evtchn_port_t remote_port)
{
    return (xenevtchn_port_or_error_t)next_port++;
}

int xenevtchn_unbind(xenevtchn_handle *xce, evtchn_port_t port)
{
    return 0;
}

/* xenstored kicks dom0's ring after introducing it and after each ring
 * access; nobody listens. */
int xenevtchn_notify(xenevtchn_handle *xce, evtchn_port_t port)
{
    return 0;
}

/* Only called when the fd is readable, which never happens. */
xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *xce)
{
    errno = EAGAIN;
    return -1;
}

int xenevtchn_unmask(xenevtchn_handle *xce, evtchn_port_t port)
{
    return 0;
}

/* ---- /proc/xen redirection ------------------------------------------- */

/* Map /proc/xen/xsd_{port,kva} to $XSIM_SHIM_DIR/xsd_{port,kva}; any
 * other path is returned unchanged. */
static const char *redirect(const char *path, char *buf, size_t len)
{
    static const char prefix[] = "/proc/xen/xsd_";
    const char *dir;
    int n;

    if (strncmp(path, prefix, sizeof(prefix) - 1) != 0)
        return path;
    dir = getenv("XSIM_SHIM_DIR");
    if (!dir)
        shim_die("XSIM_SHIM_DIR is not set (start xenstored via tests/harness/env.sh)");
    n = snprintf(buf, len, "%s/%s", dir, path + sizeof("/proc/xen/") - 1);
    if (n < 0 || (size_t)n >= len)
        shim_die("XSIM_SHIM_DIR is too long");
    return buf;
}

typedef int (*open_fn)(const char *, int, ...);

static int forward_open(const char *sym, const char *path, int flags,
                        va_list ap)
{
    char buf[4096];
    open_fn real = (open_fn)dlsym(RTLD_NEXT, sym);
    mode_t mode = 0;

    if (!real)
        shim_die("dlsym(open) failed");
    if (flags & (O_CREAT | O_TMPFILE))
        mode = (mode_t)va_arg(ap, int);
    return real(redirect(path, buf, sizeof(buf)), flags, mode);
}

/* xenstored reads xsd_port and mmaps xsd_kva through open(2). */
int open(const char *path, int flags, ...)
{
    va_list ap;
    int fd;

    va_start(ap, flags);
    fd = forward_open("open", path, flags, ap);
    va_end(ap);
    return fd;
}

