/*
 * fuzz-control.c - the control socket's request handling: the line
 * framing of src/control.c (partial reads, CR LF, the 65536-byte limit,
 * a last line without its newline, the per-iteration budget, lingering
 * after too_long) and the JSON requests of src/control_cmd.c, on the
 * daemon's own code and event loop.
 *
 * control.c is compiled into this harness (#include) so that a client
 * can be handed a socketpair end with its own client_new(): no
 * listening socket, no file system.  The host has no device (the
 * commands that list devices then answer an empty list or not_found);
 * reload, shutdown and settle reach stubs.
 *
 * Input: [0] the size of the chunks the client writes (1 + [0]*37 %
 * 8192, at least a 16th of the rest), then the bytes the client sends
 * before closing its side; the daemon's loop runs between chunks.
 * Beyond memory safety: every reply is one JSON object with a boolean
 * "ok" (and a known "code" when false), there are no more replies than
 * requests, and the connection ends.
 */
#include "../../src/control.c"

#include <fcntl.h>
#include <json-c/json.h>

#include "device_internal.h"
#include "fuzz.h"

static struct xbd_host host;
static struct xbd_control ctl;
static unsigned shutdowns;
static enum xbd_stop_mode first_stop;

/* Succeeds: a failed reload is logged as an error, on stderr here,
 * which would slow the fuzzer down to the speed of the terminal. */
static int stub_reload(void *opaque, char *err, size_t errlen)
{
    (void)opaque;
    (void)err;
    (void)errlen;
    return 0;
}

static void stub_shutdown(void *opaque, enum xbd_stop_mode mode)
{
    (void)opaque;
    if (!shutdowns++)
        first_stop = mode;
}

/* Stopping after the first shutdown, as the daemon: later ones are
 * answered by what that one asked for. */
static bool stub_stopping(void *opaque, enum xbd_stop_mode *mode)
{
    (void)opaque;
    *mode = first_stop;
    return shutdowns > 0;
}

static const struct xbd_control_ops ops = { stub_reload, stub_shutdown, stub_stopping };

/* A settle needs the daemon's xenstore connection (a barrier watch),
 * which this harness has not; these stand in for src/settle.c (so the
 * linker leaves that one out of libxenblkd.a) and answer at the loop's
 * next iteration, settled unless the request's timeout is 0, so that
 * control.c's waiting client is exercised: its reply, the requests it
 * holds back meanwhile, its cancellation when the client goes. */
struct xbd_settle {
    ev_timer t;                 /* first: the callback gets this pointer */
    xbd_settle_done_fn *done;
    void *opaque;
    bool settled;
};

static void settle_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct xbd_settle *s = (struct xbd_settle *)t;
    const struct xbd_settle_result r = { s->settled, 0., 1, s->settled ? NULL : "a stub" };

    (void)revents;
    ev_timer_stop(loop, t);
    s->done(s->opaque, &r);
    free(s);
}

struct xbd_settle *xbd_settle_start(struct xbd_host *h, double timeout,
                                    xbd_settle_done_fn *done, void *opaque)
{
    struct xbd_settle *s = calloc(1, sizeof(*s));

    (void)h;
    if (!s)
        return NULL;
    s->done = done;
    s->opaque = opaque;
    s->settled = timeout > 0.;
    ev_timer_init(&s->t, settle_cb, 0., 0.);
    ev_timer_start(ctl.loop, &s->t);
    return s;
}

void xbd_settle_cancel(struct xbd_settle *s)
{
    if (!s)
        return;
    ev_timer_stop(ctl.loop, &s->t);
    free(s);
}

static void setup(void)
{
    if (ctl.loop)
        return;
    xbd_log_init(true, XBD_LOG_ERR);
    ctl.loop = ev_loop_new(EVFLAG_AUTO);
    if (!ctl.loop)
        abort();
    ctl.fd = -1;
    ctl.env = (struct xbd_ctl_env){ &host, &ops, NULL, xbd_ctl_now(), &ctl.counters,
                                    &ctl.cache };
    control_init_allowance(&ctl);
}

static void check_reply(const char *line, size_t len)
{
    static const char *const codes[] = {
        "bad_json", "bad_request", "unsupported_version", "unknown_command",
        "too_long", "permission_denied", "not_found", "stopping", "failed",
    };
    json_object *o = json_tokener_parse(line), *ok, *code;
    bool known = false;

    xbd_fuzz_assert(len > 0 && strlen(line) == len);
    xbd_fuzz_assert(o && json_object_is_type(o, json_type_object));
    xbd_fuzz_assert(json_object_object_get_ex(o, "ok", &ok) &&
                    json_object_is_type(ok, json_type_boolean));
    if (!json_object_get_boolean(ok)) {
        xbd_fuzz_assert(json_object_object_get_ex(o, "code", &code) &&
                        json_object_is_type(code, json_type_string));
        for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
            known |= !strcmp(json_object_get_string(code), codes[i]);
        xbd_fuzz_assert(known);
    }
    json_object_put(o);
}

/* Replies received so far: check the complete lines, keep the rest. */
static size_t take_replies(char *buf, size_t *len, size_t *nreplies)
{
    char *nl;
    size_t done = 0;

    while ((nl = memchr(buf + done, '\n', *len - done))) {
        *nl = '\0';
        check_reply(buf + done, (size_t)(nl - (buf + done)));
        (*nreplies)++;
        done = (size_t)(nl - buf) + 1;
    }
    memmove(buf, buf + done, *len - done);
    *len -= done;
    return done;
}

/* Run the loop once without blocking; fail on a connection that makes
 * no progress for too long (the daemon would hold a client forever). */
static void pump(unsigned *idle)
{
    ev_run(ctl.loop, EVRUN_NOWAIT);
    xbd_fuzz_assert(++*idle < 100000);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct xbd_fuzz_in in = { data, size };
    size_t chunk = 1 + (size_t)(xbd_fuzz_take(&in, 1) * 37 % 8192);
    static char rbuf[1 << 20];
    size_t rlen = 0, nreplies = 0, sent = 0, lines = 1;
    unsigned idle = 0;
    bool eof = false;
    int sv[2];

    setup();
    shutdowns = 0;              /* each input is a daemon that runs */
    /* At most 16 chunks: each costs a loop iteration and syscalls. */
    if (chunk < in.left / 16)
        chunk = in.left / 16;
    for (size_t i = 0; i < in.left; i++)
        lines += in.p[i] == '\n';
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    client_new(&ctl, sv[0]);
    xbd_fuzz_assert(ctl.nclients == 1);
    bool closed = false;
    if (!in.left) {
        shutdown(sv[1], SHUT_WR);
        closed = true;
    }
    while (!eof) {
        if (!closed && xbd_fuzz_send_chunk(sv[1], in.p, in.left, chunk, &sent, &closed))
            idle = 0;
        pump(&idle);
        for (;;) {
            ssize_t r = recv(sv[1], rbuf + rlen, sizeof(rbuf) - rlen - 1, 0);
            if (r > 0) {
                rlen += (size_t)r;
                rbuf[rlen] = '\0';
                idle = 0;
                take_replies(rbuf, &rlen, &nreplies);
                xbd_fuzz_assert(rlen < sizeof(rbuf) - 1);
                continue;
            }
            if (r == 0 || errno == ECONNRESET)
                eof = true;
            break;
        }
    }
    /* Nothing after the last newline: every reply is a whole line. */
    xbd_fuzz_assert(rlen == 0);
    xbd_fuzz_assert(nreplies <= lines);
    close(sv[1]);
    while (ctl.nclients)
        pump(&idle);
    return 0;
}
