/*
 * xsim-blkfront - a simulated guest with one or more Xen block frontends,
 * for tests, benchmarks and people.  See tests/frontend/README.md.
 *
 * Exit status: 0 when every step completed (negotiation, workload with
 * every read verified, raw expectations, close), 1 on any failure, 2 on a
 * usage error.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xen/io/xenbus.h>

#include "blkfront.h"

#define MAX_VDEVS 16
#define MAX_RAW 64

enum raw_expect { EXPECT_ANY, EXPECT_STATUS, EXPECT_NONE };

struct raw_cmd {
    struct bf_raw r;
    unsigned vdev;            /* 0: first disk */
    bool have_handle;
    enum raw_expect expect;
    int16_t expect_status;
    int timeout_ms;
    char after[512];          /* sent once this file exists ("": at once) */
    const char *text;
};

struct opts {
    long domid;
    unsigned vdev[MAX_VDEVS];
    unsigned nvdev;
    struct bf_config cfg;
    struct bf_wl_opts wl;
    const char *stats_json;
    double hold;
    const char *hold_until;
    const char *linger_until;
    bool close;
    unsigned reconnect;
    struct raw_cmd raw[MAX_RAW];
    unsigned nraw;
    bool workload_given;
    bool bench;               /* --bench: load generator instead of the workload */
    struct bf_bench_opts bo;
};

static void usage(FILE *f)
{
    fputs(
"usage: xsim-blkfront --domid D --vdev V [--vdev V ...] [options]\n"
"Connect a simulated guest's block frontend(s) to their backend, run a\n"
"workload with data verification, and report.  Needs XENSIM_DIR and\n"
"XENSTORED_PATH (see tests/harness/env.sh).\n"
"\n"
"Negotiation:\n"
"  --protocol P        native|x86_32-abi|x86_64-abi|none (default x86_64-abi;\n"
"                      none omits the key and uses the x86_32 layout)\n"
"  --ring-order N      requested ring-page-order (default 0)\n"
"  --queues N          requested queues (default 1)\n"
"  --no-persistent     write feature-persistent=0\n"
"  --no-indirect       never use indirect descriptors\n"
"  --max-indirect N    indirect segments per request (default 32)\n"
"Workload:\n"
"  --workload W        verify|read|write|flush|discard|mixed|fill|none\n"
"                      (default verify, or none when --raw is given)\n"
"  --qd N              requests in flight per disk (default 32)\n"
"  --bs BYTES          largest request (default 128K; K, M, G suffixes)\n"
"  --count N           requests (verify: write+read pairs; default 256)\n"
"  --seed S            random seed (default 1)\n"
"  --span BYTES        only use the first BYTES of the disk\n"
"  --gen G             generation written by fill (default 1)\n"
"  --expect-gen G      the disk holds generation G everywhere (0 = zeros):\n"
"                      read/verify/mixed check every sector against it\n"
"  --stop-when FILE    once FILE exists, start no more requests, let the\n"
"                      started ones complete, and end the workload (and\n"
"                      start no further --reconnect cycle); with --bench,\n"
"                      end the timed phase (--seconds is then a limit)\n"
"Raw requests (repeatable, run after the workload):\n"
"  --raw SPEC          comma-separated key=value: op=read|write|barrier|flush|\n"
"                      discard|indirect|N, nr_segments=N, sector=S, handle=H,\n"
"                      id=I, indirect_op=read|write|N, nr_sectors=N, flag=N,\n"
"                      first=F, last=L, gref=N, indirect_gref=N, data_segs=N,\n"
"                      ro=0|1, disk=VDEV, timeout=MS,\n"
"                      expect=okay|error|eopnotsupp|N|none|any (default any),\n"
"                      after=FILE (sent once FILE exists, e.g. once the test\n"
"                      restarted the backend; waits --timeout at most)\n"
"Life cycle and output:\n"
"  --hold SECONDS      stay connected afterwards (closes if the backend does)\n"
"  --hold-until FILE   end the hold as soon as FILE exists (--hold: at most)\n"
"  --linger-until FILE before exiting, whatever happened, keep the domain\n"
"                      until FILE exists or a signal comes (tests that need\n"
"                      the guest alive after its backend went away)\n"
"  --close             go Closing/Closed at the end, check every grant ends\n"
"  --reconnect N       close and reconnect N more times, workload each time\n"
"                      (with --stop-when, N may be open-ended: up to 10^8)\n"
"  --timeout SECONDS   limit of every wait (default 20)\n"
"  --stats-json FILE   write negotiated values and counters as JSON\n"
"\n"
"Load generator (tests/bench; replaces the workload, verifies nothing):\n"
"  --bench RW          randread|randwrite|read|write, every request --bs bytes\n"
"  --seconds S         run that long (default 5), then drain\n"
"  --touch             fill/copy the data like a guest (default: untouched)\n"
"  --bench-start FILE  after connecting, wait for FILE to exist, then start\n"
"  --bench-json FILE   result: IOPS, MiB/s, p50/p99 latency, own CPU per request\n"
"  --bench-count N     issue at most N requests, then drain (a bench run\n"
"                      itself reads and writes no xenstore)\n"
"  -v, --verbose       more messages on stderr (repeat for xenstore writes)\n"
"  -h, --help\n", f);
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "xsim-blkfront: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'xsim-blkfront --help'.\n");
    exit(2);
}

