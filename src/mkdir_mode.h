/*
 * mkdir_mode.h - create a directory with exactly the mode asked for.
 *
 * mkdir() applies the process's umask, and the systemd unit runs the
 * daemon with UMask=0077: a directory documented as 0755 (the control
 * socket's, the state directory) would come out 0700 and keep the
 * control group away from the socket.
 */
#ifndef XENBLKD_MKDIR_MODE_H
#define XENBLKD_MKDIR_MODE_H

#include <sys/types.h>

/* Create DIR with MODE, whatever the umask.  A directory that already
 * exists is the administrator's (or a previous instance's) and is left as
 * it is.  Returns 1 if created, 0 if it existed, -1 with errno set. */
int xbd_mkdir_mode(const char *dir, mode_t mode);

#endif
