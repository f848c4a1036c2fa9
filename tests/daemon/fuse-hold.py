#!/usr/bin/python3
# fuse-hold.py - a FUSE filesystem for the restart tests: one file, the
# image, stored in a real file, through which a test can hold a chosen
# write in flight for as long as it wants (storage that is slow exactly
# when the test needs it).
#
#   fuse-hold.py MOUNTPOINT IMAGE HOLD_OFFSET CONTROL_DIR [IMAGE2...]
#
# The tests put a loop device on MOUNTPOINT/disk.img: the daemon's I/O
# then waits in the loop driver, not inside io_submit() (a FUSE file
# itself would block the daemon's io_submit, as buffered aio does).
# MOUNTPOINT/disk.img is IMAGE (disk2.img IMAGE2, ...).  While CONTROL_DIR/hold exists, a write at
# byte offset HOLD_OFFSET is held: the server creates CONTROL_DIR/held (its
# content: the offset) and waits until CONTROL_DIR/hold is removed, then
# performs the write and creates CONTROL_DIR/released.  CONTROL_DIR/
# held-count holds the number of writes held at the moment (a test
# holding several loop devices puts each on an image of its own: writes
# to one FUSE file wait for each other in the kernel).  Mounted with
# direct_io (every read and write reaches this server) and served by
# several threads, so other requests go on meanwhile.  Runs in the
# foreground until unmounted or killed.
#
# Failing storage (tests/faults): while CONTROL_DIR/eio-read (or
# eio-write) exists, each of its lines "OFFSET LENGTH" (bytes) is a range
# where reads (writes) fail with EIO: a request overlapping one fails
# whole and changes nothing.  Each failure appends "read|write OFFSET
# SIZE" to CONTROL_DIR/eio-log.  Remove the file to lift the fault.  A
# held write is checked when it is released, not when it arrives: it
# fails if its range is listed by then (storage that hangs, then fails).
# HOLD_OFFSET -1 holds nothing.
import errno
import os
import stat
import sys
import threading
import time

import fusepy


class Hold(fusepy.Operations):
    def __init__(self, images, hold_offset, control):
        self.hold_offset = hold_offset
        self.control = control
        self.fds = {}
        for i, image in enumerate(images):
            name = "disk.img" if i == 0 else "disk%d.img" % (i + 1)
            self.fds["/" + name] = os.open(image, os.O_RDWR)
        self.lock = threading.Lock()
        self.nheld = 0

    def _fd(self, path):
        if path not in self.fds:
            raise fusepy.FuseOSError(errno.ENOENT)
        return self.fds[path]

    def getattr(self, path, fh=None):
        if path == "/":
            return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2}
        st = os.fstat(self._fd(path))
        return {"st_mode": stat.S_IFREG | 0o600, "st_nlink": 1, "st_size": st.st_size,
                "st_mtime": st.st_mtime, "st_ctime": st.st_ctime, "st_atime": st.st_atime}

    def readdir(self, path, fh):
        return [".", ".."] + [p[1:] for p in self.fds]

    def open(self, path, flags):
        self._fd(path)
        return 0

    def _fail_if_listed(self, kind, offset, size):
        try:
            with open(os.path.join(self.control, "eio-" + kind)) as f:
                ranges = [tuple(int(x) for x in line.split()) for line in f if line.strip()]
        except FileNotFoundError:
            return
        for start, length in ranges:
            if offset < start + length and start < offset + size:
                with open(os.path.join(self.control, "eio-log"), "a") as log:
                    log.write("%s %d %d\n" % (kind, offset, size))
                raise fusepy.FuseOSError(errno.EIO)

    def read(self, path, size, offset, fh):
        self._fail_if_listed("read", offset, size)
        return os.pread(self._fd(path), size, offset)

    def _note(self, name, text):
        tmp = os.path.join(self.control, "." + name)
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, os.path.join(self.control, name))

    def _count(self, delta, event, offset):
        # One writer of the control files at a time: concurrent holds
        # would race on the temporary names.
        with self.lock:
            self.nheld += delta
            self._note("held-count", "%d\n" % self.nheld)
            self._note(event, "%d\n" % offset)

    def write(self, path, data, offset, fh):
        hold = os.path.join(self.control, "hold")
        if offset == self.hold_offset and os.path.exists(hold):
            self._count(+1, "held", offset)
            # A helper waiting for the test's decision, not a test waiting
            # for time to pass.
            while os.path.exists(hold):
                time.sleep(0.02)
            try:
                # The fault as it stands at the release: storage that
                # hangs, then fails (a test lists the range meanwhile).
                self._fail_if_listed("write", offset, len(data))
                return os.pwrite(self._fd(path), data, offset)
            finally:
                self._count(-1, "released", offset)
        self._fail_if_listed("write", offset, len(data))
        return os.pwrite(self._fd(path), data, offset)

    def truncate(self, path, length, fh=None):
        os.ftruncate(self._fd(path), length)

    def fsync(self, path, datasync, fh):
        os.fdatasync(self._fd(path))
        return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        return 0


def main():
    mnt, image, off, control = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    fusepy.FUSE(Hold([image] + sys.argv[5:], off, control), mnt, foreground=True, nothreads=False,
                direct_io=True, allow_other=True)


if __name__ == "__main__":
    main()
