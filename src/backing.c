/*
 * backing.c - open a disk's backing store and learn its geometry.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "xenblkd/backing.h"
#include "xenblkd/log.h"

#include "dio_align.h"

/* Prefixes of raw images; everything else with a "word:" prefix is an
 * image format or transport we do not serve. */
static const char *const raw_prefixes[] = { "aio:", "file:", "phy:", "raw:" };

const char *xbd_params_path(const char *params, char *err, size_t errlen)
{
    const char *path = params;

    for (size_t i = 0; i < sizeof(raw_prefixes) / sizeof(raw_prefixes[0]); i++) {
        size_t n = strlen(raw_prefixes[i]);
        if (!strncmp(params, raw_prefixes[i], n)) {
            path = params + n;
            break;
        }
    }
    if (path == params && params[0] != '/') {
        const char *colon = strchr(params, ':');
        if (colon && colon != params)
            snprintf(err, errlen, "unsupported disk format '%.*s' in params "
                     "(xenblkd serves raw files and block devices)",
                     (int)(colon - params > 16 ? 16 : colon - params), params);
        else
            snprintf(err, errlen, "params '%.64s' is not an absolute path", params);
        return NULL;
    }
    if (path[0] != '/') {
        snprintf(err, errlen, "params '%.64s' is not an absolute path", params);
        return NULL;
    }
    return path;
}

char *xbd_blockdev_path(const char *majmin)
{
    char buf[64], path[96], line[160];
    char *colon, *end;
    unsigned long maj, min;
    char *result = NULL;
    FILE *f;

    snprintf(buf, sizeof(buf), "%s", majmin);
    colon = strchr(buf, ':');
    if (!colon || colon == buf || !colon[1])
        return NULL;
    *colon = '\0';
    errno = 0;
    maj = strtoul(buf, &end, 16);
    if (errno || *end || maj > 0xfff)
        return NULL;
    min = strtoul(colon + 1, &end, 16);
    if (errno || *end || min > 0xfffff)
        return NULL;
    /* The kernel names the device in its uevent; /dev/block/M:m symlinks
     * only exist where udev runs. */
    snprintf(path, sizeof(path), "/sys/dev/block/%lu:%lu/uevent", maj, min);
    f = fopen(path, "re");
    if (!f)
        return NULL;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "DEVNAME=", 8)) {
            line[strcspn(line, "\n")] = '\0';
            if (line[8] && !strstr(line + 8, "..") && asprintf(&result, "/dev/%s", line + 8) < 0)
                result = NULL;
            break;
        }
    }
    fclose(f);
    return result;
}

/* Filesystems where O_DIRECT on grant-mapped pages is unsafe unless the
 * toolstack says otherwise (blkif.h "direct-io-safe"): they may touch a
 * page again after the I/O completed, by then maybe unmapped. */
static bool on_network_fs(int fd)
{
    struct statfs sfs;

    if (fstatfs(fd, &sfs) < 0)
        return false;
    switch ((unsigned long)sfs.f_type) {
    case NFS_SUPER_MAGIC:
    case SMB_SUPER_MAGIC:
    case 0xFF534D42UL:      /* CIFS */
    case 0xFE534D42UL:      /* SMB2 */
    case 0x00C36400UL:      /* ceph */
    case 0x65735546UL:      /* fuse */
    case 0x01021997UL:      /* 9p */
    case AFS_SUPER_MAGIC:
        return true;
    default:
        return false;
    }
}

/* Read the first line of a block device's sysfs attribute ATTR (a path
 * under /sys/dev/block/MAJ:MIN/), its newline dropped.  False if it cannot
 * be read: the caller keeps its safe default. */
static bool read_sysfs_line(dev_t rdev, const char *attr, char *buf, size_t n)
{
    char path[160];
    FILE *f;
    bool ok;

    snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/%s", major(rdev), minor(rdev), attr);
    f = fopen(path, "re");
    if (!f)
        return false;
    ok = fgets(buf, (int)n, f) != NULL;
    fclose(f);
    if (ok)
        buf[strcspn(buf, "\n")] = '\0';
    return ok;
}

static int parse_ulong(const char *buf, unsigned long *out)
{
    char *end;

    errno = 0;
    *out = strtoul(buf, &end, 10);
    return errno || end == buf ? -1 : 0;
}

static int read_sysfs_ulong(dev_t rdev, const char *attr, unsigned long *out)
{
    char buf[64];

    return read_sysfs_line(rdev, attr, buf, sizeof(buf)) ? parse_ulong(buf, out) : -1;
}