static uint64_t parse_num(const char *s, uint64_t max, const char *what)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        die_usage("%s: expected a non-negative number", what);
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || v > max)
        die_usage("%s: invalid or out of range value", what);
    return v;
}

/* A size in bytes, with an optional K, M or G suffix (powers of 1024). */
static uint64_t parse_size(const char *s, uint64_t max, const char *what)
{
    char buf[64];
    size_t n = strlen(s);
    uint64_t mult = 1;
    if (n > 0 && n < sizeof(buf) && strchr("kKmMgG", s[n - 1])) {
        char c = s[n - 1];
        mult = (c == 'k' || c == 'K') ? 1024u : (c == 'm' || c == 'M') ? 1024u * 1024u : 1024u * 1024u * 1024u;
        memcpy(buf, s, n - 1);
        buf[n - 1] = '\0';
        s = buf;
    }
    uint64_t v = parse_num(s, max / mult, what);
    return v * mult;
}

static unsigned parse_vdev(const char *s)
{
    /* xvdX as Linux names them: major 202, 16 minors per disk. */
    if (!strncmp(s, "xvd", 3) && s[3] >= 'a' && s[3] <= 'z' && !s[4])
        return (202u << 8) | ((unsigned)(s[3] - 'a') << 4);
    return (unsigned)parse_num(s, 0xffffffffu, "--vdev");
}

static int parse_op(const char *v, uint8_t *op)
{
    static const char *const names[] = { "read", "write", "barrier", "flush", "reserved1", "discard", "indirect" };
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(v, names[i])) {
            *op = (uint8_t)i;
            return 0;
        }
    *op = (uint8_t)parse_num(v, 255, "--raw op");
    return 0;
}

static void parse_expect(struct raw_cmd *c, const char *v)
{
    if (!strcmp(v, "any")) {
        c->expect = EXPECT_ANY;
    } else if (!strcmp(v, "none")) {
        c->expect = EXPECT_NONE;
    } else {
        c->expect = EXPECT_STATUS;
        if (!strcmp(v, "okay"))
            c->expect_status = BLKIF_RSP_OKAY;
        else if (!strcmp(v, "error"))
            c->expect_status = BLKIF_RSP_ERROR;
        else if (!strcmp(v, "eopnotsupp"))
            c->expect_status = BLKIF_RSP_EOPNOTSUPP;
        else {
            char *end;
            long s = strtol(v, &end, 0);
            if (*end || s < INT16_MIN || s > INT16_MAX)
                die_usage("--raw expect=%s: expected okay|error|eopnotsupp|none|any|number", v);
            c->expect_status = (int16_t)s;
        }
    }
}

