/*
 * fuzz-nbd.c - the NBD export's parsers: the fixed newstyle handshake of
 * src/nbd_handshake.c (client flags, option headers and lengths,
 * EXPORT_NAME, INFO/GO, LIST, ABORT, unknown options) and the
 * transmission phase of src/nbd_conn.c (request headers, lengths, write
 * payloads taken or skipped, flags, ranges, READ/WRITE/FLUSH/TRIM/DISC,
 * the gate), on the daemon's own event loop and AIO engine.
 *
 * The store is a memfd opened again through xbd_backing_open (as a
 * device opens its file), 64 KiB of export and a 4 KiB guard after it,
 * filled with a pattern that differs at every offset.  Each input is one
 * connection made by xbd_nbd_conn_new on one end of a socketpair, given
 * a duplicate of the store's fd as nbd_export.c's serve() does, and the
 * geometry nbd_export.c's geometry() would give, with the size, the
 * sector size, read-only and trim chosen by the input (the fd stays
 * writable: a write on a read-only export is refused by the connection,
 * not by the kernel).
 *
 * Input: [0] chunk size (1 + [0]*37 % 8192, at least a 16th of the
 * rest), [1] bit 0 read-only, bit 1 trim, bit 2 4096-byte sectors,
 * bit 3 start gated (as while another client drains), bit 4 the client
 * hangs up once all is sent, reading nothing more, bit 5 the export cuts
 * the client off (xbd_nbd_conn_shut, as when the disk closes), [2] export
 * size in sectors - 1 (modulo what fits), [3] ungate or cut off after
 * that many chunks (modulo 17; ungate at the latest once all is sent),
 * then the bytes the client sends before closing its side.  The harness reads those bytes as a
 * client would have composed them (proto.md framing: options until
 * EXPORT_NAME, a well-formed GO or ABORT, then 28-byte requests with a
 * WRITE's payload, until DISC or a bad magic) and makes the request
 * cookies unique (bytes 4-7 of each become its number, the rest is the
 * input's), so that each reply names one request.
 *
 * Checked, besides memory safety and leaks: the greeting; every option
 * reply carries the reply magic and the option it answers, in order,
 * with well-formed data (INFO: the size and flags of the export, block
 * sizes that are powers of two, min = the sector size), and GO or INFO
 * succeeds exactly when its data is well-formed; EXPORT_NAME's answer is
 * the size, the flags and 124 zeroes unless NO_ZEROES; the transmission
 * flags say read-only exactly when it is, trim exactly when offered and
 * writable; every simple reply has NBD_SIMPLE_REPLY_MAGIC, a known error
 * and the cookie of a request sent and not yet answered (each at most
 * once); a success is never for an unknown command or flag, a range
 * outside the export or not sector-aligned, a write or trim on a
 * read-only export, a trim not offered, a read over the maximum payload,
 * or a write whose payload was not all sent; a read's payload is the
 * store's content where no write or trim of the session reaches; after
 * the connection, the store holds the pattern wherever no write or trim
 * that succeeded or went unanswered reaches inside the export (whatever
 * the replies said: nothing outside [0, size), nothing on a read-only
 * export; nothing for a refused request), and
 * the payload of a successful write where no other reaches; the file's
 * size is unchanged; after ABORT or DISC from a client within the
 * server's limits every request is answered (and ABORT acknowledged);
 * the connection always ends, within a fixed number of loop iterations
 * without progress (never a time bound).
 *
 * Not reached: the 8 MiB bound on a connection's buffers (the store is
 * too small for 16 reads to hold that much; tests/daemon/nbd-*.sh), the
 * handshake timer (never waited for), xbd_nbd_conn_shrink.
 * FUZZ_NBD_DEBUG=1 in the environment logs the daemon's debug lines.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "xenblkd/backing.h"
#include "xenblkd/log.h"

#include "io_aio.h"
#include "nbd_conn_internal.h"
#include "fuzz.h"

#define EXPORT_MAX  (64u << 10)
#define STORE_SIZE  (EXPORT_MAX + 4096u)   /* a guard after the largest export */
#define MAX_OPTS    1024u
#define MAX_REQS    512u

static struct ev_loop *loop;
static struct xbd_io_engine *io;
static struct xbd_backing backing;
static uint8_t pattern[STORE_SIZE];

