/*
 * test-backing-terms.c - xbd_backing_keep_terms(): how a resumed device
 * keeps the sector size and flush its connected frontend was told, for
 * every kind of store and both ways of opening it (the daemon test
 * tests/daemon/resume-terms.sh covers the reopenings end to end).  And
 * the capacity offered in whole logical blocks, at open, when serving a
 * larger sector size and at a re-read of the size (xbd_backing_size); the
 * daemon test tests/daemon/loopdev.sh serves such a file.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/* A store of 8 MiB and 1536 bytes: 16387 512-byte sectors, 2048 whole
 * 4096-byte blocks and three sectors of a 2049th. */
#define PARTIAL_BYTES ((8u << 20) + 1536u)

static void whole_blocks(void)
{
    char path[] = "/tmp/test-backing-terms.XXXXXX";
    struct xbd_backing b;
    struct xbd_backing_opts o = { .direct = true };
    uint64_t sectors = 0;
    char why[320];
    int fd;

    CHECK_EQ(xbd_backing_whole_blocks(PARTIAL_BYTES, 512), 16387);
    CHECK_EQ(xbd_backing_whole_blocks(PARTIAL_BYTES, 4096), 16384);
    CHECK_EQ(xbd_backing_whole_blocks(4095, 4096), 0);
    CHECK_EQ(xbd_backing_whole_blocks(8192, 4096), 16);

    /* Told 4096 on a store that takes 512: the capacity too is in whole
     * 4096-byte blocks (the frontend addresses every block inside it). */
    b = store(false, false, 512, true);
    b.sectors = 16387;
    CHECK_EQ(keep(&b, 4096, 1, &o, why), 0);
    CHECK_EQ(b.sector_size, 4096);
    CHECK_EQ(b.sectors, 16384);

    /* A re-read of the size (SIGHUP) rounds as the open did. */
    fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    unlink(path);
    CHECK_EQ(ftruncate(fd, PARTIAL_BYTES), 0);
    b.fd = fd;
    CHECK_EQ(xbd_backing_size(&b, &sectors), 0);
    CHECK_EQ(sectors, 16384);
    CHECK_EQ(sectors % 8, 0);
    b.sector_size = 512;
    CHECK_EQ(xbd_backing_size(&b, &sectors), 0);
    CHECK_EQ(sectors, 16387);
    close(fd);
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

    whole_blocks();
    return check_result("test-backing-terms");
}
