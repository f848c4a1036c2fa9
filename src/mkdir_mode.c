/*
 * mkdir_mode.c - create a directory with exactly the mode asked for (see
 * mkdir_mode.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mkdir_mode.h"

int xbd_mkdir_mode(const char *dir, mode_t mode)
{
    int fd, rc, err;

    if (mkdir(dir, mode) < 0)
        return errno == EEXIST ? 0 : -1;
    /* The directory we just made, not whatever a symlink swapped in for
     * it meanwhile points to. */
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = fchmod(fd, mode);
    err = errno;
    close(fd);
    errno = err;
    return rc < 0 ? -1 : 1;
}
