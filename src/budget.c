/*
 * budget.c - per-disk budgets and the host-wide mapping reserve (see
 * budget.h for the policy).
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <sys/resource.h>

#include "budget.h"

#define XBD_KERNEL_MAX_MAP_COUNT 65530u    /* DEFAULT_MAX_MAP_COUNT */

void xbd_map_reserve_init(struct xbd_map_reserve *m)
{
    unsigned long v = 0;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");

    if (!f || fscanf(f, "%lu", &v) != 1 || v == 0)
        v = XBD_KERNEL_MAX_MAP_COUNT;
    if (f)
        fclose(f);
    m->max_map_count = v;
    m->limit = v / 2;
    m->used = 0;
}

void xbd_ring_plan(size_t mem, size_t fixed, unsigned nr_ents, unsigned seg_cap,
                   size_t per_slot, unsigned bounce_max_default, unsigned pool_keep_default,
                   struct xbd_ring_plan *p)
{
    unsigned min_slots = nr_ents < XBD_MIN_SLOTS ? nr_ents : XBD_MIN_SLOTS;
    size_t want, pages;

    p->slots = nr_ents;
    p->bounce_max = bounce_max_default;
    p->pool_keep = pool_keep_default;
    if (!mem)
        return;
    mem = mem > fixed ? mem - fixed : 0;
    /* Half for the slots (fixed for the connection), half for the pages
     * requests hold; a large ring then simply has fewer requests in
     * flight, the others wait in the shared ring. */
    want = (mem / 2) / per_slot;
    if (want < p->slots)
        p->slots = want < min_slots ? min_slots : (unsigned)want;
    want = (size_t)p->slots * per_slot;
    pages = want < mem ? (mem - want) / 4096u : 0;
    if (pages < p->bounce_max)
        p->bounce_max = pages < seg_cap ? seg_cap : (unsigned)pages;
    if (p->pool_keep > p->bounce_max / 8)
        p->pool_keep = p->bounce_max / 8;
}

unsigned xbd_budget_queues_for_fds(unsigned fds)
{
    unsigned q = fds > 1 ? (fds - 1) / XBD_FDS_PER_QUEUE : 0;

    return q ? q : 1;
}

static unsigned long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    unsigned long n = 0;

    if (!d)
        return 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n ? n - 1 : 0;
}

bool xbd_fds_available(unsigned n, unsigned long *open_now, unsigned long *limit)
{
    struct rlimit rl;

    *open_now = count_fds();
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY) {
        *limit = 0;
        return true;
    }
    *limit = (unsigned long)rl.rlim_cur;
    return *open_now + n + XBD_FD_RESERVE <= *limit;
}
