/*
 * sim-guest.c - shared by the simulated guest programs (see sim-guest.h).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim-guest.h"

#include <xen/io/blkif.h>

void sg_die(const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, strerror(errno));
    exit(1);
}

void sg_write_file(const char *path, const char *text)
{
    char tmp[4096];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f || fputs(text, f) == EOF || fclose(f) == EOF)
        sg_die(tmp);
    if (rename(tmp, path) < 0)
        sg_die(path);
}

void sg_ring_offer(xsg_dom *d, domid_t backend, struct sg_ring *r)
{
    for (unsigned i = 0; i < (1u << r->order); i++) {
        if (xsg_page_alloc(d, &r->gfn[i]) < 0)
            sg_die("page_alloc");
        memset(xsg_page(d, r->gfn[i]), 0, XSG_PAGE_SIZE);
        if (xsg_grant(d, backend, r->gfn[i], false, &r->ref[i]) < 0)
            sg_die("grant");
    }
    /* Only the first page holds the indexes. */
    SHARED_RING_INIT((blkif_sring_t *)xsg_page(d, r->gfn[0]));
    if (xsg_evtchn_alloc_unbound(d, backend, &r->port) < 0)
        sg_die("evtchn_alloc_unbound");
}

static void append(char *text, size_t size, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void append(char *text, size_t size, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = *len < size ? vsnprintf(text + *len, size - *len, fmt, ap) : -1;
    va_end(ap);
    if (n < 0 || (size_t)n >= size - *len) {
        errno = ENOSPC;
        sg_die("ring description");
    }
    *len += (size_t)n;
}

void sg_ring_describe(const struct sg_ring *r, unsigned queue, char *text,
                      size_t size, size_t *len)
{
    append(text, size, len, "%u %u %u", queue, r->order, r->port);
    for (unsigned p = 0; p < (1u << r->order); p++)
        append(text, size, len, " %u", r->ref[p]);
    append(text, size, len, "\n");
}