/* One raw key=value. */
static void raw_key(struct raw_cmd *c, const char *k, const char *v, bool *have_segs, bool *have_data)
{
    struct bf_wire_req *w = &c->r.w;
    if (!strcmp(k, "op")) {
        parse_op(v, &w->operation);
    } else if (!strcmp(k, "nr_segments")) {
        uint64_t n = parse_num(v, 65535, "--raw nr_segments");
        w->nr_segments = (uint8_t)n;
        w->ind_nr_segments = (uint16_t)n;
        if (n > 255)
            w->nr_segments = 255;
        *have_segs = true;
    } else if (!strcmp(k, "sector")) {
        w->sector_number = parse_num(v, UINT64_MAX, "--raw sector");
    } else if (!strcmp(k, "handle")) {
        w->handle = (uint16_t)parse_num(v, 65535, "--raw handle");
        c->have_handle = true;
    } else if (!strcmp(k, "id")) {
        w->id = parse_num(v, UINT64_MAX, "--raw id");
        c->r.keep_id = true;
    } else if (!strcmp(k, "indirect_op")) {
        parse_op(v, &w->indirect_op);
    } else if (!strcmp(k, "nr_sectors")) {
        w->nr_sectors = parse_num(v, UINT64_MAX, "--raw nr_sectors");
    } else if (!strcmp(k, "flag")) {
        w->flag = (uint8_t)parse_num(v, 255, "--raw flag");
    } else if (!strcmp(k, "first") || !strcmp(k, "last")) {
        uint8_t x = (uint8_t)parse_num(v, 255, "--raw first/last");
        for (unsigned i = 0; i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++) {
            if (k[0] == 'f')
                w->seg[i].first_sect = x;
            else
                w->seg[i].last_sect = x;
        }
    } else if (!strcmp(k, "gref")) {
        c->r.gref_override = (int)parse_num(v, 0x7fffffff, "--raw gref");
    } else if (!strcmp(k, "indirect_gref")) {
        w->indirect_grefs[0] = (grant_ref_t)parse_num(v, 0xffffffffu, "--raw indirect_gref");
    } else if (!strcmp(k, "data_segs")) {
        c->r.data_segs = (unsigned)parse_num(v, 4096, "--raw data_segs");
        *have_data = true;
    } else if (!strcmp(k, "ro")) {
        c->r.readonly_grants = parse_num(v, 1, "--raw ro") == 1;
    } else if (!strcmp(k, "disk")) {
        c->vdev = parse_vdev(v);
    } else if (!strcmp(k, "timeout")) {
        c->timeout_ms = (int)parse_num(v, 3600000, "--raw timeout");
    } else if (!strcmp(k, "expect")) {
        parse_expect(c, v);
    } else if (!strcmp(k, "after")) {
        if (!*v || strlen(v) >= sizeof(c->after))
            die_usage("--raw after: a path of 1..%zu bytes", sizeof(c->after) - 1);
        strcpy(c->after, v);
    } else {
        die_usage("--raw: unknown key '%s'", k);
    }
}

static void parse_raw(struct opts *o, const char *spec)
{
    if (o->nraw == MAX_RAW)
        die_usage("too many --raw requests (max %d)", MAX_RAW);
    struct raw_cmd *c = &o->raw[o->nraw++];
    memset(c, 0, sizeof(*c));
    c->text = spec;
    c->r.gref_override = -1;
    c->timeout_ms = -1;
    c->r.w.operation = 255;
    for (unsigned i = 0; i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++)
        c->r.w.seg[i].last_sect = 7;
    bool have_segs = false, have_data = false, have_op = false;
    char *copy = strdup(spec), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            die_usage("--raw: expected key=value, got '%s'", tok);
        *eq = '\0';
        if (!strcmp(tok, "op"))
            have_op = true;
        raw_key(c, tok, eq + 1, &have_segs, &have_data);
    }
    free(copy);
    if (!have_op)
        die_usage("--raw %s: op= is required", spec);
    uint8_t op = c->r.w.operation;
    if (!have_segs) {
        bool data = op == BLKIF_OP_READ || op == BLKIF_OP_WRITE || op == BLKIF_OP_INDIRECT;
        c->r.w.nr_segments = data ? 1 : 0;
        c->r.w.ind_nr_segments = data ? 1 : 0;
    }
    if (op == BLKIF_OP_INDIRECT && c->r.w.indirect_op == 0 && !strstr(spec, "indirect_op"))
        c->r.w.indirect_op = BLKIF_OP_READ;
    if (!have_data)
        c->r.data_segs = op == BLKIF_OP_INDIRECT ? c->r.w.ind_nr_segments : c->r.w.nr_segments;
    if (!strstr(spec, "ro="))
        c->r.readonly_grants = op == BLKIF_OP_WRITE ||
            (op == BLKIF_OP_INDIRECT && c->r.w.indirect_op == BLKIF_OP_WRITE);
}

