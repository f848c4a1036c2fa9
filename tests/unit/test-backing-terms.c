/*
 * test-backing-terms.c - xbd_backing_keep_terms(): how a resumed device
 * keeps the sector size and flush its connected frontend was told, for
 * every kind of store and both ways of opening it (the daemon test
 * tests/daemon/resume-terms.sh covers the reopenings end to end).
 */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include "check.h"
#include "xenblkd/backing.h"

/* A store as xbd_backing_open leaves it. */
static struct xbd_backing store(bool blockdev, bool direct, unsigned ss, bool flush)
{
    return (struct xbd_backing){ .fd = -1, .sectors = 2048, .sector_size = ss,
                                 .physical_sector_size = ss, .is_blockdev = blockdev,
                                 .direct = direct, .flush = flush };
}

static int keep(struct xbd_backing *b, unsigned told_ss, int told_flush,
                struct xbd_backing_opts *o, char *why)
{
    const struct xbd_backing_terms t = { told_ss, told_flush };

    why[0] = 'x';
    return xbd_backing_keep_terms(b, &t, o, why, 320);
}

int main(void)
{
    char why[320];
    struct xbd_backing b;
    struct xbd_backing_opts o;

    /* Same terms, or none known: nothing changes, nothing said. */
    b = store(false, true, 512, true);
    o = (struct xbd_backing_opts){ .direct = true };
    CHECK_EQ(keep(&b, 512, 1, &o, why), 0);
    CHECK(!why[0] && o.direct && !o.dsync && b.sector_size == 512 && b.flush);
    CHECK_EQ(keep(&b, 0, -1, &o, why), 0);
    CHECK(!why[0]);

    /* A file whose O_DIRECT needs 4096, told 512: open it without. */
    b = store(false, true, 4096, true);
    o = (struct xbd_backing_opts){ .direct = true };
    CHECK_EQ(keep(&b, 512, 1, &o, why), 1);
    CHECK(!o.direct && !o.dsync && strstr(why, "without O_DIRECT"));
    /* ... and told no flush too (not something we publish for a file,
     * but the page cache then needs O_DSYNC): both, in one reopening. */
    b = store(false, true, 4096, false);
    o = (struct xbd_backing_opts){ .direct = true };
    CHECK_EQ(keep(&b, 512, 0, &o, why), 1);
    CHECK(!o.direct && o.dsync && strstr(why, "without O_DIRECT") && strstr(why, "O_DSYNC"));

    /* A block device whose own sector size grew, or a file without
     * O_DIRECT that still has larger sectors: nothing keeps 512. */
    b = store(true, true, 4096, false);
    o = (struct xbd_backing_opts){ .direct = true };
    CHECK_EQ(keep(&b, 512, 0, &o, why), -1);
    CHECK(strstr(why, "now 4096") && o.direct && !o.dsync);
    b = store(false, false, 4096, true);
    o = (struct xbd_backing_opts){ 0 };
    CHECK_EQ(keep(&b, 512, 1, &o, why), -1);

    /* Told no flush, the store now has a volatile cache (buffered, or a
     * device switched to write back): O_DSYNC, the rest as configured. */
    b = store(true, false, 512, true);
    o = (struct xbd_backing_opts){ .direct = false };
    CHECK_EQ(keep(&b, 512, 0, &o, why), 1);
    CHECK(o.dsync && !o.direct && strstr(why, "O_DSYNC"));
    /* Opened so, nothing more to do. */
    b = store(true, false, 512, false);
    CHECK_EQ(keep(&b, 512, 0, &o, why), 0);
    CHECK(!why[0] && !b.flush);

    /* Told 4096, the store takes 512: serve 4096 (whole larger sectors). */
    b = store(true, true, 512, false);
    o = (struct xbd_backing_opts){ .direct = true };
    CHECK_EQ(keep(&b, 4096, 0, &o, why), 0);
    CHECK(b.sector_size == 4096 && b.physical_sector_size == 4096 && !b.flush);
    CHECK(strstr(why, "serving 4096-byte sectors") != NULL);

    /* Told flush, nothing to flush now: keep offering it (fdatasync). */
    b = store(true, true, 512, false);
    CHECK_EQ(keep(&b, 512, 1, &o, why), 0);
    CHECK(b.flush && strstr(why, "offering flush"));
    return check_result("test-backing-terms");
}