/* A partition (sda1, nvme0n1p2, loop0p1) has no request queue of its own
 * in sysfs: it uses its disk's, which is its parent directory there, as
 * Linux blkback's bdev_get_queue() gives the disk's queue for a partition.
 * Only a partition has a "partition" attribute. */
static bool blockdev_is_partition(dev_t rdev)
{
    char buf[16];

    return read_sysfs_line(rdev, "partition", buf, sizeof(buf));
}

/* Read the queue limit NAME (queue/NAME) of the device, or of its disk
 * for a partition. */
static bool read_queue_line(dev_t rdev, const char *name, char *buf, size_t n)
{
    char attr[64];

    snprintf(attr, sizeof(attr), "%squeue/%s", blockdev_is_partition(rdev) ? "../" : "", name);
    return read_sysfs_line(rdev, attr, buf, n);
}

static int read_queue_ulong(dev_t rdev, const char *name, unsigned long *out)
{
    char buf[64];

    return read_queue_line(rdev, name, buf, sizeof(buf)) ? parse_ulong(buf, out) : -1;
}

static bool blockdev_write_cache(dev_t rdev)
{
    char buf[32];

    if (!read_queue_line(rdev, "write_cache", buf, sizeof(buf)))
        return true;    /* unknown: flushing is then merely redundant */
    return strcmp(buf, "write through") != 0;
}

static bool probe_ioctl(int fd, unsigned long req, uint64_t bytes)
{
    uint64_t range[2] = { bytes & ~511ULL, 0 };

    return ioctl(fd, req, range) == 0 || errno == EINVAL;
}

static int probe_blockdev(struct xbd_backing *b, const struct stat *st, bool want_discard,
                          char *err, size_t errlen)
{
    uint64_t bytes;
    int lss = 512;
    unsigned pss = 512;

    if (ioctl(b->fd, BLKGETSIZE64, &bytes) < 0) {
        snprintf(err, errlen, "BLKGETSIZE64: %s", strerror(errno));
        return -1;
    }
    if (ioctl(b->fd, BLKSSZGET, &lss) < 0)
        lss = 512;
    if (ioctl(b->fd, BLKPBSZGET, &pss) < 0)
        pss = (unsigned)lss;
    if (lss != 512 && lss != 4096) {
        snprintf(err, errlen, "unsupported logical sector size %d", lss);
        return -1;
    }
    b->sectors = xbd_backing_whole_blocks(bytes, (uint32_t)lss);
    b->sector_size = (uint32_t)lss;
    b->physical_sector_size = pss < (unsigned)lss ? (uint32_t)lss : pss;
    b->flush = blockdev_write_cache(st->st_rdev);
    if (want_discard && !b->readonly) {
        /* A zero-length discard at the end of the device discards nothing
         * but tells whether the device supports the operation: the kernel
         * checks support (EOPNOTSUPP) before the range, which it may
         * refuse for being empty (EINVAL). */
        b->discard = probe_ioctl(b->fd, BLKDISCARD, bytes);
        if (b->discard)
            b->discard_secure = probe_ioctl(b->fd, BLKSECDISCARD, bytes);
    }
    return 0;
}

/* The physical sector a file presents: its filesystem's block.  A write
 * of less than a block costs the store a read-modify-write (page cache)
 * or, with O_DIRECT on ext4, is serialised against every other O_DIRECT
 * I/O of the file and zeroes the rest of the block in a hole.  Guests that
 * size their writes by the physical sector (blkfront makes it the queue's
 * minimum I/O: XFS's sector size, databases, partitioning tools) then
 * write whole blocks.  At most 4096, a page: NFS reports its transfer
 * size (up to 1 MiB), and blkfront wants a power of two. */
static uint32_t file_physical_sector(uint32_t sector_size, const struct stat *st)
{
    uint32_t pss = sector_size;

    while (pss < 4096 && pss * 2 <= (uint64_t)st->st_blksize)
        pss *= 2;
    return pss;
}

/* The sector size a file presents: 512 (the page cache takes any
 * alignment), except with O_DIRECT on a filesystem that needs more, e.g.
 * one over a disk with 4096-byte logical sectors, where 512-byte I/O fails
 * with EINVAL.  We then advertise 4096, as Linux blkback advertises its
 * device's logical block size: blkfront honours sector-size and sends only
 * whole blocks, and the rings refuse anything misaligned with
 * BLKIF_RSP_ERROR before it reaches the file (request.c).  Any other
 * granularity cannot be expressed in blkif (512 or 4096 here): buffered
 * I/O instead, which takes any alignment. */