static enum bf_proto parse_proto(const char *s)
{
    if (!strcmp(s, "native")) return BF_PROTO_NATIVE;
    if (!strcmp(s, "x86_32-abi")) return BF_PROTO_X86_32;
    if (!strcmp(s, "x86_64-abi")) return BF_PROTO_X86_64;
    if (!strcmp(s, "none")) return BF_PROTO_NONE;
    die_usage("--protocol: expected native|x86_32-abi|x86_64-abi|none, got '%s'", s);
}

enum { O_PROTO = 256, O_RORDER, O_QUEUES, O_NOPERS, O_NOIND, O_MAXIND, O_WL, O_QD, O_BS, O_COUNT,
       O_SEED, O_STATS, O_HOLD, O_CLOSE, O_RECON, O_RAW, O_TIMEOUT, O_SPAN, O_GEN, O_EGEN,
       O_DOMID, O_VDEV, O_BENCH, O_SECONDS, O_TOUCH, O_BSTART, O_BJSON,
       O_HOLDUNTIL, O_LINGER, O_BCOUNT, O_STOPWHEN };

static void parse_args(struct opts *o, int argc, char **argv)
{
    static const struct option lo[] = {
        { "domid", required_argument, NULL, O_DOMID }, { "vdev", required_argument, NULL, O_VDEV },
        { "protocol", required_argument, NULL, O_PROTO }, { "ring-order", required_argument, NULL, O_RORDER },
        { "queues", required_argument, NULL, O_QUEUES }, { "no-persistent", no_argument, NULL, O_NOPERS },
        { "no-indirect", no_argument, NULL, O_NOIND }, { "max-indirect", required_argument, NULL, O_MAXIND },
        { "workload", required_argument, NULL, O_WL }, { "qd", required_argument, NULL, O_QD },
        { "bs", required_argument, NULL, O_BS }, { "count", required_argument, NULL, O_COUNT },
        { "seed", required_argument, NULL, O_SEED }, { "stats-json", required_argument, NULL, O_STATS },
        { "hold", required_argument, NULL, O_HOLD }, { "close", no_argument, NULL, O_CLOSE },
        { "hold-until", required_argument, NULL, O_HOLDUNTIL },
        { "linger-until", required_argument, NULL, O_LINGER },
        { "stop-when", required_argument, NULL, O_STOPWHEN },
        { "reconnect", required_argument, NULL, O_RECON }, { "raw", required_argument, NULL, O_RAW },
        { "timeout", required_argument, NULL, O_TIMEOUT }, { "span", required_argument, NULL, O_SPAN },
        { "gen", required_argument, NULL, O_GEN }, { "expect-gen", required_argument, NULL, O_EGEN },
        { "bench", required_argument, NULL, O_BENCH }, { "seconds", required_argument, NULL, O_SECONDS },
        { "touch", no_argument, NULL, O_TOUCH }, { "bench-start", required_argument, NULL, O_BSTART },
        { "bench-json", required_argument, NULL, O_BJSON },
        { "bench-count", required_argument, NULL, O_BCOUNT },
        { "verbose", no_argument, NULL, 'v' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    char *end;
    memset(o, 0, sizeof(*o));
    o->domid = -1;
    bf_config_default(&o->cfg);
    o->wl.kind = BF_WL_VERIFY;
    o->wl.bs = o->cfg.bs_max;
    o->wl.count = 256;
    o->wl.seed = 1;
    o->wl.gen = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":vh", lo, NULL)) != -1) {
        switch (c) {
        case O_DOMID: o->domid = (long)parse_num(optarg, DOMID_FIRST_RESERVED - 1, "--domid"); break;
        case O_VDEV:
            if (o->nvdev == MAX_VDEVS)
                die_usage("too many --vdev (max %d)", MAX_VDEVS);
            o->vdev[o->nvdev++] = parse_vdev(optarg);
            break;
        case O_PROTO: o->cfg.proto = parse_proto(optarg); break;
        case O_RORDER: o->cfg.ring_order = (unsigned)parse_num(optarg, 31, "--ring-order"); break;
        case O_QUEUES: o->cfg.queues = (unsigned)parse_num(optarg, 64, "--queues"); break;
        case O_NOPERS: o->cfg.persistent = false; break;
        case O_NOIND: o->cfg.indirect = false; break;
        case O_MAXIND: o->cfg.max_indirect = (unsigned)parse_num(optarg, 4096, "--max-indirect"); break;
        case O_WL:
            if (bf_wl_parse(optarg, &o->wl.kind) < 0)
                die_usage("--workload: expected verify|read|write|flush|discard|mixed|fill|none, got '%s'", optarg);
            o->workload_given = true;
            break;
        case O_QD: o->cfg.qd = (unsigned)parse_num(optarg, 4096, "--qd"); break;
        case O_BS: o->wl.bs = (uint32_t)parse_size(optarg, 4096u * 4096u, "--bs"); break;
        case O_COUNT: o->wl.count = parse_num(optarg, UINT64_MAX, "--count"); break;
        case O_SEED: o->wl.seed = parse_num(optarg, UINT64_MAX, "--seed"); break;
        case O_STATS: o->stats_json = optarg; break;
        case O_HOLDUNTIL: o->hold_until = optarg; break;
        case O_LINGER: o->linger_until = optarg; break;
        case O_STOPWHEN: o->wl.stop_file = optarg; break;
        case O_HOLD:
            o->hold = strtod(optarg, &end);
            if (*end || o->hold < 0)
                die_usage("--hold: expected seconds, got '%s'", optarg);
            break;
        case O_CLOSE: o->close = true; break;
        case O_RECON: o->reconnect = (unsigned)parse_num(optarg, 100000000, "--reconnect"); break;
        case O_RAW: parse_raw(o, optarg); break;
        case O_TIMEOUT: {
            double t = strtod(optarg, &end);
            if (*end || t <= 0 || t > 3600)
                die_usage("--timeout: expected seconds (0..3600], got '%s'", optarg);
            o->cfg.timeout_ms = (unsigned)(t * 1000);
            break;
        }
        case O_SPAN: o->wl.span = parse_size(optarg, UINT64_MAX, "--span"); break;
        case O_GEN: o->wl.gen = (uint32_t)parse_num(optarg, 0xfffffffeu, "--gen"); break;
        case O_EGEN:
            o->wl.expect_gen = (uint32_t)parse_num(optarg, 0xfffffffeu, "--expect-gen");
            o->wl.have_expect_gen = true;
            break;
        case O_BENCH:
            if (bf_bench_parse(optarg, &o->bo.kind) < 0)
                die_usage("--bench: expected randread|randwrite|read|write, got '%s'", optarg);
            o->bench = true;
            break;
        case O_SECONDS:
            o->bo.seconds = strtod(optarg, &end);
            if (*end || !(o->bo.seconds > 0) || o->bo.seconds > 86400)
                die_usage("--seconds: expected seconds (0..86400], got '%s'", optarg);
            break;
        case O_TOUCH: o->bo.touch = true; break;
        case O_BSTART: o->bo.start_file = optarg; break;
        case O_BJSON: o->bo.json = optarg; break;
        case O_BCOUNT: o->bo.count = parse_num(optarg, UINT64_MAX, "--bench-count"); break;
        case 'v': o->cfg.verbose++; break;
        case 'h': usage(stdout); exit(0);
        case ':': die_usage("option %s needs a value", argv[optind - 1]); break;
        default: die_usage("unknown option '%s'", argv[optind - 1]); break;
        }
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
    /* More than 1000 cycles only as an open-ended run the test stops. */
    if (o->reconnect > 1000 && !o->wl.stop_file)
        die_usage("%s", "--reconnect: at most 1000 without --stop-when");
    if (o->domid < 0)
        die_usage("%s", "--domid is required");
    if (o->domid == 0)
        die_usage("%s", "--domid 0 is the backend's domain: a guest needs another domid");
    if (o->nvdev == 0)
        die_usage("%s", "at least one --vdev is required");
    if (o->cfg.queues == 0)
        die_usage("%s", "--queues must be at least 1");
    if (o->cfg.qd == 0)
        die_usage("%s", "--qd must be at least 1");
    if (o->wl.bs < 512 || o->wl.bs % 512)
        die_usage("%s", "--bs must be a non-zero multiple of 512");
    if (!o->workload_given && o->nraw > 0)
        o->wl.kind = BF_WL_NONE;
    o->cfg.bs_max = o->wl.bs;
    if (o->bench && (o->workload_given || o->nraw > 0))
        die_usage("%s", "--bench replaces the workload: no --workload or --raw with it");
    o->bo.bs = o->wl.bs;
    o->bo.seed = o->wl.seed;
    o->bo.span = o->wl.span;
    o->bo.stop_file = o->wl.stop_file;
    if (o->bo.seconds == 0)
        o->bo.seconds = 5;
}

