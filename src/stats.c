/*
 * stats.c - xentop's view of a vbd3 disk.
 *
 * The layout is tapdisk3's (version 1, little-endian, at least 96 bytes):
 * libxenstat reads it whenever xentop refreshes, so the counters are
 * updated in place in a shared mapping, never rewritten through a file
 * descriptor (no fd stays open for it either).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
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

/* True if path is a directory only this daemon's user can change: not a
 * symbolic link, owned by us, writable by nobody else.  /dev/shm is
 * world-writable (sticky), so anyone may create td3-<pid> before we do;
 * a file of theirs that we mapped could be truncated under us (SIGBUS,
 * the daemon and every guest's disk with it) and xentop would show what
 * they wrote.  Once the directory is ours, nobody else can add, replace
 * or remove its entries, nor the entry of the directory itself (sticky
 * bit), so the paths below it are safe to use. */
static bool shm_dir_ours(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
           !(st.st_mode & (S_IWGRP | S_IWOTH));
}

/* Remove what someone else put at path: a file or link, or a directory
 * of plain entries (a subdirectory makes this fail). */
static int shm_remove_foreign(const char *path)
{
    struct dirent *e;
    DIR *d;
    int fd, rc = 0;

    if (unlink(path) == 0 || errno == ENOENT)
        return 0;
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || !(d = fdopendir(fd))) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            unlinkat(dirfd(d), e->d_name, 0) < 0 && errno != ENOENT)
            rc = -1;
    closedir(d);
    return rc < 0 ? -1 : rmdir(path);
}

/* Make dir (td3-<pid>) exist and be ours; false (logged) if that fails. */
static bool shm_dir_ready(const char *dir)
{
    for (int tries = 0; tries < 3; tries++) {
        if (mkdir(dir, 0700) == 0)
            return true;
        if (errno != EEXIST) {
            xbd_warn("cannot create %s: %s (disk not shown by xentop)", dir, strerror(errno));
            return false;
        }
        if (shm_dir_ours(dir))
            return true;    /* another disk's, or a killed daemon's of our pid */
        xbd_warn("%s was made by another user (or is not a private directory): removing it",
                 dir);
        if (shm_remove_foreign(dir) < 0) {
            xbd_warn("cannot remove %s: %s (disk not shown by xentop)", dir, strerror(errno));
            return false;
        }
    }
    xbd_warn("%s keeps being recreated by another user (disk not shown by xentop)", dir);
    return false;
}

struct xbd_shm_stats *xbd_shm_stats_open(unsigned domid, unsigned devid)
{
    struct xbd_shm_stats *s = calloc(1, sizeof(*s));
    int fd;
    void *p;

    if (!s)
        return NULL;
    snprintf(s->dir, sizeof(s->dir), XBD_SHM_DIR "/td3-%ld", (long)getpid());
    snprintf(s->path, sizeof(s->path), "%s/vbd-%u-%u", s->dir, domid, devid);
    if (!shm_dir_ready(s->dir)) {
        free(s);
        return NULL;
    }
    /* A file left by a killed daemon of the same pid: ours, but start
     * afresh rather than map whatever size it has. */
    if (unlink(s->path) < 0 && errno != ENOENT)
        xbd_warn("cannot remove the stale %s: %s", s->path, strerror(errno));
    fd = open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
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
