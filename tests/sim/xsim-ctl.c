/*
 * xsim-ctl - shell access to the simulated host, for shell tests:
 *   xsim-ctl fault SPEC          set faults (see xsg_fault_set), or "clear"
 *   xsim-ctl fired               print the number of faults injected
 *   xsim-ctl stats DOMID         print the grant counters of a domain
 *   xsim-ctl in-use DOMID        print how many grants are in use (after
 *                                reaping pins of dead processes)
 * Needs XENSIM_DIR.  Exit 0 on success, 1 on error, 2 on usage error.
 */
#include "xensim_guest.h"
#include "xsim.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int usage(void)
{
    fprintf(stderr, "usage: xsim-ctl fault SPEC | fired | stats DOMID | in-use DOMID\n");
    return 2;
}

/* The domain's gnttab file, mapped (it belongs to the guest process). */
static struct xsim_gdom *open_dom(const char *arg)
{
    char *end;
    unsigned long id = strtoul(arg, &end, 0);
    struct xsim_gdom *g;

    if (*end || id >= DOMID_FIRST_RESERVED) {
        fprintf(stderr, "xsim-ctl: bad domid '%s'\n", arg);
        return NULL;
    }
    g = xsim_gdom_get((domid_t)id);
    if (!g)
        fprintf(stderr, "xsim-ctl: domain %lu: %s\n", id, strerror(errno));
    return g;
}

static int cmd_stats(const char *arg)
{
    struct xsim_gdom *g = open_dom(arg);
    uint64_t *s;

    if (!g)
        return 1;
    s = g->hdr->stats;
    printf("map_calls=%" PRIu64 "\npages_mapped=%" PRIu64 "\npages_unmapped=%" PRIu64
           "\ncopy_calls=%" PRIu64 "\ncopy_segs=%" PRIu64 "\nunmap_calls=%" PRIu64 "\n",
           s[XSIM_ST_MAP_CALLS], s[XSIM_ST_PAGES_MAPPED], s[XSIM_ST_PAGES_UNMAPPED],
           s[XSIM_ST_COPY_CALLS], s[XSIM_ST_COPY_SEGS], s[XSIM_ST_UNMAP_CALLS]);
    return 0;
}

static int cmd_in_use(const char *arg)
{
    struct xsim_gdom *g = open_dom(arg);
    uint32_t r;
    int n = 0;

    if (!g)
        return 1;
    xsim_flock(g->fd);
    xsim_gnt_reap(g);
    xsim_funlock(g->fd);
    for (r = 0; r < g->hdr->nr_grants; r++) {
        if (__atomic_load_n(&g->grants[r].flags, __ATOMIC_ACQUIRE) & (GTF_reading | GTF_writing))
            n++;
    }
    printf("%d\n", n);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !xsim_dir())
        return usage();
    if (strcmp(argv[1], "fault") == 0 && argc == 3) {
        if (xsg_fault_set(argv[2]) < 0) {
            fprintf(stderr, "xsim-ctl: bad fault spec '%s'\n", argv[2]);
            return 1;
        }
        return 0;
    }
    if (strcmp(argv[1], "fired") == 0 && argc == 2) {
        printf("%" PRIu64 "\n", xsg_fault_fired());
        return 0;
    }
    if (strcmp(argv[1], "stats") == 0 && argc == 3)
        return cmd_stats(argv[2]);
    if (strcmp(argv[1], "in-use") == 0 && argc == 3)
        return cmd_in_use(argv[2]);
    return usage();
}