static void file_sector_size(struct xbd_backing *b, const struct stat *st, const char *path)
{
    unsigned align = b->direct ? xbd_dio_align(b->fd, major(st->st_dev), minor(st->st_dev)) : 512;

    if (align > 4096) {
        int fl = fcntl(b->fd, F_GETFL);
        if (fl >= 0 && fcntl(b->fd, F_SETFL, fl & ~O_DIRECT) == 0) {
            xbd_info("%s: O_DIRECT needs %u-byte alignment here, more than a 4096-byte "
                     "sector: not using O_DIRECT", path, align);
            b->direct = false;
            align = 512;
        } else {
            align = 4096;       /* the rings refuse less; the file may still refuse */
        }
    }
    b->sector_size = align > 512 ? 4096 : 512;
    b->physical_sector_size = file_physical_sector(b->sector_size, st);
}

static void probe_file(struct xbd_backing *b, const struct stat *st, bool want_discard,
                       const char *path)
{
    file_sector_size(b, st, path);
    b->sectors = xbd_backing_whole_blocks((uint64_t)st->st_size, b->sector_size);
    b->flush = true;
    if (want_discard && !b->readonly) {
        /* Punching a hole past EOF changes nothing but fails with
         * EOPNOTSUPP where the filesystem cannot punch holes. */
        off_t past = ((st->st_size + 65535) & ~(off_t)65535) + 65536;
        b->discard = fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                               past, 4096) == 0;
    }
}

uint64_t xbd_backing_whole_blocks(uint64_t bytes, uint32_t sector_size)
{
    uint64_t block = sector_size > 512 ? sector_size : 512;

    return bytes / block * (block / 512);
}

int xbd_backing_size(const struct xbd_backing *b, uint64_t *sectors)
{
    struct stat st;
    uint64_t bytes;

    if (b->is_blockdev) {
        if (ioctl(b->fd, BLKGETSIZE64, &bytes) < 0)
            return -1;
    } else {
        if (fstat(b->fd, &st) < 0)
            return -1;
        bytes = (uint64_t)st.st_size;
    }
    *sectors = xbd_backing_whole_blocks(bytes, b->sector_size);
    return 0;
}

