/*
 * xbd-pattern - read or write the reference frontend's data pattern
 * directly in a backing file or block device, bypassing the daemon.
 *
 *   xbd-pattern check --gens G[,G...]|any [--from BYTES] [--span BYTES] [--min G=N]... FILE
 *       every 512-byte sector from byte --from (default 0) to byte --span
 *       (default: the end of FILE)
 *       holds bf_pattern_fill(sector, g) for one of the generations G
 *       (0 = zeros), or with "any" zeros or the intact pattern of that
 *       sector at some generation (xbd-gens.h); --min asks for at least N
 *       sectors of generation G.
 *       Prints the count of each generation; exit 0, or 1 naming the
 *       first bad sectors.
 *   xbd-pattern fill --gen G [--span BYTES] FILE
 *       writes generation G over the first BYTES of FILE.
 *
 * The tests use it to prove that what the frontend wrote is really in the
 * backing store (and, with fill, that reads return what is there), so
 * that the frontend and the daemon cannot agree on a wrong layout.
 * Block devices and files are accessed with O_DIRECT when possible: the
 * daemon writes with O_DIRECT, and a cached page of a block device could
 * otherwise hide what is on the device.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

#include "blkfront.h"
#include "xbd-gens.h"

#define CHUNK (1u << 20)
#define MAX_GENS XBD_MAX_GENS
#define MAX_REPORTS 5

struct opts {
    const char *cmd, *file;
    struct xbd_gens gens;
    uint64_t from, span;
    uint32_t min_gen[MAX_GENS];
    uint64_t min_count[MAX_GENS];
    unsigned nmin;
};

static void usage(void)
{
    fprintf(stderr, "usage: xbd-pattern check --gens G[,G...]|any [--from BYTES] [--span BYTES] [--min G=N]... FILE\n"
                    "       xbd-pattern fill --gen G [--span BYTES] FILE\n");
    exit(2);
}

static uint64_t parse_u64(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end)
        usage();
    return v;
}

static void parse_args(struct opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    if (argc < 2)
        usage();
    o->cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "--gens") || !strcmp(a, "--gen")) && i + 1 < argc) {
            if (xbd_gens_parse(&o->gens, argv[++i]) < 0)
                usage();
        } else if (!strcmp(a, "--from") && i + 1 < argc) {
            o->from = parse_u64(argv[++i]);
        } else if (!strcmp(a, "--span") && i + 1 < argc) {
            o->span = parse_u64(argv[++i]);
        } else if (!strcmp(a, "--min") && i + 1 < argc) {
            const char *v = argv[++i], *eq = strchr(v, '=');
            if (!eq || o->nmin == MAX_GENS)
                usage();
            char g[16];
            snprintf(g, sizeof(g), "%.*s", (int)(eq - v), v);
            o->min_gen[o->nmin] = (uint32_t)parse_u64(g);
            o->min_count[o->nmin++] = parse_u64(eq + 1);
        } else if (a[0] != '-' && !o->file) {
            o->file = a;
        } else {
            usage();
        }
    }
    if (!o->file || (!o->gens.any && o->gens.n == 0) || o->span % 512 || o->from % 4096)
        usage();
    if (strcmp(o->cmd, "check") &&
        (strcmp(o->cmd, "fill") || o->gens.any || o->gens.n != 1 || o->nmin))
        usage();
    if (o->gens.any && o->nmin)
        usage();
}

/* Open FILE, O_DIRECT if the file system allows it; its size in bytes. */
static int open_target(const char *path, int flags, uint64_t *size)
{
    int fd = open(path, flags | O_DIRECT | O_CLOEXEC);
    if (fd < 0 && errno == EINVAL)
        fd = open(path, flags | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "xbd-pattern: %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        fprintf(stderr, "xbd-pattern: %s: %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (S_ISBLK(st.st_mode)) {
        if (ioctl(fd, BLKGETSIZE64, size) < 0) {
            fprintf(stderr, "xbd-pattern: %s: BLKGETSIZE64: %s\n", path, strerror(errno));
            close(fd);
            return -1;
        }
    } else {
        *size = (uint64_t)st.st_size;
    }
    return fd;
}

static int io_all(int fd, uint8_t *buf, size_t len, uint64_t off, bool wr)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = wr ? pwrite(fd, buf + done, len - done, (off_t)(off + done))
                       : pread(fd, buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

static int check(const struct opts *o, int fd, uint8_t *buf, uint64_t span)
{
    uint64_t count[MAX_GENS] = { 0 }, bad = 0;
    char why[200];

    for (uint64_t off = o->from; off < span; off += CHUNK) {
        size_t len = span - off < CHUNK ? (size_t)(span - off) : CHUNK;
        if (io_all(fd, buf, len, off, false) < 0) {
            fprintf(stderr, "xbd-pattern: %s: read at %" PRIu64 ": %s\n", o->file, off, strerror(errno));
            return 1;
        }
        for (size_t s = 0; s < len / 512; s++) {
            uint64_t sector = off / 512 + s;
            int g = xbd_gens_match(&o->gens, buf + s * 512, sector, why, sizeof(why));
            if (g >= 0) {
                count[g]++;
                continue;
            }
            if (bad++ < MAX_REPORTS)
                fprintf(stderr, "xbd-pattern: %s: sector %" PRIu64 ": %s\n", o->file, sector, why);
        }
    }
    int rc = bad ? 1 : 0;
    if (bad)
        fprintf(stderr, "xbd-pattern: %s: %" PRIu64 " of %" PRIu64 " sectors hold none of the wanted generations\n",
                o->file, bad, (span - o->from) / 512);
    for (unsigned m = 0; m < o->nmin; m++) {
        uint64_t have = 0;
        for (unsigned i = 0; i < o->gens.n; i++)
            if (o->gens.g[i] == o->min_gen[m])
                have = count[i];
        if (have < o->min_count[m]) {
            fprintf(stderr, "xbd-pattern: %s: %" PRIu64 " sectors of generation %u, want at least %" PRIu64 "\n",
                    o->file, have, o->min_gen[m], o->min_count[m]);
            rc = 1;
        }
    }
    if (o->gens.any)
        printf("zeros=%" PRIu64 " patterns=%" PRIu64, count[0], count[1]);
    for (unsigned i = 0; i < o->gens.n; i++)
        printf("%sgen%u=%" PRIu64, i ? " " : "", o->gens.g[i], count[i]);
    printf(" bad=%" PRIu64 "\n", bad);
    return rc;
}

static int fill(const struct opts *o, int fd, uint8_t *buf, uint64_t span)
{
    for (uint64_t off = 0; off < span; off += CHUNK) {
        size_t len = span - off < CHUNK ? (size_t)(span - off) : CHUNK;
        for (size_t s = 0; s < len / 512; s++)
            bf_pattern_fill(buf + s * 512, off / 512 + s, o->gens.g[0]);
        if (io_all(fd, buf, len, off, true) < 0) {
            fprintf(stderr, "xbd-pattern: %s: write at %" PRIu64 ": %s\n", o->file, off, strerror(errno));
            return 1;
        }
    }
    if (fsync(fd) < 0) {
        fprintf(stderr, "xbd-pattern: %s: fsync: %s\n", o->file, strerror(errno));
        return 1;
    }
    printf("gen%u=%" PRIu64 "\n", o->gens.g[0], span / 512);
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    uint64_t size;
    void *buf;

    parse_args(&o, argc, argv);
    bool wr = !strcmp(o.cmd, "fill");
    int fd = open_target(o.file, wr ? O_RDWR : O_RDONLY, &size);
    if (fd < 0)
        return 1;
    uint64_t span = o.span ? o.span : size - size % 512;
    if (span > size || o.from >= span) {
        fprintf(stderr, "xbd-pattern: %s: span %" PRIu64 " is beyond its size %" PRIu64 "\n", o.file, span, size);
        close(fd);
        return 1;
    }
    if (posix_memalign(&buf, 4096, CHUNK)) {
        close(fd);
        return 1;
    }
    int rc = wr ? fill(&o, fd, buf, span) : check(&o, fd, buf, span);
    free(buf);
    close(fd);
    return rc;
}
