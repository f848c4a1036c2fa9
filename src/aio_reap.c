/*
 * aio_reap.c - see aio_reap.h.
 *
 * An aio context is the address of a ring the kernel maps into the
 * process (Linux fs/aio.c, struct aio_ring): a header, then nr io_events.
 * The kernel appends at tail and advances it after the event is written;
 * the consumer reads from head and advances head, which the kernel reads
 * back to know how much room it has.  io_getevents(2) does the same in
 * the kernel; doing it here saves a system call per completion batch (as
 * fio's userspace_reap does).  A ring with another magic or with
 * incompatible features is left to io_getevents.
 */
#include "config.h"

#include <stdint.h>

#include "aio_reap.h"

#define AIO_RING_MAGIC 0xa10a10a1u

struct aio_ring_hdr {           /* layout of Linux's struct aio_ring */
    unsigned id;
    unsigned nr;                /* events in the ring */
    unsigned head;              /* next to consume (we write it) */
    unsigned tail;              /* next the kernel fills */
    unsigned magic;
    unsigned compat_features;
    unsigned incompat_features;
    unsigned header_length;     /* size of this header */
    struct io_event io_events[];
};

int xbd_aio_reap(io_context_t ctx, struct io_event *evs, int max)
{
    struct aio_ring_hdr *ring = (struct aio_ring_hdr *)(void *)ctx;
    unsigned head, tail, nr;
    int n = 0;

    if (!ring || ring->magic != AIO_RING_MAGIC || ring->incompat_features != 0 ||
        ring->header_length != sizeof(*ring) || ring->nr == 0)
        return -1;
    nr = ring->nr;
    head = ring->head;
    /* The events up to tail are complete once tail is seen. */
    tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
    if (head >= nr || tail >= nr)
        return -1;              /* not a state the kernel leaves: let it say */
    while (head != tail && n < max) {
        evs[n++] = ring->io_events[head];
        head = head + 1 == nr ? 0 : head + 1;
    }
    /* The slots are free for the kernel only after they were copied. */
    __atomic_store_n(&ring->head, head, __ATOMIC_RELEASE);
    return n;
}
