/*
 * test-log-limit.c - the host-wide log bucket is fair (review finding):
 * a guest with 10 disks (12 here: more than enough) flooding the log used to empty it on its own, and
 * then another guest's first line, the reason its disk stopped, was
 * suppressed although that guest had logged nothing.  A quiet disk's
 * line now gets through; the flooding disks stay capped and a second
 * line of the quiet disk, right after, is suppressed again (the host cap
 * still holds).  And a disk whose reasons for being refused change at
 * every attempt gets one of them forced past the buckets, not all.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "log_limit.h"

int main(void)
{
    static struct xbd_log_bucket flood[12], quiet, alt;
    FILE *out = tmpfile();
    unsigned i, k, flooded;
    int saved = dup(2);

    CHECK(out != NULL);
    fflush(stderr);
    dup2(fileno(out), 2);
    xbd_log_init(true, XBD_LOG_DEBUG);
    xbd_log_limit_configure(XBD_DEFAULT_LOG_RATE, XBD_DEFAULT_LOG_BURST);

    for (i = 0; i < 12; i++) {
        char name[32];

        snprintf(name, sizeof(name), "vbd3-5-%u", 51712 + i);
        xbd_log_bucket_init(&flood[i], name);
    }
    xbd_log_bucket_init(&quiet, "vbd3-6-51712");
    /* Guest 5: 12 disks x 400 bad requests, as fast as it can. */
    for (k = 0; k < 400; k++)
        for (i = 0; i < 12; i++)
            xbd_logb(&flood[i], XBD_LOG_WARN, "vbd3-5-%u: cannot map grant %u: EFAULT",
                     51712 + i, k);
    /* Guest 6 breaks its ring once, then again at once. */
    xbd_logb(&quiet, XBD_LOG_ERR, "vbd3-6-51712: first reason");
    xbd_logb(&quiet, XBD_LOG_ERR, "vbd3-6-51712: second reason");
    /* Guest 7 empties its own bucket, then is refused 100 times with
     * reasons that differ each time (its own ring-ref values in them):
     * the first is forced through, the rest wait for the buckets. */
    xbd_log_bucket_init(&alt, "vbd3-7-51712");
    for (k = 0; k < 2 * XBD_DEFAULT_LOG_BURST; k++)
        xbd_logb(&alt, XBD_LOG_WARN, "vbd3-7-51712: filler %u", k);
    for (k = 0; k < 100; k++)
        xbd_logb_first(&alt, XBD_LOG_ERR, "vbd3-7-51712: refusing to connect: ring-ref = '%u'", k);
    for (i = 0; i < 12; i++)
        xbd_log_bucket_fini(&flood[i]);
    xbd_log_bucket_fini(&quiet);
    xbd_log_bucket_fini(&alt);
    fflush(stderr);
    dup2(saved, 2);

    flooded = count_lines(out, "cannot map grant");
    printf("guest 5 got %u of its 4800 lines logged; the host bucket suppressed %llu\n",
           flooded, (unsigned long long)xbd_log_limit_suppressed());
    CHECK_EQ(count_lines(out, "vbd3-6-51712: first reason"), 1);
    CHECK_EQ(count_lines(out, "vbd3-6-51712: second reason"), 0);
    CHECK_EQ(count_lines(out, "vbd3-7-51712: refusing to connect"), 1);
    /* The host bucket: burst of 10 x 200 lines, plus what refills while
     * this runs (200/s). */
    CHECK(flooded >= XBD_LOG_HOST_FACTOR * XBD_DEFAULT_LOG_BURST);
    CHECK(flooded < XBD_LOG_HOST_FACTOR * XBD_DEFAULT_LOG_BURST + 200);
    return check_result("test-log-limit");
}
