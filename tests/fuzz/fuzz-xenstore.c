/*
 * fuzz-xenstore.c - every parser of a value the guest writes in its
 * frontend directory (src/xenstore_parse.c): the whole connect-time
 * parse (protocol, feature-persistent, multi-queue-num-queues,
 * ring-page-order, ring-ref / ring-refN, event-channel, per queue), and
 * each value alone through xbd_parse_uint (also the frontend's "state"),
 * xbd_parse_linux_flag (feature-persistent) and xbd_fe_parse_protocol.
 *
 * Input: 3 bytes of what the backend offered, then the frontend's
 * directory as "key=value" records separated by '\n' (the first record
 * of a key wins; keys of queues are "queue-N/ring-ref0"...).
 *   [0] max-ring-page-order (% 5)   [1] max queues (1 + % 64)
 *   [2] bit 0: persistent grants enabled
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "xenblkd/device.h"
#include "xenblkd/xenbus.h"
#include "xenstore_parse.h"

struct kv {
    char *key, *value;
};

struct dir {
    struct kv *kv;
    size_t n;
    unsigned reads;
};

/* The reader device.c passes reads xenstore; this one the records. */
static char *dir_read(void *opaque, const char *rel)
{
    struct dir *d = opaque;

    d->reads++;
    for (size_t i = 0; i < d->n; i++)
        if (!strcmp(d->kv[i].key, rel))
            return strdup(d->kv[i].value);
    return NULL;
}

static bool printable_ascii(const char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e)
            return false;
    return true;
}

/* xbd_parse_uint against strtoull: strict decimal, no sign, no blanks,
 * nothing above max. */
static void check_uint(const char *v, unsigned long max)
{
    unsigned long out = 0;
    bool digits = *v != '\0';
    int rc = xbd_parse_uint(v, max, &out);

    for (const char *p = v; *p; p++)
        if (*p < '0' || *p > '9')
            digits = false;
    if (rc == 0) {
        xbd_fuzz_assert(digits);
        xbd_fuzz_assert(out <= max);
        xbd_fuzz_assert(strtoull(v, NULL, 10) == out);
    } else if (digits) {
        errno = 0;
        unsigned long long full = strtoull(v, NULL, 10);
        xbd_fuzz_assert(errno == ERANGE || full > max);
    }
}

static void check_value(const char *v)
{
    enum xbd_protocol p;
    char buf[40];

    check_uint(v, 1);
    check_uint(v, XBD_XB_RECONFIGURED);       /* frontend state */
    check_uint(v, XBD_MAX_RING_ORDER);
    check_uint(v, UINT32_MAX);
    check_uint(v, ~0UL);
    /* feature-persistent: a plain number is true exactly when not 0. */
    unsigned long u;
    bool flag = xbd_parse_linux_flag(v);
    if (xbd_parse_uint(v, UINT32_MAX, &u) == 0)
        xbd_fuzz_assert(flag == (u != 0));
    if (xbd_fe_parse_protocol(v, &p) == 0)
        xbd_fuzz_assert(p == XBD_PROTO_NATIVE || p == XBD_PROTO_X86_32 ||
                        p == XBD_PROTO_X86_64);
    xbd_fuzz_assert(printable_ascii(xbd_printable(v, buf, sizeof(buf))));
    xbd_fuzz_assert(strlen(buf) < sizeof(buf));
}

static void check_parse(struct dir *d, const struct xbd_fe_limits *lim)
{
    struct xbd_fe_info fi;
    char why[256] = "";

    if (xbd_fe_parse(dir_read, d, lim, &fi, why, sizeof(why)) < 0) {
        xbd_fuzz_assert(fi.queues == NULL);
        xbd_fuzz_assert(why[0] != '\0');
        xbd_fuzz_assert(printable_ascii(why));
        return;
    }
    xbd_fuzz_assert(fi.nr_queues >= 1 && fi.nr_queues <= lim->max_queues);
    xbd_fuzz_assert(fi.queues != NULL);
    xbd_fuzz_assert(!fi.persistent || lim->persistent_ok);
    /* Bounded work: a few reads per queue and ring page, whatever the
     * guest wrote. */
    xbd_fuzz_assert(d->reads <= 4 + fi.nr_queues * (2 * XBD_MAX_RING_PAGES + 1));
    for (unsigned q = 0; q < fi.nr_queues; q++) {
        xbd_fuzz_assert(fi.queues[q].order <= lim->max_ring_order);
        xbd_fuzz_assert(fi.queues[q].order == fi.queues[0].order);
        xbd_fuzz_assert(fi.queues[q].port != 0);
    }
    free(fi.queues);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct xbd_fuzz_in in = { data, size };
    struct xbd_fe_limits lim;
    struct dir d = { 0 };
    char *text, *p;

    lim.max_ring_order = (unsigned)(xbd_fuzz_take(&in, 1) % (XBD_MAX_RING_ORDER + 1));
    lim.max_queues = 1 + (unsigned)(xbd_fuzz_take(&in, 1) % XBD_MAX_QUEUES);
    lim.persistent_ok = xbd_fuzz_take(&in, 1) & 1;

    /* A xenstore value is a C string to the daemon (xs_read's result is
     * NUL-terminated and used as such): a NUL ends it. */
    text = malloc(in.left + 1);
    d.kv = calloc(in.left / 2 + 1, sizeof(*d.kv));
    if (!text || !d.kv)
        abort();
    memcpy(text, in.p, in.left);
    text[in.left] = '\0';
    for (p = text; *p;) {
        char *nl = strchr(p, '\n'), *eq;

        if (nl)
            *nl = '\0';
        eq = strchr(p, '=');
        if (eq) {
            *eq = '\0';
            d.kv[d.n].key = p;
            d.kv[d.n].value = eq + 1;
            check_value(eq + 1);
            d.n++;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    check_value("");
    check_parse(&d, &lim);
    free(d.kv);
    free(text);
    return 0;
}
