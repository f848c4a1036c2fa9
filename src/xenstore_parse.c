/*
 * xenstore_parse.c - parsing of the values a frontend (the guest) writes
 * in its xenstore directory, apart from the reads themselves (device.c
 * passes a reader; tests/fuzz/fuzz-xenstore.c passes the fuzzer's input).
 *
 * The rules are Linux blkback's connect_ring(): ring-page-order once at
 * the top of the directory, ring-ref (one page) or ring-ref0..N-1, one
 * event-channel per queue, queue-N/ subdirectories with several queues.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xen/io/protocols.h>

#include "xenblkd/xenbus.h"
#include "xenstore_parse.h"

int xbd_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;

    if (!*s)
        goto bad;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            goto bad;
        unsigned d = (unsigned)(*p - '0');
        /* v * 10 + d <= max, without overflowing (d may exceed max). */
        if (d > max || v > (max - d) / 10)
            goto bad;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
bad:
    errno = EINVAL;
    return -1;
}

bool xbd_parse_linux_flag(const char *s)
{
    uint32_t v = 0;

    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    /* Wrap like the kernel's simple_strtoull() truncated to unsigned int. */
    for (; *s >= '0' && *s <= '9'; s++)
        v = v * 10u + (uint32_t)(*s - '0');
    return v != 0;
}

