/*
 * dio_align.c - the alignment O_DIRECT needs on a regular file.
 *
 * A file opened with O_DIRECT inherits the constraints of the device under
 * its filesystem: on a filesystem over a disk with 4096-byte logical
 * sectors (a "4Kn" disk), reads and writes at a 512-byte offset or length
 * fail with EINVAL.  The guest must then be told the true granularity
 * (sector-size), as Linux blkback tells it the logical block size of its
 * device, so that its legal I/O never reaches the file misaligned.
 *
 * Only <linux/stat.h> here: glibc before 2.37 (Debian 12) has no
 * statx dio fields, and the kernel's struct statx cannot share a file with
 * glibc's <sys/stat.h>.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/stat.h>

#include "dio_align.h"

/* What the filesystem itself reports (Linux 6.1 and later); 0 if nothing. */
static unsigned statx_dio_align(int fd)
{
#if defined(SYS_statx) && defined(STATX_DIOALIGN)
    struct statx stx;

    memset(&stx, 0, sizeof(stx));
    if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) != 0 ||
        !(stx.stx_mask & STATX_DIOALIGN) || stx.stx_dio_offset_align == 0)
        return 0;
    /* The buffers must be aligned too; ours are page-aligned, but a
     * segment's data starts at a multiple of the sector size in its page. */
    return stx.stx_dio_offset_align > stx.stx_dio_mem_align ? stx.stx_dio_offset_align
                                                            : stx.stx_dio_mem_align;
#else
    (void)fd;
    return 0;
#endif
}

static unsigned read_lbs(const char *dir)
{
    char path[160];
    unsigned v = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/queue/logical_block_size", dir);
    f = fopen(path, "re");
    if (!f)
        return 0;
    if (fscanf(f, "%u", &v) != 1)
        v = 0;
    fclose(f);
    return v;
}

/* Older kernels: the logical block size of the filesystem's device (of
 * the whole disk for a partition, which has no queue of its own). */
static unsigned sysfs_dio_align(unsigned maj, unsigned min)
{
    char dir[96];
    unsigned v;

    snprintf(dir, sizeof(dir), "/sys/dev/block/%u:%u", maj, min);
    v = read_lbs(dir);
    if (!v) {
        snprintf(dir, sizeof(dir), "/sys/dev/block/%u:%u/..", maj, min);
        v = read_lbs(dir);
    }
    return v;
}

unsigned xbd_dio_align(int fd, unsigned dev_major, unsigned dev_minor)
{
    unsigned a = statx_dio_align(fd);

    if (!a && dev_major)
        a = sysfs_dio_align(dev_major, dev_minor);
    return a < 512 ? 512 : a;
}
