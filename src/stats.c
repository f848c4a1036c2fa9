/*
 * stats.c - xentop's view of a vbd3 disk.
 *
 * The layout is tapdisk3's (version 1, little-endian, at least 96 bytes):
 * libxenstat reads it whenever xentop refreshes, so the counters are
 * updated in place in a shared mapping, never rewritten through a file
 * descriptor (no fd stays open for it either).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xenblkd/log.h"
#include "xenblkd/stats.h"

#define XBD_SHM_DIR "/dev/shm"
#define XBD_SHM_SIZE 4096

/* tapdisk3's struct, field for field. */
struct td3_vbd_stats {
    uint32_t version;
    uint32_t pad;
    uint64_t oo_reqs;
    uint64_t read_reqs_submitted;
    uint64_t read_reqs_completed;
    uint64_t read_sectors;
    uint64_t read_total_ticks;
    uint64_t write_reqs_submitted;
    uint64_t write_reqs_completed;
    uint64_t write_sectors;
    uint64_t write_total_ticks;
    uint64_t io_errors;
    uint64_t flags;
};
_Static_assert(sizeof(struct td3_vbd_stats) == 96, "xentop expects 96 bytes");

struct xbd_shm_stats {
    char dir[64];
    char path[96];
    volatile struct td3_vbd_stats *map;
};

struct xbd_shm_stats *xbd_shm_stats_open(unsigned domid, unsigned devid)
{
    struct xbd_shm_stats *s = calloc(1, sizeof(*s));
    int fd;
    void *p;

    if (!s)
        return NULL;
    snprintf(s->dir, sizeof(s->dir), XBD_SHM_DIR "/td3-%ld", (long)getpid());
    snprintf(s->path, sizeof(s->path), "%s/vbd-%u-%u", s->dir, domid, devid);
    if (mkdir(s->dir, 0700) < 0 && errno != EEXIST) {
        xbd_warn("cannot create %s: %s (disk not shown by xentop)", s->dir, strerror(errno));
        goto fail;
    }
    fd = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        xbd_warn("cannot create %s: %s (disk not shown by xentop)", s->path, strerror(errno));
        goto fail;
    }
    if (ftruncate(fd, XBD_SHM_SIZE) < 0) {
        xbd_warn("cannot size %s: %s", s->path, strerror(errno));
        close(fd);
        goto fail_unlink;
    }
    p = mmap(NULL, XBD_SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        xbd_warn("cannot map %s: %s", s->path, strerror(errno));
        goto fail_unlink;
    }
    s->map = p;
    s->map->version = 1;
    return s;
fail_unlink:
    unlink(s->path);
fail:
    rmdir(s->dir);
    free(s);
    return NULL;
}

void xbd_shm_stats_update(struct xbd_shm_stats *s, const struct xbd_disk_stats *d)
{
    if (!s)
        return;
    s->map->oo_reqs = d->oo_reqs;
    s->map->read_reqs_submitted = d->rd_req;
    s->map->read_reqs_completed = d->rd_req;
    s->map->read_sectors = d->rd_sect;
    s->map->write_reqs_submitted = d->wr_req;
    s->map->write_reqs_completed = d->wr_req;
    s->map->write_sectors = d->wr_sect;
    s->map->io_errors = d->io_errors;
}

void xbd_shm_stats_close(struct xbd_shm_stats *s)
{
    if (!s)
        return;
    munmap((void *)s->map, XBD_SHM_SIZE);
    unlink(s->path);
    rmdir(s->dir);      /* fails harmlessly while other disks remain */
    free(s);
}
