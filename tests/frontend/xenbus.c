/*
 * xenbus.c - the frontend's xenstore side: reading keys strictly, writing
 * our state, and waiting for the backend's state with a timeout.
 *
 * Waits never count watch events: every wake-up re-reads the state, so
 * skipped or coalesced states are tolerated (as Linux xenbus does).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xen/io/xenbus.h>

#include "bf_internal.h"

uint64_t bf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *bf_state_name(int s)
{
    static const char *const names[] = {
        "Unknown", "Initialising", "InitWait", "Initialised", "Connected",
        "Closing", "Closed", "Reconfiguring", "Reconfigured",
    };
    if (s == -1)
        return "absent";
    if (s >= 0 && s < (int)(sizeof(names) / sizeof(names[0])))
        return names[s];
    return "invalid";
}

char *bf_xs_read(bf_host *h, const char *dir, const char *key)
{
    char path[512];
    unsigned len;
    snprintf(path, sizeof(path), "%s/%s", dir, key);
    return xs_read(h->xs, XBT_NULL, path, &len);
}

/* Parse a decimal unsigned value, nothing else allowed. */
static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* State of a xenbus directory: -1 when the node is absent, -2 when it holds
 * something that is not a state number. */
int bf_xs_read_state(bf_host *h, const char *dir)
{
    char *v = bf_xs_read(h, dir, "state");
    uint64_t s;
    int rc;
    if (!v)
        return -1;
    rc = parse_u64(v, &s) == 0 && s <= 8 ? (int)s : -2;
    free(v);
    return rc;
}

int bf_xs_read_uint(bf_disk *d, const char *dir, const char *key, uint64_t dflt,
                    uint64_t *out, bool *present)
{
    char *v = bf_xs_read(d->h, dir, key);
    if (present)
        *present = v != NULL;
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (parse_u64(v, out) < 0) {
        bf_disk_error(d, "%s/%s: expected an unsigned decimal number, found '%s'", dir, key, v);
        free(v);
        return -1;
    }
    free(v);
    return 0;
}

int bf_xs_write_state(bf_disk *d, int state)
{
    char path[256], val[8];
    snprintf(path, sizeof(path), "%s/state", d->fe_path);
    snprintf(val, sizeof(val), "%d", state);
    if (!xs_write(d->h->xs, XBT_NULL, path, val, strlen(val))) {
        bf_disk_error(d, "cannot write %s=%s: %s", path, val, strerror(errno));
        return -1;
    }
    bf_disk_log(d, 1, "frontend state -> %s", bf_state_name(state));
    return 0;
}

/* Consume queued watch events: we only use them as wake-ups. */
void bf_xs_drain_watches(bf_host *h)
{
    char **w;
    while ((w = xs_check_watch(h->xs)) != NULL)
        free(w);
}

static char *mask_names(unsigned mask, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int s = -1; s <= 8; s++) {
        if (!(mask & (1u << (s + 1))))
            continue;
        off += (size_t)snprintf(buf + off, off < len ? len - off : 0, "%s%s",
                                off ? "|" : "", bf_state_name(s));
    }
    return buf;
}

/*
 * Wait until the backend's state is in accept_mask (bit s+1 for state s, so
 * bit 0 is "absent").  A state in fail_mask ends the wait with an error that
 * says what we waited for and what the backend did instead.  Returns the
 * state reached, or -3 on failure.
 */
int bf_xs_wait_backend(bf_disk *d, unsigned accept_mask, unsigned fail_mask, const char *what)
{
    uint64_t deadline = bf_now_ms() + d->cfg.timeout_ms;
    int st = -1;
    char a[128];

    for (;;) {
        st = bf_xs_read_state(d->h, d->be_path);
        if (st >= -1 && (accept_mask & (1u << (st + 1))))
            return st;
        if (st == -2) {
            char *v = bf_xs_read(d->h, d->be_path, "state");
            bf_disk_error(d, "%s/state: expected a xenbus state number, found '%s'", d->be_path, v ? v : "");
            free(v);
            return -3;
        }
        if (fail_mask & (1u << (st + 1))) {
            bf_disk_error(d, "while waiting for %s: expected backend state %s, backend went to %s (%d)",
                          what, mask_names(accept_mask, a, sizeof(a)), bf_state_name(st), st);
            return -3;
        }
        uint64_t now = bf_now_ms();
        if (bf_interrupted) {
            bf_disk_error(d, "interrupted while waiting for %s", what);
            return -3;
        }
        if (now >= deadline) {
            bf_disk_error(d, "timed out after %.1fs waiting for %s: expected %s/state in %s, last seen %s (%d)",
                          d->cfg.timeout_ms / 1000.0, what, d->be_path,
                          mask_names(accept_mask, a, sizeof(a)), bf_state_name(st), st);
            return -3;
        }
        /* Watches wake us; the cap only bounds the cost of a lost one. */
        uint64_t left = deadline - now;
        struct pollfd p = { .fd = xs_fileno(d->h->xs), .events = POLLIN };
        if (poll(&p, 1, left > 200 ? 200 : (int)left) > 0)
            bf_xs_drain_watches(d->h);
    }
}