static uint8_t pattern_at(uint32_t i)
{
    uint32_t h = i * 2654435761u;

    return (uint8_t)(h >> 24 ^ h >> 13 ^ i >> 8);
}

static void setup(void)
{
    struct xbd_backing_opts o = { .discard = true };
    char path[64], err[512];
    int mfd;

    if (loop)
        return;
    xbd_log_init(true, getenv("FUZZ_NBD_DEBUG") ? XBD_LOG_DEBUG : XBD_LOG_ERR);
    loop = ev_loop_new(EVFLAG_AUTO);
    if (!loop || !(io = xbd_io_engine_new(loop)))
        abort();
    for (uint32_t i = 0; i < STORE_SIZE; i++)
        pattern[i] = pattern_at(i);
    mfd = memfd_create("fuzz-nbd", MFD_CLOEXEC);
    if (mfd < 0 || ftruncate(mfd, STORE_SIZE) < 0)
        abort();
    snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
    if (xbd_backing_open(&backing, path, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "fuzz-nbd: %s\n", err);
        abort();
    }
    close(mfd);
}

/* ------------------------------------------------------------------ */
/* the client's stream, read as proto.md frames it                     */

enum rstate { RS_GREETING, RS_OPT_HDR, RS_OPT_DATA, RS_EXPORT, RS_REP_HDR, RS_REP_DATA, RS_END };

struct replies {
    enum rstate st;
    uint8_t buf[EXPORT_MAX + 256];
    size_t have, need;
    unsigned opt;               /* the option being answered */
    uint32_t rep_type;
    struct mreq *r;             /* the read whose payload comes */
    uint16_t tflags;            /* transmission flags advertised */
    struct xbd_nbd_geom g;
};

static struct replies rp;

struct mopt {
    uint32_t type;
    bool well_formed;           /* INFO/GO: name and info requests fit */
};

struct mreq {
    uint16_t type, flags;
    uint64_t off;
    uint32_t len;
    uint8_t cookie[8];
    size_t payload;             /* WRITE: where its payload starts in s */
    bool payload_sent;          /* WRITE: all of it is in the stream */
    bool answered;
    uint32_t error;
};

struct model {
    uint8_t *s;                 /* the client's bytes (cookies made unique) */
    size_t n;
    bool no_zeroes;
    struct mopt opts[MAX_OPTS];
    unsigned nopts;
    bool within_limits;         /* flags known, options within the server's limits */
    bool abort_end;             /* the options end with ABORT */
    bool transmission;          /* EXPORT_NAME or a well-formed GO */
    struct mreq reqs[MAX_REQS];
    unsigned nreqs;
    bool disc;                  /* the requests end with DISC */
};

static struct model m;
/* Writes and trims of the session over each byte of the store. */
static uint16_t any_cover[STORE_SIZE + 1];

static bool info_go_well_formed(const uint8_t *d, uint32_t len)
{
    uint32_t namelen;

    if (len < 6)
        return false;
    namelen = get32(d);
    if (namelen > len - 6)
        return false;
    return len == 6 + namelen + 2u * get16(d + 4 + namelen);
}

/* Where a write or trim may change the store: inside the export only,
 * whatever the server answered. */
static bool range_in_store(const struct mreq *r, uint32_t *a, uint32_t *b)
{
    uint64_t size = rp.g.size;

    if (r->type != NBD_CMD_WRITE && r->type != NBD_CMD_TRIM)
        return false;
    if (r->off >= size)
        return false;
    *a = (uint32_t)r->off;
    *b = r->len > size - r->off ? (uint32_t)size : (uint32_t)(r->off + r->len);
    return true;
}

