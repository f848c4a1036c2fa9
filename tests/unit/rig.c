/*
 * rig.c - the scaffolding shared by the data plane scenarios (see rig.h).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "rig.h"

domid_t rig_domid(void)
{
    static domid_t next = 10;

    return next++;
}

bool rig_attach_at(const char *file, int line, struct be *b, struct fe *f,
                   const struct rig_cfg *c)
{
    if (c->pgrant_idle_s > 0)
        be_open_idle(b, f, RIG_SECTORS, c->pgrant_idle_s);
    else
        be_open(b, f, RIG_SECTORS, c->persistent, c->max_indirect, c->max_pgrants);
    CHECK_AT(file, line, b->ring != NULL);
    if (b->ring)
        return true;
    /* Nothing of a failed start may be left for the next scenario. */
    be_close(b);
    fe_close(f);
    return false;
}

bool rig_up_at(const char *file, int line, struct be *b, struct fe *f,
               enum xbd_protocol proto, unsigned order, const struct rig_cfg *c)
{
    fe_open(f, rig_domid(), proto, order);
    return rig_attach_at(file, line, b, f, c);
}

void rig_down_at(const char *file, int line, struct be *b, struct fe *f)
{
    be_close(b);
    CHECK_EQ_AT(file, line, xsg_grants_in_use(f->d), 0);
    fe_close(f);
}

void expect_all_at(const char *file, int line, struct be *b, struct fe *f,
                   unsigned n, int16_t status)
{
    uint64_t id;
    uint8_t op;
    int16_t st;

    CHECK_EQ_AT(file, line, run_until_rsp(b, f, n, 10), n);
    while (fe_pop(f, &id, &op, &st))
        if (st != status) {
            fprintf(stderr, "%s:%d: request %llu (op %u): status %d, want %d\n",
                    file, line, (unsigned long long)id, op, st, status);
            check_failures++;
        }
}

void expect_one_at(const char *file, int line, struct be *b, struct fe *f,
                   uint64_t id, uint8_t op, int16_t status)
{
    uint64_t got_id;
    uint8_t got_op;
    int16_t st;
    bool popped;

    CHECK_EQ_AT(file, line, run_until_rsp(b, f, 1, 10), 1);
    popped = fe_pop(f, &got_id, &got_op, &st);
    CHECK_AT(file, line, popped);
    if (!popped)
        return;
    CHECK_EQ_AT(file, line, got_id, id);
    CHECK_EQ_AT(file, line, got_op, op);
    CHECK_EQ_AT(file, line, st, status);
}

struct stat_goal {
    size_t off;
    uint64_t min;
};

static uint64_t stat_at(struct be *b, size_t off)
{
    uint64_t v;

    memcpy(&v, (const char *)xbd_ring_get_stats(b->ring) + off, sizeof(v));
    return v;
}

static bool stat_reached(struct be *b, void *arg)
{
    const struct stat_goal *g = arg;

    return stat_at(b, g->off) >= g->min;
}

void wait_stat_at(const char *file, int line, struct be *b, const char *name,
                  size_t off, uint64_t min)
{
    struct stat_goal g = { off, min };

    if (!run_until(b, stat_reached, &g, 10)) {
        fprintf(stderr, "%s:%d: CHECK failed: ring counter %s reached %llu in 10 s "
                "(still %llu)\n", file, line, name, (unsigned long long)min,
                (unsigned long long)stat_at(b, off));
        check_failures++;
    }
}

void run_until_dispatched_at(const char *file, int line, struct be *b, uint64_t n)
{
    wait_stat_at(file, line, b, "rd_req", offsetof(struct xbd_ring_stats, rd_req), n);
    CHECK_EQ_AT(file, line, xbd_ring_get_stats(b->ring)->rd_req, n);
}

bool file_matches(struct be *b, uint64_t sector, uint32_t seed)
{
    unsigned char want[XBD_PAGE_SIZE], got[XBD_PAGE_SIZE];

    pattern(want, sizeof(want), seed);
    if (pread(b->plain_fd, got, sizeof(got), (off_t)(sector * 512)) != (ssize_t)sizeof(got))
        return false;
    return memcmp(want, got, sizeof(got)) == 0;
}
