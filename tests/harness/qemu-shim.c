/*
 * qemu-shim.c - LD_PRELOAD shim that lets Debian's unmodified Xen QEMU
 * (7.2, `-machine xenpv -xen-attach`) serve qdisk disks on the simulated
 * host, as an independent backend our frontend is checked against.
 *
 * QEMU's Xen accelerator opens three hypervisor interfaces at start-up and
 * fails without them: libxenctrl, libxenforeignmemory and
 * libxendevicemodel.  A xenpv machine with only disks never calls
 * anything else of them (they serve emulated devices, the PV console and
 * framebuffer, ioreq servers: none exist here), so opening them is all we
 * fake: each open returns a dummy non-NULL handle that QEMU only keeps and
 * passes back to close/restrict, which succeed.  If a future QEMU used one
 * of these handles for real, the library would be handed our dummy and
 * the test would fail loudly rather than pass by accident.
 *
 * Grant tables and event channels are NOT faked here: QEMU uses the
 * simulated libxengnttab/libxenevtchn from tests/sim/lib (LD_LIBRARY_PATH),
 * exactly as it would use the real ones.  xenstore is the private
 * xenstored (XENSTORED_PATH).
 *
 * Preloaded into a binary built without sanitizers: never built with them.
 */
#include "config.h"

#include <xenctrl.h>
#include <xendevicemodel.h>
#include <xenforeignmemory.h>

/* QEMU only stores these pointers and passes them back to us. */
static char dummy_handle[64];

/* xen_init(): the accelerator refuses to start without a hypervisor handle. */
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

/* xen_init(): opened unconditionally (used for guest RAM and rings of the
 * legacy backends, none of which a disk-only xenpv machine has). */
xenforeignmemory_handle *xenforeignmemory_open(xentoollog_logger *logger,
                                               unsigned open_flags)
{
    return (xenforeignmemory_handle *)dummy_handle;
}

int xenforeignmemory_close(xenforeignmemory_handle *fmem)
{
    return 0;
}

/* Only with -xen-domid-restrict; harmless safety net. */
int xenforeignmemory_restrict(xenforeignmemory_handle *fmem, domid_t domid)
{
    return 0;
}

/* xen_init(): opened unconditionally (ioreq servers of HVM guests). */
xendevicemodel_handle *xendevicemodel_open(xentoollog_logger *logger,
                                           unsigned open_flags)
{
    return (xendevicemodel_handle *)dummy_handle;
}

int xendevicemodel_close(xendevicemodel_handle *dmod)
{
    return 0;
}

int xendevicemodel_restrict(xendevicemodel_handle *dmod, domid_t domid)
{
    return 0;
}
