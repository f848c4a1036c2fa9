/*
 * test-sweep.c - the start-up sweeps of the state directory (journal.c's
 * xbd_journal_sweep, nbd_sweep.c's xbd_nbd_sweep) against the three
 * answers of the existence check (host.c, xbd_xs_exists): a device that
 * exists keeps its files, one xenstore says is absent loses them.  One
 * xenstore could not answer for (xenstored failing at that moment) keeps
 * its rings' journals, with a warning naming the error: losing them would
 * refuse the resume of its rings with requests outstanding.  Its NBD
 * socket goes (nobody listens on it, its export makes it again: see
 * nbd_sweep.c), with a warning too.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "nbd_server.h"
#include "xenblkd/journal.h"
#include "xenblkd/log.h"

/* Domain 1's disk exists, domain 2's is absent, domain 3's is unknown. */
static int exists(void *opaque, const char *kind, unsigned domid, unsigned devid)
{
    (void)opaque;
    (void)devid;
    CHECK(strcmp(kind, "vbd3") == 0);
    switch (domid) {
    case 1:
        return 1;
    case 2:
        return 0;
    default:
        errno = EIO;
        return -1;
    }
}

static char dir[] = "/tmp/test-sweep.XXXXXX";

static bool present(const char *sub, const char *name)
{
    char path[256];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    return lstat(path, &st) == 0;
}

static void make_file(const char *sub, const char *name)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
}

/* A socket nobody listens on, as a killed daemon leaves it. */
static void make_socket(const char *name)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/nbd/%s", dir, name);
    CHECK(fd >= 0);
    CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
}

static const char *const journals[] = {
    "vbd3-1-51712-q0", "vbd3-1-51712-q1", "vbd3-2-51712-q0", "vbd3-3-51712-q0",
    "vbd3-3-51712-q1",
};
static const char *const sockets[] = {
    "vbd3-1-51712.sock", "vbd3-2-51712.sock", "vbd3-3-51712.sock",
};

int main(void)
{
    char sub[256];
    FILE *out = tmpfile();
    int saved = dup(2);
    size_t i;

    CHECK(out != NULL && saved >= 0);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(sub, sizeof(sub), "%s/" XBD_JOURNAL_SUBDIR, dir);
    CHECK_EQ(mkdir(sub, 0700), 0);
    snprintf(sub, sizeof(sub), "%s/" XBD_NBD_SUBDIR, dir);
    CHECK_EQ(mkdir(sub, 0700), 0);
    for (i = 0; i < sizeof(journals) / sizeof(journals[0]); i++)
        make_file(XBD_JOURNAL_SUBDIR, journals[i]);
    for (i = 0; i < sizeof(sockets) / sizeof(sockets[0]); i++)
        make_socket(sockets[i]);

    fflush(stderr);
    dup2(fileno(out), 2);
    xbd_log_init(true, XBD_LOG_INFO);
    xbd_journal_sweep(dir, exists, NULL);
    xbd_nbd_sweep(dir, exists, NULL);
    fflush(stderr);
    dup2(saved, 2);

    /* Exists: kept.  Absent: removed.  Unknown: journals kept. */
    CHECK(present(XBD_JOURNAL_SUBDIR, "vbd3-1-51712-q0"));
    CHECK(present(XBD_JOURNAL_SUBDIR, "vbd3-1-51712-q1"));
    CHECK(!present(XBD_JOURNAL_SUBDIR, "vbd3-2-51712-q0"));
    CHECK(present(XBD_JOURNAL_SUBDIR, "vbd3-3-51712-q0"));
    CHECK(present(XBD_JOURNAL_SUBDIR, "vbd3-3-51712-q1"));
    CHECK_EQ(count_lines(out, "cannot tell whether vbd3 device 3/51712 still exists "
                         "(Input/output error): keeping its journal vbd3-3-51712-q"), 2);
    /* ... and the socket of an unknown one removed, said so. */
    CHECK(present(XBD_NBD_SUBDIR, "vbd3-1-51712.sock"));
    CHECK(!present(XBD_NBD_SUBDIR, "vbd3-2-51712.sock"));
    CHECK(!present(XBD_NBD_SUBDIR, "vbd3-3-51712.sock"));
    CHECK_EQ(count_lines(out, "no vbd3 device 2/51712 to serve"), 1);
    CHECK_EQ(count_lines(out, "cannot tell whether vbd3 device 3/51712 still exists "
                         "(Input/output error), its export"), 1);
    CHECK_EQ(count_lines(out, "device 1/51712"), 0);

    for (i = 0; i < sizeof(journals) / sizeof(journals[0]); i++) {
        snprintf(sub, sizeof(sub), "%s/" XBD_JOURNAL_SUBDIR "/%s", dir, journals[i]);
        unlink(sub);
    }
    for (i = 0; i < sizeof(sockets) / sizeof(sockets[0]); i++) {
        snprintf(sub, sizeof(sub), "%s/" XBD_NBD_SUBDIR "/%s", dir, sockets[i]);
        unlink(sub);
    }
    snprintf(sub, sizeof(sub), "%s/" XBD_JOURNAL_SUBDIR, dir);
    rmdir(sub);
    snprintf(sub, sizeof(sub), "%s/" XBD_NBD_SUBDIR, dir);
    rmdir(sub);
    CHECK_EQ(rmdir(dir), 0);
    return check_result("test-sweep");
}