static void model_parse(void)
{
    size_t pos = 4;
    uint32_t flags;

    if (m.n < 4)
        return;
    flags = get32(m.s);
    m.no_zeroes = flags & NBD_FLAG_C_NO_ZEROES;
    m.within_limits = flags == NBD_FLAG_C_FIXED_NEWSTYLE ||
                      flags == (NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    for (;;) {
        uint32_t type, len;

        if (m.n - pos < 16 || get64(m.s + pos) != NBD_IHAVEOPT || m.nopts == MAX_OPTS)
            return;
        type = get32(m.s + pos + 8);
        len = get32(m.s + pos + 12);
        if (len > m.n - pos - 16)
            return;             /* never all sent: never answered */
        if (len > OPT_MAX_LEN || m.nopts + 1 > OPT_MAX_COUNT)
            m.within_limits = false;
        m.opts[m.nopts].type = type;
        m.opts[m.nopts].well_formed = info_go_well_formed(m.s + pos + 16, len);
        pos += 16 + len;
        if (type == NBD_OPT_ABORT) {
            m.nopts++;
            m.abort_end = true;
            return;
        }
        if (type == NBD_OPT_EXPORT_NAME || (type == NBD_OPT_GO && m.opts[m.nopts].well_formed)) {
            m.nopts++;
            break;
        }
        m.nopts++;
    }
    m.transmission = true;
    while (m.n - pos >= NBD_REQUEST_SIZE && m.nreqs < MAX_REQS) {
        uint8_t *h = m.s + pos;
        struct mreq *r = &m.reqs[m.nreqs];
        uint32_t a, b;

        if (get32(h) != NBD_REQUEST_MAGIC)
            return;
        put32(h + 12, m.nreqs);
        memcpy(r->cookie, h + 8, 8);
        r->flags = get16(h + 4);
        r->type = get16(h + 6);
        r->off = get64(h + 16);
        r->len = get32(h + 24);
        pos += NBD_REQUEST_SIZE;
        if (r->type == NBD_CMD_DISC) {
            m.disc = true;
            return;
        }
        m.nreqs++;
        if (range_in_store(r, &a, &b)) {
            any_cover[a]++;
            any_cover[b]--;
        }
        if (r->type == NBD_CMD_WRITE) {
            if (r->len > NBD_MAX_TOLERATED_PAYLOAD)
                return;         /* the server may hang up */
            r->payload = pos;
            r->payload_sent = r->len <= m.n - pos;
            if (!r->payload_sent)
                return;
            pos += r->len;
        }
    }
}

/* ------------------------------------------------------------------ */
/* the server's stream                                                 */


static struct mreq *by_cookie(const uint8_t *cookie)
{
    uint32_t i = get32(cookie + 4);

    if (i >= m.nreqs || memcmp(m.reqs[i].cookie, cookie, 8))
        return NULL;
    return &m.reqs[i];
}

static void check_tflags(uint16_t f)
{
    const struct xbd_nbd_geom *g = &rp.g;

    xbd_fuzz_assert(f & NBD_FLAG_HAS_FLAGS);
    xbd_fuzz_assert(!(f & ~(NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY | NBD_FLAG_SEND_FLUSH |
                            NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM)));
    xbd_fuzz_assert(!!(f & NBD_FLAG_READ_ONLY) == g->readonly);
    xbd_fuzz_assert(!!(f & NBD_FLAG_SEND_TRIM) == (g->trim && !g->readonly));
    rp.tflags = f;
}

static bool pow2(uint32_t v)
{
    return v && !(v & (v - 1));
}

/* An option reply's data is in; the option answered is m.opts[rp.opt]. */
static void got_opt_reply(void)
{
    const struct mopt *o = &m.opts[rp.opt];
    uint32_t t = rp.rep_type, len = (uint32_t)rp.have;
    bool final = t == NBD_REP_ACK || (t & NBD_REP_FLAG_ERROR);

    switch (t) {
    case NBD_REP_ACK:
        xbd_fuzz_assert(len == 0);
        break;
    case NBD_REP_SERVER:
        xbd_fuzz_assert(o->type == NBD_OPT_LIST);
        xbd_fuzz_assert(len >= 4 && get32(rp.buf) <= len - 4);
        break;
    case NBD_REP_INFO:
        xbd_fuzz_assert(o->type == NBD_OPT_INFO || o->type == NBD_OPT_GO);
        xbd_fuzz_assert(len >= 2);
        if (get16(rp.buf) == NBD_INFO_EXPORT) {
            xbd_fuzz_assert(len == 12 && get64(rp.buf + 2) == rp.g.size);
            check_tflags(get16(rp.buf + 10));
        } else if (get16(rp.buf) == NBD_INFO_BLOCK_SIZE) {
            uint32_t min = get32(rp.buf + 2), pref = get32(rp.buf + 6), max = get32(rp.buf + 10);

            xbd_fuzz_assert(len == 14 && min == rp.g.min_block && pow2(min) && pow2(pref));
            xbd_fuzz_assert(min <= pref && pref <= max && max % min == 0);
        }
        break;
    default:
        xbd_fuzz_assert(t & NBD_REP_FLAG_ERROR);
        break;
    }
    if (!final) {
        rp.st = RS_OPT_HDR;
        return;
    }
    if (o->type == NBD_OPT_INFO || o->type == NBD_OPT_GO)
        xbd_fuzz_assert((t == NBD_REP_ACK) == o->well_formed);
    if (o->type == NBD_OPT_ABORT) {
        xbd_fuzz_assert(t == NBD_REP_ACK);
        rp.st = RS_END;
    } else if (o->type == NBD_OPT_GO && t == NBD_REP_ACK) {
        xbd_fuzz_assert(rp.opt + 1 == m.nopts && m.transmission);
        rp.st = RS_REP_HDR;
    } else {
        rp.st = RS_OPT_HDR;
    }
    rp.opt++;
}

static void got_simple_reply(void)
{
    const struct xbd_nbd_geom *g = &rp.g;
    uint32_t err = get32(rp.buf + 4);
    struct mreq *r;

    xbd_fuzz_assert(get32(rp.buf) == NBD_SIMPLE_REPLY_MAGIC);
    xbd_fuzz_assert(err == 0 || err == NBD_EPERM || err == NBD_EIO || err == NBD_ENOMEM ||
                    err == NBD_EINVAL || err == NBD_ENOSPC || err == NBD_EOVERFLOW ||
                    err == NBD_ENOTSUP || err == NBD_ESHUTDOWN);
    r = by_cookie(rp.buf + 8);
    xbd_fuzz_assert(r);                 /* a request sent... */
    xbd_fuzz_assert(!r->answered);      /* ... answered once */
    r->answered = true;
    r->error = err;
    rp.st = RS_REP_HDR;
    if (err)
        return;
    xbd_fuzz_assert(!(r->flags & ~NBD_CMD_FLAG_FUA));
    switch (r->type) {
    case NBD_CMD_WRITE:
        xbd_fuzz_assert(r->payload_sent);
        /* fall through */
    case NBD_CMD_TRIM:
        xbd_fuzz_assert(!g->readonly);
        xbd_fuzz_assert(r->type != NBD_CMD_TRIM || (rp.tflags & NBD_FLAG_SEND_TRIM));
        /* fall through */
    case NBD_CMD_READ:
        xbd_fuzz_assert(r->off <= g->size && r->len <= g->size - r->off);
        xbd_fuzz_assert(r->off % g->min_block == 0 && r->len % g->min_block == 0);
        xbd_fuzz_assert(r->type != NBD_CMD_READ || r->len <= XBD_NBD_MAX_PAYLOAD);
        break;
    case NBD_CMD_FLUSH:
        break;
    default:
        xbd_fuzz_assert(!"success for an unknown command");
    }
    if (r->type == NBD_CMD_READ) {
        rp.r = r;
        rp.st = RS_REP_DATA;
    }
}

/* A read's payload: the store's pattern wherever no write or trim of the
 * session reaches. */
static void got_read_data(void)
{
    const struct mreq *r = rp.r;
    int cover = 0;

    for (uint32_t i = 0; i < (uint32_t)r->off + r->len; i++) {
        cover += (int16_t)any_cover[i];
        if (i >= r->off && !cover)
            xbd_fuzz_assert(rp.buf[i - r->off] == pattern[i]);
    }
    rp.st = RS_REP_HDR;
}

/* How many bytes the state wants next. */
static size_t want(void)
{
    switch (rp.st) {
    case RS_GREETING:   return 18;
    case RS_OPT_HDR:    return 20;
    case RS_EXPORT:     return m.no_zeroes ? 10 : 134;
    case RS_REP_HDR:    return NBD_SIMPLE_REPLY_SIZE;
    case RS_REP_DATA:   return rp.r->len;
    default:            return rp.need;
    }
}

static void got_unit(void)
{
    switch (rp.st) {
    case RS_GREETING:
        xbd_fuzz_assert(get64(rp.buf) == NBD_MAGIC && get64(rp.buf + 8) == NBD_IHAVEOPT);
        xbd_fuzz_assert(get16(rp.buf + 16) == (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES));
        rp.st = RS_OPT_HDR;
        break;
    case RS_OPT_HDR:
        /* only options sent all through are answered */
        xbd_fuzz_assert(rp.opt < m.nopts);
        xbd_fuzz_assert(get64(rp.buf) == NBD_OPT_REPLY_MAGIC);
        xbd_fuzz_assert(get32(rp.buf + 8) == m.opts[rp.opt].type);
        xbd_fuzz_assert(m.opts[rp.opt].type != NBD_OPT_EXPORT_NAME);
        rp.rep_type = get32(rp.buf + 12);
        rp.need = get32(rp.buf + 16);
        xbd_fuzz_assert(rp.need <= 4096);
        rp.st = RS_OPT_DATA;
        break;
    case RS_OPT_DATA:
        got_opt_reply();
        break;
    case RS_EXPORT:
        xbd_fuzz_assert(get64(rp.buf) == rp.g.size);
        check_tflags(get16(rp.buf + 8));
        for (size_t i = 10; i < rp.have; i++)
            xbd_fuzz_assert(rp.buf[i] == 0);
        rp.st = RS_REP_HDR;
        break;
    case RS_REP_HDR:
        got_simple_reply();
        break;
    case RS_REP_DATA:
        got_read_data();
        break;
    case RS_END:
        break;
    }
    rp.have = 0;
    /* EXPORT_NAME has no option reply: its answer comes in their place. */
    if (rp.st == RS_OPT_HDR && rp.opt < m.nopts && m.opts[rp.opt].type == NBD_OPT_EXPORT_NAME) {
        rp.st = RS_EXPORT;
        rp.opt++;
    }
}

/* Bytes from the server (none at the end: a unit of no bytes left). */
static void take(const uint8_t *p, size_t n)
{
    for (;;) {
        size_t k;

        if (rp.st != RS_END && rp.have == want()) {
            got_unit();         /* whole, or of no bytes at all */
            continue;
        }
        if (!n)
            return;
        xbd_fuzz_assert(rp.st != RS_END);   /* nothing after ABORT's answer */
        k = want() - rp.have;
        if (k > n)
            k = n;
        memcpy(rp.buf + rp.have, p, k);
        rp.have += k;
        p += k;
        n -= k;
    }
}

/* ------------------------------------------------------------------ */
/* the connection                                                      */

static struct xbd_nbd_conn *conn;
static bool gone, draining, freed;

static void on_gone(void *opaque, struct xbd_nbd_conn *c, bool d)
{
    (void)opaque;
    xbd_fuzz_assert(c == conn && !gone);
    gone = true;
    draining = d;
    freed = !d;
}

static void on_drained(void *opaque, struct xbd_nbd_conn *c)
{
    (void)opaque;
    xbd_fuzz_assert(c == conn && gone && draining && !freed);
    freed = true;
}

/* Run the loop once: waiting for I/O in the engine (it comes back), else
 * without blocking; fail on a connection that makes no progress for too
 * long (the daemon would hold a client forever). */
static void pump(unsigned *idle)
{
    bool busy = !freed && conn->in_io;

    ev_run(loop, busy ? EVRUN_ONCE : EVRUN_NOWAIT);
    if (busy)
        *idle = 0;
    xbd_fuzz_assert(++*idle < 100000);
}

/* After the connection: the store, compared with what the session may
 * have changed. */
static void check_store(void)
{
    static uint16_t cover[STORE_SIZE + 1];
    static uint32_t who[STORE_SIZE + 1];
    static uint8_t now[STORE_SIZE];
    struct stat st;
    int c = 0;
    uint32_t w = 0;

    xbd_fuzz_assert(fstat(backing.fd, &st) == 0 && st.st_size == STORE_SIZE);
    xbd_fuzz_assert(pread(backing.fd, now, STORE_SIZE, 0) == STORE_SIZE);
    memset(cover, 0, sizeof(cover));
    memset(who, 0, sizeof(who));
    for (unsigned i = 0; i < m.nreqs; i++) {
        const struct mreq *r = &m.reqs[i];
        uint32_t a, b;

        /* Nothing reaches a read-only export's store, whatever the
         * replies said. */
        if (rp.g.readonly || (r->answered && r->error) || !range_in_store(r, &a, &b))
            continue;
        cover[a]++;
        cover[b]--;
        who[a] += i;
        who[b] -= i;
    }
    for (uint32_t i = 0; i < STORE_SIZE; i++) {
        c += (int16_t)cover[i];
        w += who[i];
        if (!c) {
            xbd_fuzz_assert(now[i] == pattern[i]);
        } else if (c == 1) {
            const struct mreq *r = &m.reqs[w];

            if (r->type == NBD_CMD_WRITE && r->answered)
                xbd_fuzz_assert(now[i] == m.s[r->payload + (i - r->off)]);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct xbd_fuzz_in in = { data, size };
    size_t chunk = 1 + (size_t)(xbd_fuzz_take(&in, 1) * 37 % 8192);
    unsigned gbits = (unsigned)xbd_fuzz_take(&in, 1);
    unsigned sectors = (unsigned)xbd_fuzz_take(&in, 1);
    unsigned ungate_after = (unsigned)(xbd_fuzz_take(&in, 1) % 17), chunks = 0;
    static uint8_t rbuf[65536];
    size_t sent = 0;
    unsigned idle = 0;
    bool eof = false, closed = false, gated, hang_up, cut_off, cut = false;
    int sv[2];

    setup();
    memset(&m, 0, sizeof(m));
    memset(&rp, 0, sizeof(rp));
    memset(any_cover, 0, sizeof(any_cover));
    m.s = malloc(in.left ? in.left : 1);
    if (!m.s)
        abort();
    memcpy(m.s, in.p, in.left);
    m.n = in.left;
    rp.g.min_block = gbits & 4 ? 4096 : 512;
    rp.g.size = (uint64_t)(1 + sectors % (EXPORT_MAX / rp.g.min_block)) * rp.g.min_block;
    rp.g.readonly = gbits & 1;
    rp.g.trim = (gbits & 2) && backing.discard;
    rp.g.flush = backing.flush;
    rp.g.is_blockdev = backing.is_blockdev;
    gated = gbits & 8;
    hang_up = gbits & 0x10;
    cut_off = gbits & 0x20;
    model_parse();

    if (pwrite(backing.fd, pattern, STORE_SIZE, 0) != STORE_SIZE)
        abort();

    if (chunk < m.n / 16)
        chunk = m.n / 16;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    int fd = fcntl(backing.fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        abort();
    gone = draining = freed = false;
    /* The handshake timer counts from now, not from the last input. */
    ev_now_update(loop);
    conn = xbd_nbd_conn_new(loop, io, sv[0], fd, &rp.g, &backing, "fuzz", NULL, NULL, gated,
                            on_gone, on_drained, NULL);
    xbd_fuzz_assert(conn);
    while (!eof) {
        if (!closed && xbd_fuzz_send_chunk(sv[1], m.s, m.n, chunk, &sent, &closed)) {
            chunks++;
            idle = 0;
        }
        if (gated && !gone && (closed || chunks > ungate_after)) {
            gated = false;
            xbd_nbd_conn_gate(conn, false);
        }
        if (cut_off && !gone && chunks > ungate_after) {
            xbd_nbd_conn_shut(conn);
            cut = true;
        }
        if (hang_up && closed) {
            close(sv[1]);       /* replies still due fail with EPIPE */
            cut = true;
            break;
        }
        pump(&idle);
        for (;;) {
            ssize_t r = recv(sv[1], rbuf, sizeof(rbuf), 0);

            if (r > 0) {
                take(rbuf, (size_t)r);
                idle = 0;
                continue;
            }
            if (r == 0 || errno == ECONNRESET)
                eof = true;
            break;
        }
    }
    take(NULL, 0);
    xbd_fuzz_assert(gone || hang_up);   /* EOF: the server closed */
    while (!freed)
        pump(&idle);
    if (!hang_up || !closed)
        close(sv[1]);

    /* A client within the server's limits that ends with ABORT or DISC
     * gets every answer first (unless it hung up or was cut off). */
    if (m.within_limits && m.abort_end && !cut)
        xbd_fuzz_assert(rp.st == RS_END);
    if (m.within_limits && m.disc && !cut) {
        xbd_fuzz_assert(rp.st == RS_REP_HDR && rp.have == 0);
        for (unsigned i = 0; i < m.nreqs; i++)
            xbd_fuzz_assert(m.reqs[i].answered);
    }
    check_store();
    free(m.s);
    return 0;
}