static void on_signal(int sig)
{
    (void)sig;
    bf_interrupted = 1;
}

static bf_disk *raw_disk(bf_disk **disks, unsigned n, unsigned vdev)
{
    if (vdev == 0)
        return disks[0];
    for (unsigned i = 0; i < n; i++)
        if (bf_disk_vdev(disks[i]) == vdev)
            return disks[i];
    return NULL;
}

static const char *status_name(int16_t s)
{
    switch (s) {
    case BLKIF_RSP_OKAY: return "okay";
    case BLKIF_RSP_ERROR: return "error";
    case BLKIF_RSP_EOPNOTSUPP: return "eopnotsupp";
    default: return "unknown";
    }
}

/* Wait (nothing in flight) until the test creates path. */
static int wait_file(const char *path, unsigned timeout_ms)
{
    struct timespec tick = { 0, 20 * 1000 * 1000 };
    unsigned waited = 0;

    while (access(path, F_OK) != 0) {
        if (waited >= timeout_ms) {
            fprintf(stderr, "xsim-blkfront: %s did not appear within %u ms\n", path, timeout_ms);
            return -1;
        }
        nanosleep(&tick, NULL);
        waited += 20;
    }
    return 0;
}

static int run_raw(const struct opts *o, bf_disk **disks, unsigned n)
{
    int rc = 0;
    for (unsigned i = 0; i < o->nraw; i++) {
        const struct raw_cmd *c = &o->raw[i];
        bf_disk *d = raw_disk(disks, n, c->vdev);
        if (!d) {
            fprintf(stderr, "xsim-blkfront: --raw %s: disk %u is not one of the --vdev\n", c->text, c->vdev);
            rc = -1;
            continue;
        }
        if (c->after[0] && wait_file(c->after, o->cfg.timeout_ms) < 0) {
            rc = -1;
            continue;
        }
        struct bf_raw r = c->r;
        if (!c->have_handle)
            r.w.handle = (uint16_t)bf_disk_vdev(d);
        struct bf_wire_rsp rsp;
        int timeout = c->timeout_ms >= 0 ? c->timeout_ms : (int)o->cfg.timeout_ms;
        int got = bf_raw_submit(d, &r, &rsp, timeout);
        if (got < 0) {
            bf_disk_error(d, "raw request '%s' failed", c->text);
            rc = -1;
            continue;
        }
        if (got == 0) {
            printf("raw vdev=%u: no response within %d ms\n", bf_disk_vdev(d), timeout);
            if (c->expect != EXPECT_NONE) {
                bf_disk_error(d, "raw request '%s': expected a response, none came within %d ms", c->text, timeout);
                rc = -1;
            }
            continue;
        }
        printf("raw vdev=%u: status=%d (%s) operation=%u id=0x%" PRIx64 "\n", bf_disk_vdev(d),
               rsp.status, status_name(rsp.status), rsp.operation, rsp.id);
        fflush(stdout);     /* a test may wait for the line (after=) */
        if (c->expect == EXPECT_NONE) {
            bf_disk_error(d, "raw request '%s': expected no response, got status %d", c->text, rsp.status);
            rc = -1;
        } else if (c->expect == EXPECT_STATUS && rsp.status != c->expect_status) {
            bf_disk_error(d, "raw request '%s': expected status %d (%s), got %d (%s)", c->text,
                          c->expect_status, status_name(c->expect_status), rsp.status, status_name(rsp.status));
            rc = -1;
        }
    }
    fflush(stdout);
    return rc;
}