const char *xbd_printable(const char *s, char *buf, size_t n)
{
    size_t i = 0;

    for (; s && *s && i + 1 < n; s++)
        buf[i++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    buf[i] = '\0';
    return buf;
}

struct fe_reader {
    xbd_fe_read_fn *read;
    void *opaque;
};

/* dir ("" or "queue-N") and key as one relative name. */
static void key_name(const char *dir, const char *key, char *buf, size_t n)
{
    snprintf(buf, n, "%.40s%s%s", dir, *dir ? "/" : "", key);
}

/* Read dir/key as a number <= max.  1 present, 0 absent (and !required),
 * -1 invalid with the reason in why. */
static int fe_uint(const struct fe_reader *rd, const char *dir, const char *key,
                   unsigned long max, bool required, unsigned long *out,
                   char *why, size_t n)
{
    char pbuf[40], kbuf[80];
    char *v;

    key_name(dir, key, kbuf, sizeof(kbuf));
    v = rd->read(rd->opaque, kbuf);
    if (!v) {
        if (!required)
            return 0;
        snprintf(why, n, "%s is missing", kbuf);
        return -1;
    }
    if (xbd_parse_uint(v, max, out) < 0) {
        snprintf(why, n, "%s = '%s' is not a number in 0..%lu", kbuf,
                 xbd_printable(v, pbuf, sizeof(pbuf)), max);
        free(v);
        return -1;
    }
    free(v);
    return 1;
}

/* A feature flag the frontend offers: parsed as Linux blkback parses it
 * (any number but 0 is true, anything else is absent: xenbus.h), so that
 * "2" or garbage never costs the guest its disk. */
static bool fe_flag(const struct fe_reader *rd, const char *key)
{
    char *v = rd->read(rd->opaque, key);
    bool on = v && xbd_parse_linux_flag(v);

    free(v);
    return on;
}

/* The ring order is per device, not per queue: Linux blkfront writes
 * ring-page-order once at the top of its directory and blkback's
 * connect_ring reads it from there, whatever the number of queues. */
static int read_ring_order(const struct fe_reader *rd, unsigned max_order, bool *multi_ref,
                           unsigned *order, char *why, size_t n)
{
    unsigned long v;
    int rc = fe_uint(rd, "", "ring-page-order", max_order, false, &v, why, n);

    if (rc < 0)
        return -1;
    *multi_ref = rc == 1;
    *order = rc == 1 ? (unsigned)v : 0;
    return 0;
}

/* One queue's ring-ref* and event-channel, from dir: the frontend
 * directory itself ("") with one queue, its queue-N/ otherwise. */
static int read_queue(const struct fe_reader *rd, const char *dir, bool multi_ref,
                      unsigned order, struct xbd_fe_queue *q, char *why, size_t n)
{
    unsigned long v;
    char key[24];

    q->order = order;
    for (unsigned i = 0; i < (1u << q->order); i++) {
        if (!multi_ref) {
            /* No ring-page-order: the single-page "ring-ref". */
            snprintf(key, sizeof(key), "ring-ref");
        } else {
            snprintf(key, sizeof(key), "ring-ref%u", i);
        }
        int r = fe_uint(rd, dir, key, UINT32_MAX, true, &v, why, n);
        if (r < 0 && multi_ref && q->order == 0) {
            /* ring-page-order = 0 with a plain "ring-ref" is tolerated. */
            r = fe_uint(rd, dir, "ring-ref", UINT32_MAX, true, &v, why, n);
        }
        if (r < 0)
            return -1;
        q->refs[i] = (grant_ref_t)v;
    }
    if (fe_uint(rd, dir, "event-channel", UINT32_MAX, true, &v, why, n) < 0)
        return -1;
    if (v == 0) {
        char kbuf[80];
        key_name(dir, "event-channel", kbuf, sizeof(kbuf));
        snprintf(why, n, "%s = 0 is not a valid port", kbuf);
        return -1;
    }
    q->port = (evtchn_port_t)v;
    return 0;
}

int xbd_fe_parse_protocol(const char *v, enum xbd_protocol *proto)
{
    if (!v) {
#if defined(__i386__) || defined(__x86_64__)
        /* As Linux blkback and QEMU: no protocol on x86 means the 32-bit
         * layout (old 32-bit guests never wrote the key). */
        *proto = XBD_PROTO_X86_32;
#else
        *proto = XBD_PROTO_NATIVE;
#endif
        return 0;
    }
    if (!strcmp(v, XEN_IO_PROTO_ABI_X86_32))
        *proto = XBD_PROTO_X86_32;
    else if (!strcmp(v, XEN_IO_PROTO_ABI_X86_64))
        *proto = XBD_PROTO_X86_64;
    else if (!strcmp(v, XEN_IO_PROTO_ABI_NATIVE))
        *proto = XBD_PROTO_NATIVE;
    else
        return -1;
    return 0;
}

static int read_protocol(const struct fe_reader *rd, enum xbd_protocol *proto,
                         char *why, size_t n)
{
    char *v = rd->read(rd->opaque, "protocol");
    char pbuf[40];
    int rc = xbd_fe_parse_protocol(v, proto);

    if (rc < 0)
        snprintf(why, n, "unknown protocol '%s'", xbd_printable(v, pbuf, sizeof(pbuf)));
    free(v);
    return rc;
}

int xbd_fe_parse(xbd_fe_read_fn *read, void *opaque, const struct xbd_fe_limits *lim,
                 struct xbd_fe_info *fi, char *why, size_t n)
{
    const struct fe_reader rd = { read, opaque };
    unsigned long v;
    char dir[24];
    bool multi_ref;
    unsigned order;
    int rc;

    memset(fi, 0, sizeof(*fi));
    if (read_protocol(&rd, &fi->protocol, why, n) < 0)
        return -1;
    fi->persistent = fe_flag(&rd, "feature-persistent") && lim->persistent_ok;
    rc = fe_uint(&rd, "", "multi-queue-num-queues", UINT32_MAX, false, &v, why, n);
    if (rc < 0)
        return -1;
    fi->nr_queues = rc ? (unsigned)v : 1;
    if (fi->nr_queues == 0 || fi->nr_queues > lim->max_queues) {
        snprintf(why, n, "multi-queue-num-queues = %lu, we offer 1..%u", v,
                 lim->max_queues);
        return -1;
    }
    if (read_ring_order(&rd, lim->max_ring_order, &multi_ref, &order, why, n) < 0)
        return -1;
    fi->queues = calloc(fi->nr_queues, sizeof(*fi->queues));
    if (!fi->queues) {
        snprintf(why, n, "out of memory");
        return -1;
    }
    for (unsigned q = 0; q < fi->nr_queues; q++) {
        if (fi->nr_queues == 1)
            dir[0] = '\0';
        else
            snprintf(dir, sizeof(dir), "queue-%u", q);
        if (read_queue(&rd, dir, multi_ref, order, &fi->queues[q], why, n) < 0) {
            free(fi->queues);
            fi->queues = NULL;
            return -1;
        }
    }
    return 0;
}
