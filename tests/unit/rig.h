/*
 * rig.h - the scaffolding every data plane scenario repeats, on top of the
 * fe.h rig: bring up a frontend and the backend serving it and check that
 * the ring started, wait for responses and check their status, tear both
 * down and check that the guest got every grant back.
 *
 * The helpers check (check.h) and report failures at their caller's
 * file:line, so a failed check still names the scenario's own line.
 */
#ifndef XBD_TEST_RIG_H
#define XBD_TEST_RIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fe.h"

#define RIG_SECTORS 8192             /* every scenario's disk: 4 MiB */

/* The backend side of a scenario (fe.h be_open's parameters).  A
 * pgrant_idle_s above 0 makes the ring persistent whatever <persistent>
 * says, with grants idling out after that long (be_open_idle); 0 is the
 * ring's "never". */
struct rig_cfg {
    bool persistent;
    unsigned max_indirect;
    unsigned max_pgrants;
    double pgrant_idle_s;
};

/* A fresh guest domid for each frontend of the test program. */
domid_t rig_domid(void);

/* Open a frontend (fresh domid, <proto>, ring of 2^order pages) and the
 * backend serving it, check that the ring started.  If it did not, both
 * are closed again and the result is false: the scenario must return.
 * The trailing arguments are rig_cfg designators:
 *     if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
 *         return; */
#define rig_up(b, f, proto, order, ...) \
    rig_up_at(__FILE__, __LINE__, (b), (f), (proto), (order), \
              &(struct rig_cfg){ __VA_ARGS__ })
/* The same for a frontend already opened (and doctored) by the caller. */
#define rig_attach(b, f, ...) \
    rig_attach_at(__FILE__, __LINE__, (b), (f), &(struct rig_cfg){ __VA_ARGS__ })
/* Close the backend (draining its ring), check that the guest sees none
 * of its grants in use any more, close the frontend. */
#define rig_down(b, f) rig_down_at(__FILE__, __LINE__, (b), (f))
/* Wait (10 s at most) for n responses, check that n came and that every
 * one of them is <status>; they are consumed. */
#define expect_all(b, f, n, status) \
    expect_all_at(__FILE__, __LINE__, (b), (f), (n), (status))
/* Wait (10 s at most) for one response and check that it answers <id>,
 * operation <op>, with <status>; it is consumed. */
#define expect_one(b, f, id, op, status) \
    expect_one_at(__FILE__, __LINE__, (b), (f), (id), (op), (status))

/* Run the loop (10 s at most) until the ring's counter <field>, a
 * uint64_t of struct xbd_ring_stats (checked at compile time), is at
 * least min; check that it got there.  The ring must live that long. */
#define wait_stat(b, field, min)                                           \
    wait_stat_at(__FILE__, __LINE__, (b), #field,                          \
                 offsetof(struct xbd_ring_stats, field) + 0 *              \
                 sizeof(char[sizeof(((struct xbd_ring_stats *)0)->field) == \
                             sizeof(uint64_t) ? 1 : -1]), (min))
/* Run the loop (10 s at most) until the ring has dispatched n reads
 * (with a fake I/O engine they then sit there), check that it dispatched
 * exactly n. */
#define run_until_dispatched(b, n) \
    run_until_dispatched_at(__FILE__, __LINE__, (b), (n))

bool rig_up_at(const char *file, int line, struct be *b, struct fe *f,
               enum xbd_protocol proto, unsigned order, const struct rig_cfg *c);
bool rig_attach_at(const char *file, int line, struct be *b, struct fe *f,
                   const struct rig_cfg *c);
void rig_down_at(const char *file, int line, struct be *b, struct fe *f);
void expect_all_at(const char *file, int line, struct be *b, struct fe *f,
                   unsigned n, int16_t status);
void wait_stat_at(const char *file, int line, struct be *b, const char *name,
                  size_t off, uint64_t min);
void run_until_dispatched_at(const char *file, int line, struct be *b, uint64_t n);
/* The page at <sector> of the backing file holds pattern(seed). */
bool file_matches(struct be *b, uint64_t sector, uint32_t seed);
void expect_one_at(const char *file, int line, struct be *b, struct fe *f,
                   uint64_t id, uint8_t op, int16_t status);

#endif
