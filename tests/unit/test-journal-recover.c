/*
 * test-journal-recover.c - a journal that recovery refuses is left exactly
 * as the previous instance wrote it (review finding: xbd_journal_recover
 * freed records while it was still scanning, so a journal kept "as
 * evidence" after a refusal had already lost some of them), and one it
 * accepts gets its finished records freed and the rest listed in order;
 * a response marker a dead instance left uncommitted does not outlive the
 * recovery that executes its request again.  A header flag
 * (XBD_JFLAG_WB_LOST: flushes fail) reaches the next instance that
 * resumes the ring, and only that one: a new journal starts without it.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "xenblkd/journal.h"

#define NR 32

static struct xbd_journal *journal(void)
{
    struct xbd_journal_id id;
    char err[200];
    bool found;

    memset(&id, 0, sizeof(id));
    return xbd_journal_open(NULL, &id, NR, false, 0, &found, err, sizeof(err));
}

/* Requests 0, 1, 2 consumed into slots 0, 1, 2; request 0 answered, but
 * the instance died before marking its record free. */
static void crashed_state(struct xbd_journal *j)
{
    uint8_t req[64] = { 0 };

    for (unsigned i = 0; i < 3; i++)
        xbd_journal_take(j, i, i, req, sizeof(req));
    xbd_journal_answered(j, 0, 0);
    xbd_journal_rec(j, 0)->state = XBD_JREC_INFLIGHT;
}

/* Review finding: instance A stores request 0's response marker (ring
 * index 0) and dies before committing it; B executes 0 again, answers
 * request 1 at index 0 first and dies with 0 in flight.  C must execute
 * 0 again, not take it for answered by B's response at index 0 (which
 * made the count check refuse the ring: the guest lost its disk). */
static void stale_marker(void)
{
    uint8_t req[64] = { 0 };
    struct xbd_journal *j = journal();
    unsigned redo[NR];
    char why[200];
    int n;

    CHECK(j != NULL);
    xbd_journal_take(j, 0, 0, req, sizeof(req));
    xbd_journal_take(j, 1, 1, req, sizeof(req));
    xbd_journal_rec(j, 0)->rsp = XBD_JRSP_VALID | 0;   /* A dies here */
    n = xbd_journal_recover(j, 0, 2, redo, why, sizeof(why));      /* B */
    CHECK_EQ(n, 2);
    xbd_journal_answered(j, 1, 0);
    n = xbd_journal_recover(j, 0, 2, redo, why, sizeof(why));      /* C */
    if (n < 0)
        printf("refused: %s\n", why);
    CHECK_EQ(n, 1);
    CHECK_EQ(redo[0], 0);
    xbd_journal_close(j, false);
}

static struct xbd_journal *open_at(const char *path, uint32_t port, bool reuse,
                                   bool *found)
{
    struct xbd_journal_id id;
    char err[200];
    struct xbd_journal *j;

    memset(&id, 0, sizeof(id));
    id.remote_port = port;
    j = xbd_journal_open(path, &id, NR, reuse, 0, found, err, sizeof(err));
    if (!j)
        fprintf(stderr, "%s\n", err);
    return j;
}

/* The flag survives the process (a file), and only for the same ring. */
static void flags_survive(void)
{
    char dir[] = "/tmp/test-journal-XXXXXX", path[64];
    struct xbd_journal *j;
    bool found;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/j", dir);
    j = open_at(path, 7, false, &found);
    CHECK(j && !found);
    if (!j)
        return;
    CHECK_EQ(xbd_journal_flags(j), 0);
    xbd_journal_set_flags(j, XBD_JFLAG_WB_LOST);
    xbd_journal_close(j, false);                /* the instance dies */
    j = open_at(path, 7, true, &found);         /* its successor resumes */
    CHECK(j && found);
    CHECK_EQ(j ? xbd_journal_flags(j) : 0, XBD_JFLAG_WB_LOST);
    xbd_journal_close(j, false);
    j = open_at(path, 8, true, &found);         /* another ring: replaced */
    CHECK(j && !found);
    CHECK_EQ(j ? xbd_journal_flags(j) : 1, 0);
    xbd_journal_set_flags(j, XBD_JFLAG_WB_LOST);
    xbd_journal_close(j, false);
    j = open_at(path, 8, false, &found);        /* a new connection */
    CHECK(j && !found);
    CHECK_EQ(j ? xbd_journal_flags(j) : 1, 0);
    xbd_journal_close(j, true);
    CHECK(rmdir(dir) == 0);
}

int main(void)
{
    struct xbd_journal *j = journal();
    unsigned redo[NR];
    char why[200];
    int n;

    flags_survive();
    CHECK(j != NULL);
    crashed_state(j);
    /* A record behind it that makes the journal inconsistent. */
    xbd_journal_rec(j, 5)->state = 7;
    n = xbd_journal_recover(j, 0, 3, redo, why, sizeof(why));
    CHECK_EQ(n, -1);
    printf("refused: %s\n", why);
    CHECK_EQ(xbd_journal_rec(j, 0)->state, XBD_JREC_INFLIGHT);
    CHECK_EQ(xbd_journal_rec(j, 1)->state, XBD_JREC_INFLIGHT);
    CHECK_EQ(xbd_journal_rec(j, 2)->state, XBD_JREC_INFLIGHT);

    /* Count mismatch (found only after the whole scan): same. */
    xbd_journal_rec(j, 5)->state = XBD_JREC_FREE;
    xbd_journal_rec(j, 2)->state = XBD_JREC_FREE;
    n = xbd_journal_recover(j, 0, 3, redo, why, sizeof(why));
    CHECK_EQ(n, -1);
    printf("refused: %s\n", why);
    CHECK_EQ(xbd_journal_rec(j, 0)->state, XBD_JREC_INFLIGHT);

    /* Consistent: the answered record is freed, 1 and 2 are redone. */
    xbd_journal_rec(j, 2)->state = XBD_JREC_INFLIGHT;
    n = xbd_journal_recover(j, 0, 3, redo, why, sizeof(why));
    CHECK_EQ(n, 2);
    CHECK_EQ(redo[0], 1);
    CHECK_EQ(redo[1], 2);
    CHECK_EQ(xbd_journal_rec(j, 0)->state, XBD_JREC_FREE);
    xbd_journal_close(j, false);
    stale_marker();
    return check_result("test-journal-recover");
}