int xbd_backing_open(struct xbd_backing *b, const char *path,
                     const struct xbd_backing_opts *o, char *err, size_t errlen)
{
    struct stat st;
    int flags = (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (o->dsync ? O_DSYNC : 0);

    memset(b, 0, sizeof(*b));
    b->fd = -1;
    b->readonly = o->readonly;
    /* Open without O_DIRECT first: it tells us what the path is, and
     * O_DIRECT is then added only where it is both wanted and safe. */
    b->fd = open(path, flags);
    if (b->fd < 0) {
        snprintf(err, errlen, "cannot open %.256s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(b->fd, &st) < 0) {
        snprintf(err, errlen, "cannot stat %.256s: %s", path, strerror(errno));
        goto fail;
    }
    b->is_blockdev = S_ISBLK(st.st_mode);
    if (!b->is_blockdev && !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%.256s is neither a regular file nor a block device", path);
        goto fail;
    }
    if (o->direct) {
        if (on_network_fs(b->fd) && !o->direct_io_safe) {
            xbd_info("%s: on a network filesystem and direct-io-safe is not set: "
                     "not using O_DIRECT", path);
        } else {
            int fl = fcntl(b->fd, F_GETFL);
            if (fl < 0 || fcntl(b->fd, F_SETFL, fl | O_DIRECT) < 0) {
                snprintf(err, errlen, "%.256s does not support O_DIRECT (%s); set "
                         "direct-io = no in xenblkd.conf or run xenblkd with --no-direct-io",
                         path, strerror(errno));
                goto fail;
            }
            b->direct = true;
        }
    }
    if (b->is_blockdev) {
        if (probe_blockdev(b, &st, o->discard, err, errlen) < 0)
            goto fail;
    } else {
        probe_file(b, &st, o->discard, path);
    }
    if (!b->direct) {
        /* Without O_DIRECT every write lands in dom0's page cache first,
         * a volatile write cache whatever the device's own setting: the
         * guest must be offered a flush (fdatasync) or a host crash loses
         * writes it was told had completed. */
        b->flush = true;
    }
    if (o->dsync)
        b->flush = false;   /* every write reaches stable storage before it completes */
    return 0;
fail:
    close(b->fd);
    b->fd = -1;
    return -1;
}

int xbd_backing_keep_terms(struct xbd_backing *b, const struct xbd_backing_terms *t,
                           struct xbd_backing_opts *o, char *why, size_t n)
{
    bool flush = b->flush, reopen = false;
    int len = 0;

    why[0] = '\0';
    if (t->sector_size && b->sector_size > t->sector_size) {
        /* Only O_DIRECT on a file raises its sector size (file_sector_size):
         * through the page cache it takes any alignment.  A block device's
         * own logical sector size cannot be lowered. */
        if (b->is_blockdev || !b->direct) {
            snprintf(why, n, "its sector size is now %u, the frontend was told %u",
                     b->sector_size, t->sector_size);
            return -1;
        }
        o->direct = false;
        flush = true;           /* the page cache is a volatile cache */
        reopen = true;
        len = snprintf(why, n, "O_DIRECT needs %u-byte sectors here, the frontend was told "
                       "%u: without O_DIRECT", b->sector_size, t->sector_size);
        if (len < 0 || (size_t)len >= n)
            len = (int)n - 1;
    }
    if (t->flush == 0 && flush && !o->dsync) {
        /* The frontend never flushes: each write must be durable when
         * it completes, as it was under the terms it was given. */
        o->dsync = true;
        reopen = true;
        snprintf(why + len, n - (size_t)len, "%sthe frontend was told there is no write "
                 "cache to flush: with O_DSYNC", len ? "; " : "");
    }
    if (reopen)
        return 1;
    if (t->sector_size > b->sector_size) {
        /* Whole larger sectors are still whole sectors of ours. */
        len = snprintf(why, n, "serving %u-byte sectors as the frontend was told (the store "
                       "takes %u)", t->sector_size, b->sector_size);
        if (len < 0 || (size_t)len >= n)
            len = (int)n - 1;
        b->sector_size = t->sector_size;
        b->sectors = xbd_backing_whole_blocks(b->sectors * 512u, b->sector_size);
        if (b->physical_sector_size < b->sector_size)
            b->physical_sector_size = b->sector_size;
    }
    if (t->flush == 1 && !b->flush) {
        snprintf(why + len, n - (size_t)len, "%soffering flush as the frontend was told "
                 "(nothing to flush here)", len ? "; " : "");
        b->flush = true;
    }
    return 0;
}

void xbd_backing_close(struct xbd_backing *b)
{
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
}

/* The device's discard granularity: its queue's (its disk's, for a
 * partition), as Linux blkback's bdev_discard_granularity(); the sector
 * size where that cannot be read or makes no sense. */
static unsigned blockdev_discard_granularity(dev_t rdev, uint32_t sector_size)
{
    unsigned long g;

    if (read_queue_ulong(rdev, "discard_granularity", &g) == 0 &&
        g >= sector_size && g <= (1UL << 30))
        return (unsigned)g;
    return sector_size;
}

/* Where the device's first whole discard granule starts, in bytes from its
 * start, as Linux blkback's bdev_discard_alignment(), which is also what
 * sysfs shows as discard_alignment (for disks and partitions alike): for
 * a partition whose start is not a multiple of its disk's granularity,
 * the distance to the next multiple.  blkfront makes it its queue's
 * discard_alignment, so that the guest's discards cover whole granules of
 * the disk.  0 (granules taken to start where the device starts) unless
 * it is a whole number of 512-byte sectors below the granularity
 * published. */
static unsigned blockdev_discard_alignment(dev_t rdev, unsigned granularity)
{
    unsigned long a;

    if (read_sysfs_ulong(rdev, "discard_alignment", &a) == 0 && a < granularity && a % 512 == 0)
        return (unsigned)a;
    return 0;
}

void xbd_backing_discard_limits(const struct xbd_backing *b, unsigned *granularity,
                                unsigned *alignment)
{
    struct stat st;

    *granularity = b->sector_size;
    *alignment = 0;
    if (b->fd < 0 || fstat(b->fd, &st) < 0)
        return;
    if (b->is_blockdev) {
        *granularity = blockdev_discard_granularity(st.st_rdev, b->sector_size);
        *alignment = blockdev_discard_alignment(st.st_rdev, *granularity);
        return;
    }
    /* Holes can only be punched in whole filesystem blocks, counted from
     * the start of the file. */
    if (st.st_blksize >= 512 && st.st_blksize <= (1 << 20))
        *granularity = (unsigned)st.st_blksize;
    else
        *granularity = 4096;
}
