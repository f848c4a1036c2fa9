/*
 * fuzz-config.c - the configuration file parser (src/config.c) on a file
 * whose bytes are the fuzzer's input.
 *
 * The input is written to a memory file and read through
 * xbd_conf_load_file() by its /proc/self/fd path, so the code under test
 * is the daemon's own, getline() and all.  Beyond memory safety: an
 * error names the place ("PATH:LINE: reason"), and a file that parses
 * survives a round trip: xbd_conf_print() of the result parses again to
 * the same configuration (what --check-config prints is a valid file).
 */
#define _GNU_SOURCE 1
#include "config.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "xenblkd/config.h"

static int memfd = -1, printfd = -1;
static char path[64], print_path[64];

static void setup(void)
{
    if (memfd >= 0)
        return;
    memfd = memfd_create("xenblkd.conf", MFD_CLOEXEC);
    printfd = memfd_create("printed.conf", MFD_CLOEXEC);
    if (memfd < 0 || printfd < 0)
        abort();
    snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
    snprintf(print_path, sizeof(print_path), "/proc/self/fd/%d", printfd);
    xbd_log_init(true, XBD_LOG_ERR);
}

static void put(int fd, const void *data, size_t size)
{
    if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0 ||
        (size && write(fd, data, size) != (ssize_t)size))
        abort();
}

/* The configuration printed in the file's format (malloc'd text). */
static char *print_conf(const struct xbd_daemon_config *c, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);

    if (!f)
        abort();
    xbd_conf_print(f, c, NULL);
    if (fclose(f))
        abort();
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct xbd_daemon_config c, again;
    struct xbd_config disks;
    char err[1024] = "";
    char *printed, *reprinted;
    size_t plen, rlen;
    bool missing = true;

    setup();
    put(memfd, data, size);
    xbd_conf_defaults(&c);
    if (xbd_conf_load_file(&c, path, false, &missing, err, sizeof(err)) < 0) {
        xbd_fuzz_assert(!strncmp(err, path, strlen(path)) && err[strlen(path)] == ':');
        return 0;
    }
    xbd_fuzz_assert(!missing);
    xbd_conf_disks(&c, &disks);
    xbd_fuzz_assert(disks.max_queues >= 1 && disks.max_queues <= XBD_MAX_QUEUES);
    xbd_fuzz_assert(disks.max_ring_order <= XBD_MAX_RING_ORDER);
    xbd_fuzz_assert(disks.max_indirect_segs <= XBD_MAX_INDIRECT_SEGS);
    xbd_fuzz_assert(memchr(c.kinds, '\0', sizeof(c.kinds)) != NULL);
    xbd_fuzz_assert(memchr(c.state_dir, '\0', sizeof(c.state_dir)) != NULL);
    xbd_fuzz_assert(memchr(c.control_socket, '\0', sizeof(c.control_socket)) != NULL);
    xbd_fuzz_assert(memchr(c.control_group, '\0', sizeof(c.control_group)) != NULL);

    /* Round trip. */
    printed = print_conf(&c, &plen);
    put(printfd, printed, plen);
    xbd_conf_defaults(&again);
    if (xbd_conf_load_file(&again, print_path, false, NULL, err, sizeof(err)) < 0) {
        fprintf(stderr, "printed configuration does not parse: %s\n%s", err, printed);
        abort();
    }
    reprinted = print_conf(&again, &rlen);
    if (plen != rlen || memcmp(printed, reprinted, plen)) {
        fprintf(stderr, "round trip changed the configuration:\n%s---\n%s", printed, reprinted);
        abort();
    }
    free(printed);
    free(reprinted);
    return 0;
}
