/*
 * nbd_sweep.c - at start-up, remove the NBD sockets (nbd_server.h's path
 * rule) of disks that this instance will not serve: a daemon killed
 * without its handover (SIGKILL, a crash, the host's power) leaves its
 * sockets behind, and a disk removed before the next start would keep a
 * path that refuses connections forever.
 *
 * Only this instance uses the state directory (main.c holds its lock),
 * and no export of ours is open yet: every socket here is a
 * predecessor's, with nobody listening.  Those of disks that do exist
 * are left for their export to replace (its path never changes).  When
 * xenstore cannot say whether a disk exists, its socket is removed all
 * the same: nobody listens on it, it holds no state, and the export of a
 * disk that does exist makes it again (listen_on replaces any socket at
 * its path); kept, a removed disk's dead path would stay.  Only
 * entries that are sockets themselves (never through a symlink) and
 * carry exactly a name the rule produces are touched: whatever else an
 * administrator put there is not ours.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "xenblkd/log.h"

#include "nbd_server.h"

/* Split NAME into the parts of "<kind>-<domid>-<devid>.sock" as
 * xbd_nbd_socket_path writes it: false for any other name (leading
 * zeros, signs, blanks or a kind outside [a-z0-9] included). */
static bool parse_socket_name(const char *name, char kind[32], unsigned *domid,
                              unsigned *devid)
{
    char again[NAME_MAX + 1], tail;

    if (strlen(name) > NAME_MAX ||
        sscanf(name, "%31[a-z0-9]-%u-%u.sock%c", kind, domid, devid, &tail) != 3)
        return false;
    /* sscanf is lenient with numbers: the name must be the canonical one. */
    snprintf(again, sizeof(again), "%s-%u-%u.sock", kind, *domid, *devid);
    return strcmp(again, name) == 0;
}

void xbd_nbd_sweep(const char *state_dir, xbd_nbd_keep_fn *keep, void *opaque)
{
    char dir[512], kind[32];
    unsigned domid, devid;
    int exists, why;
    struct dirent *e;
    struct stat st;
    DIR *d;
    int dfd;

    snprintf(dir, sizeof(dir), "%s/" XBD_NBD_SUBDIR, state_dir);
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        if (errno != ENOENT)
            xbd_warn("cannot look for stale NBD sockets in %s: %s", dir, strerror(errno));
        return;
    }
    d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    while ((e = readdir(d))) {
        if (!parse_socket_name(e->d_name, kind, &domid, &devid))
            continue;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISSOCK(st.st_mode))
            continue;
        exists = keep(opaque, kind, domid, devid);
        if (exists > 0)
            continue;
        why = errno;
        if (unlinkat(dfd, e->d_name, 0) < 0)
            xbd_warn("cannot remove the stale NBD socket %s/%s: %s", dir, e->d_name,
                     strerror(errno));
        else if (exists < 0)
            xbd_warn("removed the stale NBD socket %s/%s: cannot tell whether %s device "
                     "%u/%u still exists (%s), its export makes it again if it does", dir,
                     e->d_name, kind, domid, devid, strerror(why));
        else
            xbd_info("removed the stale NBD socket %s/%s (no %s device %u/%u to serve)", dir,
                     e->d_name, kind, domid, devid);
    }
    closedir(d);
}
