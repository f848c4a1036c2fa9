/*
 * log_limit.c - token buckets in front of the log (see log_limit.h).
 *
 * All on the one loop: no locks.  Time is CLOCK_MONOTONIC, so that a
 * clock step neither floods nor silences the log.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log_limit.h"

#define XBD_LOG_FLUSH_INTERVAL 1.0   /* s */

static unsigned lim_rate = XBD_DEFAULT_LOG_RATE, lim_burst = XBD_DEFAULT_LOG_BURST;
static struct xbd_log_bucket host_bucket = { .name = "host" };
static struct xbd_log_bucket *buckets;
static struct ev_loop *flush_loop;
static ev_timer flush_w;

static double mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void xbd_log_limit_configure(unsigned rate, unsigned burst)
{
    lim_rate = rate;
    lim_burst = burst ? burst : 1;
}

uint64_t xbd_log_limit_suppressed(void)
{
    return host_bucket.suppressed;
}

static void refill(struct xbd_log_bucket *b, double now, double rate, double burst)
{
    if (b->stamp == 0) {
        b->tokens = burst;
    } else if (now > b->stamp) {
        b->tokens += (now - b->stamp) * rate;
    }
    if (b->tokens > burst)
        b->tokens = burst;
    b->stamp = now;
}

/*
 * One token from b and from the host bucket, or none (then counted as a
 * suppressed line if count).  Fairness: one guest with many disks can
 * empty the host bucket on its own, and would then silence every other
 * guest, down to the one line that says why its disk stopped.  So a
 * quiet disk (no line tried for XBD_LOG_QUIET_S) gets its next line
 * without the host bucket.  A flooding disk is never quiet (refused lines
 * count as tries), so this adds at most one line per disk per
 * XBD_LOG_QUIET_S to the host-wide cap.
 */
static bool take_ex(struct xbd_log_bucket *b, bool count)
{
    double now = mono();
    double f = XBD_LOG_HOST_FACTOR;
    bool quiet;

    if (!lim_rate)
        return true;
    quiet = b->last_try == 0 || now - b->last_try >= XBD_LOG_QUIET_S;
    b->last_try = now;
    refill(b, now, lim_rate, lim_burst);
    refill(&host_bucket, now, lim_rate * f, lim_burst * f);
    if (b->tokens < 1 || (host_bucket.tokens < 1 && !quiet)) {
        if (!count)
            return false;
        b->pending++;
        b->suppressed++;
        host_bucket.suppressed++;
        return false;
    }
    b->tokens--;
    if (host_bucket.tokens >= 1)
        host_bucket.tokens--;
    return true;
}

static bool take(struct xbd_log_bucket *b)
{
    return take_ex(b, true);
}

static void report(struct xbd_log_bucket *b)
{
    uint64_t n = b->pending;

    b->pending = 0;
    xbd_log(XBD_LOG_WARN, "%s: suppressed %" PRIu64 " message%s (log rate limit: %u lines/s, "
            "bursts of %u)", b->name, n, n == 1 ? "" : "s", lim_rate, lim_burst);
}

static void flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    /* The report itself costs a token: a flood gets one report line per
     * second at most. */
    for (struct xbd_log_bucket *b = buckets; b; b = b->next)
        if (b->pending && take_ex(b, false))
            report(b);
}

void xbd_log_limit_start(struct ev_loop *loop)
{
    flush_loop = loop;
    ev_timer_init(&flush_w, flush_cb, XBD_LOG_FLUSH_INTERVAL, XBD_LOG_FLUSH_INTERVAL);
    ev_timer_start(loop, &flush_w);
    ev_unref(loop);             /* not a reason to keep the loop running */
}

void xbd_log_limit_stop(void)
{
    if (!flush_loop)
        return;
    ev_ref(flush_loop);
    ev_timer_stop(flush_loop, &flush_w);
    flush_loop = NULL;
}

void xbd_log_bucket_init(struct xbd_log_bucket *b, const char *name)
{
    memset(b, 0, sizeof(*b));
    snprintf(b->name, sizeof(b->name), "%s", name);
    b->next = buckets;
    if (buckets)
        buckets->prev = b;
    buckets = b;
    b->registered = true;
}

void xbd_log_bucket_fini(struct xbd_log_bucket *b)
{
    if (!b->registered)
        return;
    if (b->pending)
        report(b);
    if (b->prev)
        b->prev->next = b->next;
    else
        buckets = b->next;
    if (b->next)
        b->next->prev = b->prev;
    b->registered = false;
}

static void vlogb(struct xbd_log_bucket *b, enum xbd_log_level level, bool force,
                  const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
static void vlogb(struct xbd_log_bucket *b, enum xbd_log_level level, bool force,
                  const char *fmt, va_list ap)
{
    if (!xbd_log_enabled(level))
        return;
    if (b && !force && !take(b))
        return;
    if (b && b->pending)
        report(b);
    xbd_vlog(level, fmt, ap);
}

void xbd_logb(struct xbd_log_bucket *b, enum xbd_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlogb(b, level, false, fmt, ap);
    va_end(ap);
}

static void logb_force(struct xbd_log_bucket *b, enum xbd_log_level level, bool force,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void logb_force(struct xbd_log_bucket *b, enum xbd_log_level level, bool force,
                       const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlogb(b, level, force, fmt, ap);
    va_end(ap);
}

/* FNV-1a: tells one reason from the next, nothing more. */
static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h ? h : 1;
}

void xbd_logb_first(struct xbd_log_bucket *b, enum xbd_log_level level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    bool force = false;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (b) {
        uint32_t h = hash(line);
        double now = mono();

        force = h != b->first_hash &&
                (b->last_forced == 0 || now - b->last_forced >= XBD_LOG_QUIET_S);
        if (force)
            b->last_forced = now;
        b->first_hash = h;
    }
    logb_force(b, level, force, "%s", line);
}
