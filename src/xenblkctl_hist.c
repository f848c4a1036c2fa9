/*
 * xenblkctl_hist.c - latency histograms: mean and percentiles.
 *
 * The daemon counts, per ring and operation, each request's latency L in
 * whole microseconds in log2 buckets (include/xenblkd/dataplane.h):
 * bucket 0 holds L = 0, bucket i holds 2^(i-1) <= L < 2^i, the last one
 * everything above.  So bucket i holds exactly the requests faster than
 * 2^i us, which is also its Prometheus "le" bound.
 *
 * A percentile is estimated the way Prometheus' histogram_quantile() does
 * it: find the bucket that holds the q-th request, and interpolate
 * linearly between the bucket's bounds by the request's rank inside it.
 * The true value lies in that bucket, so the estimate is off by at most
 * the bucket's width (a factor of two); reporting the bucket's upper bound
 * instead would always overstate, by up to 2x.  In the open-ended last
 * bucket the lower bound is reported.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "xenblkctl.h"

double xbc_hist_upper_us(const struct xbc_hist *h, unsigned i)
{
    if (i + 1 >= h->n)
        return INFINITY;
    return ldexp(1.0, (int)i);
}

double xbc_hist_lower_us(const struct xbc_hist *h, unsigned i)
{
    (void)h;
    return i == 0 ? 0.0 : ldexp(1.0, (int)i - 1);
}

bool xbc_hist_from_json(json_object *o, struct xbc_hist *h)
{
    json_object *b = xbc_get(o, "buckets");
    size_t n;

    memset(h, 0, sizeof(*h));
    if (!b || !json_object_is_type(b, json_type_array))
        return false;
    n = json_object_array_length(b);
    if (n < 2 || n > XBC_HIST_MAX)
        return false;
    h->n = (unsigned)n;
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(b, i);
        h->count[i] = c ? (uint64_t)json_object_get_uint64(c) : 0;
        h->total += h->count[i];
    }
    h->sum_us = xbc_u64(o, "sum_us");
    return true;
}

void xbc_hist_sub(struct xbc_hist *out, const struct xbc_hist *b, const struct xbc_hist *a)
{
    /* A ring that reconnected between the samples starts from zero: then
     * the later sample is the difference. */
    bool reset = b->total < a->total || b->n != a->n;

    *out = *b;
    if (reset)
        return;
    out->total = 0;
    for (unsigned i = 0; i < b->n; i++) {
        out->count[i] = b->count[i] >= a->count[i] ? b->count[i] - a->count[i] : 0;
        out->total += out->count[i];
    }
    out->sum_us = b->sum_us >= a->sum_us ? b->sum_us - a->sum_us : 0;
}

void xbc_hist_add(struct xbc_hist *acc, const struct xbc_hist *h)
{
    if (acc->n < h->n)
        acc->n = h->n;
    for (unsigned i = 0; i < h->n; i++)
        acc->count[i] += h->count[i];
    acc->total += h->total;
    acc->sum_us += h->sum_us;
}

double xbc_hist_mean_us(const struct xbc_hist *h)
{
    return h->total ? (double)h->sum_us / (double)h->total : NAN;
}

double xbc_hist_quantile_us(const struct xbc_hist *h, double q)
{
    double rank, below = 0, lo, hi;
    unsigned i;

    if (h->total == 0)
        return NAN;
    rank = q * (double)h->total;
    for (i = 0; i < h->n; i++) {
        if (h->count[i] && below + (double)h->count[i] >= rank)
            break;
        below += (double)h->count[i];
    }
    if (i == h->n)
        i = h->n - 1;
    lo = xbc_hist_lower_us(h, i);
    hi = xbc_hist_upper_us(h, i);
    if (isinf(hi))
        return lo;
    return lo + (hi - lo) * (rank - below) / (double)h->count[i];
}
