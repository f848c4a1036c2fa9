/*
 * aio_reap.h - take completed events of a libaio context straight from the
 * completion ring the kernel shares with us, without io_getevents(2).
 */
#ifndef XENBLKD_AIO_REAP_H
#define XENBLKD_AIO_REAP_H

#include <libaio.h>

/* Up to max events of ctx into evs: how many (0: none ready), or -1 when
 * this kernel's ring is not one we know (then use io_getevents).  Only one
 * consumer may reap a context: the engine that owns it. */
int xbd_aio_reap(io_context_t ctx, struct io_event *evs, int max);

#endif