static int write_stats(const struct opts *o, bf_host *h, bf_disk **disks, unsigned n)
{
    FILE *f = fopen(o->stats_json, "w");
    if (!f) {
        fprintf(stderr, "xsim-blkfront: cannot write %s: %s\n", o->stats_json, strerror(errno));
        return -1;
    }
    int rc = bf_stats_json(f, h, disks, n);
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

/* One connection cycle: connect every disk, run the workload and the raw
 * requests. */
static int run_cycle(const struct opts *o, bf_host *h, bf_disk **disks, bf_genmap **maps, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (bf_disk_connect(disks[i]) < 0)
            return -1;
    int rc = o->bench ? bf_bench_run(h, disks, n, &o->bo) : bf_workload_run(h, disks, maps, n, &o->wl);
    if (run_raw(o, disks, n) < 0)
        rc = -1;
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o;
    bf_disk *disks[MAX_VDEVS];
    bf_genmap *maps[MAX_VDEVS];
    int rc = 0;

    parse_args(&o, argc, argv);
    if (!getenv("XENSIM_DIR")) {
        fprintf(stderr, "xsim-blkfront: XENSIM_DIR is not set: run inside a simulated host "
                "(tests/harness/env.sh, xsim_start)\n");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    uint64_t pages = 64 + (uint64_t)o.nvdev * bf_pages_needed(&o.cfg);
    if (pages > 1u << 22) {
        fprintf(stderr, "xsim-blkfront: this configuration needs %" PRIu64 " guest pages: lower --qd, --bs or --queues\n", pages);
        return 1;
    }
    bf_host *h = bf_host_open((domid_t)o.domid, (uint32_t)pages, (uint32_t)pages + 64);
    if (!h)
        return 1;
    for (unsigned i = 0; i < o.nvdev; i++) {
        disks[i] = bf_disk_new(h, o.vdev[i], &o.cfg);
        maps[i] = bf_genmap_new();
        if (!disks[i] || !maps[i]) {
            fprintf(stderr, "xsim-blkfront: out of memory\n");
            return 1;
        }
    }
    for (unsigned cycle = 0; cycle <= o.reconnect && rc == 0; cycle++) {
        /* Asked to stop (--stop-when): the cycle that saw it ended its
         * workload; no new one starts. */
        if (cycle > 0 && o.wl.stop_file && access(o.wl.stop_file, F_OK) == 0) {
            printf("xsim-blkfront: %s exists: no reconnect after cycle %u\n", o.wl.stop_file, cycle);
            fflush(stdout);
            break;
        }
        if (cycle > 0) {
            for (unsigned i = 0; i < o.nvdev && rc == 0; i++)
                if (bf_disk_close(disks[i]) < 0 || bf_disk_reinit(disks[i]) < 0)
                    rc = -1;
            if (rc < 0)
                break;
        }
        if (run_cycle(&o, h, disks, maps, o.nvdev) < 0)
            rc = -1;
    }
    if (rc == 0 && o.hold > 0) {
        /* Tests wait for this line before they disturb the connection, so
         * that the workload itself is never cut short. */
        printf("xsim-blkfront: workload done, holding for %g s\n", o.hold);
        fflush(stdout);
        if (bf_host_hold_until(h, o.hold, o.hold_until) < 0)
            rc = -1;
    }
    if (o.close) {
        for (unsigned i = 0; i < o.nvdev; i++)
            if (bf_disk_close(disks[i]) < 0)
                rc = -1;
        /* Cross-check with the simulation's own view of the grant table. */
        int busy = xsg_grants_in_use(bf_host_dom(h));
        if (busy != 0) {
            fprintf(stderr, "xsim-blkfront: error: after Closed, %d grant(s) of domain %ld are still in use by a backend\n",
                    busy, o.domid);
            rc = -1;
        }
    }
    for (unsigned i = 0; i < o.nvdev; i++)
        if (bf_disk_stats(disks[i])->errors > 0)
            rc = -1;
    if (o.stats_json && write_stats(&o, h, disks, o.nvdev) < 0)
        rc = -1;
    if (bf_interrupted) {
        fprintf(stderr, "xsim-blkfront: interrupted\n");
        rc = -1;
    }
    for (unsigned i = 0; i < o.nvdev; i++)
        bf_genmap_free(maps[i]);
    /* The domain lives as long as this process: keep it for the test. */
    while (o.linger_until && !bf_interrupted && access(o.linger_until, F_OK) != 0)
        usleep(20000);
    bf_host_close(h);
    return rc == 0 ? 0 : 1;
}
