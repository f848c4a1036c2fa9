/*
 * control.c - the control socket's connections, on the daemon's one event
 * loop (the protocol and its commands: control_cmd.c).
 *
 * The loop also serves every guest's rings, so a control client must never
 * be able to hold it: every socket is non-blocking, a request line is
 * bounded (XBD_CTL_MAX_LINE), so are the clients (XBD_CTL_MAX_CLIENTS),
 * the requests handled per client and loop iteration (XBD_CTL_BUDGET), a
 * client's unread replies (XBD_CTL_OUT_MAX) and its idle time
 * (XBD_CTL_IDLE_S).  Nothing a client sends can make the daemon's memory
 * grow past those bounds.
 *
 * Time is bounded too, for the clients that are not root (the socket's
 * group: monitoring): together they get at most XBD_CTL_GROUP_SHARE_MS
 * of the loop per second (bursts of XBD_CTL_GROUP_BURST_MS), and no new
 * request of theirs starts once XBD_CTL_GROUP_TURN_US went into them in
 * one loop iteration.  Their callbacks are timed, whatever they do (a
 * stats reply for many disks takes milliseconds to build); a request
 * over the allowance waits, never fails: the client joins a FIFO, its
 * socket unread (its input stays bounded as above), and a timer resumes
 * the waiting clients in turn once the allowance is back.  Root is
 * trusted and never waits.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "xenblkd/control.h"
#include "xenblkd/log.h"

#include "control_cmd.h"
#include "mkdir_mode.h"
#include "settle.h"

#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Out of fds at accept: stop accepting this long (a level-triggered
 * listening socket would otherwise spin the loop). */
#define XBD_CTL_ACCEPT_BACKOFF 0.5
/* First allocation of a client's input buffer; grows to the line limit. */
#define XBD_CTL_IN_INITIAL 1024u
/* After the last reply of a connection we close (too_long, end of input),
 * unread input is read and thrown away for at most this long before the
 * close: closing with unread data would reset the connection, and the
 * client could lose the reply that says why. */
#define XBD_CTL_LINGER_S 2.0

struct client {
    struct client *prev, *next;
    struct xbd_control *ctl;
    int fd;
    struct xbd_ctl_peer peer;
    ev_io rd, wr;
    ev_timer idle;
    ev_timer more;              /* lines left after the budget */
    struct client *wnext;       /* in ctl's FIFO of clients over the allowance */
    bool waiting;
    char *in;                   /* bytes of requests not handled yet */
    size_t in_len, in_cap;
    char *out;                  /* reply bytes not sent yet: out[out_off..out_len) */
    size_t out_off, out_len, out_cap;
    bool eof;                   /* the client sent everything it will */
    bool closing;               /* no more requests: close once out is sent */
    bool lingering;             /* out sent, our side shut: discard input */
    /* A settle this client waits for: its later requests wait too (the
     * replies keep their order), unread in the socket. */
    struct xbd_settle *settle;
    unsigned settle_ms;
};

struct xbd_control {
    struct ev_loop *loop;
    struct xbd_ctl_env env;
    char *path;
    dev_t st_dev;               /* our socket file, to remove only ours */
    ino_t st_ino;
    int fd;
    ev_io accept_w;
    ev_timer backoff;
    struct client *clients;
    unsigned nclients;
    /* The group's allowance (seconds of loop time; see the top). */
    double tokens, tokens_at;
    unsigned turn_iter;         /* ev_iteration() that turn_spent is for */
    double turn_spent;
    double meter_t0;            /* a group client's callback started; 0: none */
    struct client *whead, *wtail, *resuming;
    ev_timer refill;
    struct xbd_ctl_counters counters;
    struct xbd_ctl_cache cache;
};

/* ---- the group's allowance -------------------------------------------- */

static bool in_group(const struct client *c)
{
    return c->peer.uid != 0;
}

/* Charge what went into group clients since the meter last read. */
static void meter_read(struct xbd_control *ctl)
{
    double now, spent;
    unsigned it = ev_iteration(ctl->loop);

    if (it != ctl->turn_iter) {
        ctl->turn_iter = it;
        ctl->turn_spent = 0.;
    }
    if (ctl->meter_t0 <= 0.)
        return;
    now = xbd_ctl_now();
    spent = now > ctl->meter_t0 ? now - ctl->meter_t0 : 0.;
    ctl->meter_t0 = now;
    ctl->turn_spent += spent;
    ctl->tokens -= spent;
    ctl->counters.group_busy_us += (uint64_t)(spent * 1e6);
}

/* Time a callback of c's (nothing for root's, nor inside a callback
 * already timed).  meter_stop: with the value meter_start returned. */
static bool meter_start(struct client *c)
{
    if (!in_group(c) || c->ctl->meter_t0 > 0.)
        return false;
    c->ctl->meter_t0 = xbd_ctl_now();
    return true;
}

static void meter_stop(struct xbd_control *ctl, bool started)
{
    if (!started)
        return;
    meter_read(ctl);
    ctl->meter_t0 = 0.;
}

static void refill(struct xbd_control *ctl)
{
    double now = xbd_ctl_now();

    ctl->tokens += (now - ctl->tokens_at) * (XBD_CTL_GROUP_SHARE_MS / 1000.);
    if (ctl->tokens > XBD_CTL_GROUP_BURST_MS / 1000.)
        ctl->tokens = XBD_CTL_GROUP_BURST_MS / 1000.;
    ctl->tokens_at = now;
}

/* May c start a request now?  Root: always.  The group: while the
 * allowance lasts, this iteration's share is not spent, and no client
 * waits before it (the one being resumed is at the front). */
static bool may_serve(struct client *c)
{
    struct xbd_control *ctl = c->ctl;

    if (!in_group(c))
        return true;
    meter_read(ctl);
    refill(ctl);
    if (ctl->tokens <= 0. || ctl->turn_spent >= XBD_CTL_GROUP_TURN_US / 1e6)
        return false;
    return !ctl->whead || c == ctl->resuming;
}

/* When the front of the queue may go: now (the next iteration), or
 * when the allowance is back above zero. */
static void refill_arm(struct xbd_control *ctl)
{
    double after = 0.;

    if (ev_is_active(&ctl->refill) || !ctl->whead)
        return;
    if (ctl->tokens <= 0.)
        after = -ctl->tokens / (XBD_CTL_GROUP_SHARE_MS / 1000.) + 1e-4;
    ev_timer_set(&ctl->refill, after, 0.);
    ev_timer_start(ctl->loop, &ctl->refill);
}

/* c has a request it may not start yet: to the back of the queue, its
 * socket unread meanwhile. */
static void client_wait(struct client *c)
{
    struct xbd_control *ctl = c->ctl;

    ev_io_stop(ctl->loop, &c->rd);
    ev_timer_stop(ctl->loop, &c->more);
    if (!c->waiting) {
        c->waiting = true;
        c->wnext = NULL;
        if (ctl->wtail)
            ctl->wtail->wnext = c;
        else
            ctl->whead = c;
        ctl->wtail = c;
        ctl->counters.deferred++;
        ctl->counters.waiting++;
    }
    refill_arm(ctl);
}

static void client_unwait(struct client *c)
{
    struct xbd_control *ctl = c->ctl;
    struct client **pp = &ctl->whead, *prev = NULL;

    if (!c->waiting)
        return;
    while (*pp != c) {
        prev = *pp;
        pp = &(*pp)->wnext;
    }
    *pp = c->wnext;
    if (ctl->wtail == c)
        ctl->wtail = prev;
    c->waiting = false;
    c->wnext = NULL;
    ctl->counters.waiting--;
}

/* ---- one client ------------------------------------------------------ */

static void client_free(struct client *c)
{
    struct xbd_control *ctl = c->ctl;

    ev_io_stop(ctl->loop, &c->rd);
    ev_io_stop(ctl->loop, &c->wr);
    ev_timer_stop(ctl->loop, &c->idle);
    ev_timer_stop(ctl->loop, &c->more);
    client_unwait(c);
    if (ctl->resuming == c)
        ctl->resuming = NULL;
    xbd_settle_cancel(c->settle);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        ctl->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ctl->nclients--;
    free(c->in);
    free(c->out);
    free(c);
}

static void client_drop(struct client *c, const char *why)
{
    xbd_debug("control: client pid %ld uid %lu: %s, closed", (long)c->peer.pid,
              (unsigned long)c->peer.uid, why);
    client_free(c);
}

/* Send what we can.  -1 if the client was freed. */
static int client_flush(struct client *c)
{
    struct ev_loop *loop = c->ctl->loop;

    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            client_drop(c, strerror(errno));
            return -1;
        }
        c->out_off += (size_t)n;
        ev_timer_again(loop, &c->idle);
    }
    if (c->out_off < c->out_len) {
        ev_io_start(loop, &c->wr);
        return 0;
    }
    c->out_off = c->out_len = 0;
    ev_io_stop(loop, &c->wr);
    if (c->closing && !c->lingering) {
        /* Our side is done; theirs may still be sending. */
        if (c->eof || shutdown(c->fd, SHUT_WR) < 0) {
            client_drop(c, "done");
            return -1;
        }
        c->lingering = true;
        ev_timer_stop(loop, &c->more);
        ev_timer_stop(loop, &c->idle);
        ev_timer_set(&c->idle, XBD_CTL_LINGER_S, 0.);
        ev_timer_start(loop, &c->idle);
        ev_io_start(loop, &c->rd);
    }
    return 0;
}

/* Lingering: read and discard until the client closes its side. */
static void client_discard(struct client *c)
{
    char buf[4096];

    for (int i = 0; i < 16; i++) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n <= 0) {
            client_drop(c, "done");
            return;
        }
    }
}

/* Queue a reply line (taking it).  -1 if out of memory (client untouched). */
static int client_queue(struct client *c, char *line, size_t len)
{
    size_t pending = c->out_len - c->out_off;

    if (!line)
        return -1;
    if (c->out_off) {
        memmove(c->out, c->out + c->out_off, pending);
        c->out_off = 0;
        c->out_len = pending;
    }
    if (pending + len > c->out_cap) {
        size_t cap = pending + len;
        char *n = realloc(c->out, cap);
        if (!n) {
            free(line);
            return -1;
        }
        c->out = n;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, line, len);
    c->out_len += len;
    free(line);
    return 0;
}

/* Reply with an error and close once it is sent.  -1 if freed. */
static int client_fail(struct client *c, const char *code, const char *msg)
{
    size_t len = 0;
    char *line = xbd_ctl_error_line(code, msg, &len);

    c->closing = true;
    ev_io_stop(c->ctl->loop, &c->rd);
    ev_timer_stop(c->ctl->loop, &c->more);
    if (client_queue(c, line, len) < 0) {
        client_drop(c, "out of memory");
        return -1;
    }
    return client_flush(c);
}

static int client_process(struct client *c);

/* The settle c waited for ended: answer, then go on with what it sent
 * behind it. */
static void client_settled(void *opaque, const struct xbd_settle_result *r)
{
    struct client *c = opaque;
    struct xbd_control *ctl = c->ctl;
    size_t len = 0;
    char *line = xbd_ctl_settle_line(r, c->settle_ms, &len);
    bool m = meter_start(c);

    c->settle = NULL;
    if (client_queue(c, line, len) < 0) {
        client_drop(c, "out of memory");
    } else {
        ev_timer_again(ctl->loop, &c->idle);
        client_process(c);
    }
    meter_stop(ctl, m);
}

static int client_start_settle(struct client *c, unsigned ms)
{
    struct xbd_control *ctl = c->ctl;
    size_t len = 0;

    c->settle = xbd_settle_start(ctl->env.host, ms / 1000.0, client_settled, c);
    if (!c->settle) {
        if (client_queue(c, xbd_ctl_error_line("failed", "out of memory", &len), len) < 0) {
            client_drop(c, "out of memory");
            return -1;
        }
        return 0;
    }
    c->settle_ms = ms;
    ev_io_stop(ctl->loop, &c->rd);
    ev_timer_stop(ctl->loop, &c->more);
    return 0;
}

/* Handle one line (NUL-terminated at line[len]).  -1 if freed. */
static int client_request(struct client *c, char *line, size_t len)
{
    struct xbd_control *ctl = c->ctl;
    struct xbd_ctl_reply rep;

    /* A client that does not read its replies: drop it rather than keep
     * them (this bounds the memory it can make us hold). */
    if (c->out_len - c->out_off > XBD_CTL_OUT_MAX) {
        xbd_warn("control: client pid %ld uid %lu does not read its replies "
                 "(%zu bytes unread): dropped", (long)c->peer.pid,
                 (unsigned long)c->peer.uid, c->out_len - c->out_off);
        client_free(c);
        return -1;
    }
    if (len && line[len - 1] == '\r')
        line[--len] = '\0';
    xbd_ctl_handle(&ctl->env, &c->peer, line, len, &rep);
    if (rep.settle)
        return client_start_settle(c, rep.settle_ms);
    if (client_queue(c, rep.line, rep.len) < 0) {
        client_drop(c, "out of memory");
        return -1;
    }
    if (rep.stop) {
        /* The reply goes out first: the client learns the order was
         * taken before the daemon starts stopping. */
        if (client_flush(c) < 0)
            c = NULL;
        ctl->env.ops->shutdown(ctl->env.opaque, rep.stop_mode);
        return c ? 0 : -1;
    }
    return 0;
}

/* Handle the complete lines in the input buffer, at most XBD_CTL_BUDGET;
 * more_cb continues on the next loop iteration.  -1 if freed. */
static int client_process(struct client *c)
{
    struct ev_loop *loop = c->ctl->loop;
    unsigned budget = XBD_CTL_BUDGET;

    while (!c->closing && !c->settle) {
        char *nl = memchr(c->in, '\n', c->in_len);
        size_t len;

        if (!nl) {
            if (c->in_len > XBD_CTL_MAX_LINE)
                return client_fail(c, "too_long", "request line longer than 65536 bytes");
            if (!c->eof || !c->in_len)
                break;
            /* The last request may lack its newline. */
            nl = c->in + c->in_len;
            c->in_len++;        /* room kept for it: see client_read */
        }
        if (!may_serve(c)) {
            client_wait(c);
            return client_flush(c);
        }
        if (!budget--) {
            ev_io_stop(loop, &c->rd);
            if (!ev_is_active(&c->more)) {
                ev_timer_set(&c->more, 0., 0.);
                ev_timer_start(loop, &c->more);
            }
            return 0;
        }
        len = (size_t)(nl - c->in);
        if (len > XBD_CTL_MAX_LINE)
            return client_fail(c, "too_long", "request line longer than 65536 bytes");
        *nl = '\0';
        if (client_request(c, c->in, len) < 0)
            return -1;
        c->in_len -= len + 1;
        memmove(c->in, c->in + len + 1, c->in_len);
    }
    if (c->settle)
        return client_flush(c);         /* client_settled goes on */
    if (c->eof && !c->closing) {
        c->closing = true;
        ev_io_stop(loop, &c->rd);
    }
    if (c->closing)
        return client_flush(c);
    ev_io_start(loop, &c->rd);
    return client_flush(c);
}

static int client_read(struct client *c)
{
    /* Room for one byte past the limit (to see that a line is too long)
     * and for a NUL after the last line. */
    const size_t max = XBD_CTL_MAX_LINE + 2;
    ssize_t n;

    if (c->in_cap - c->in_len < 2) {
        size_t cap = c->in_cap ? 2 * c->in_cap : XBD_CTL_IN_INITIAL;
        char *p;

        if (cap > max)
            cap = max;
        if (cap - c->in_len < 2)
            return client_fail(c, "too_long", "request line longer than 65536 bytes");
        p = realloc(c->in, cap);
        if (!p) {
            client_drop(c, "out of memory");
            return -1;
        }
        c->in = p;
        c->in_cap = cap;
    }
    n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len - 1, MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        client_drop(c, strerror(errno));
        return -1;
    }
    if (n == 0)
        c->eof = true;
    c->in_len += (size_t)n;
    ev_timer_again(c->ctl->loop, &c->idle);
    return client_process(c);
}

static void client_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct client *c = container_of(w, struct client, rd);
    struct xbd_control *ctl = c->ctl;
    bool m = meter_start(c);

    if (c->lingering)
        client_discard(c);
    else
        client_read(c);
    meter_stop(ctl, m);
}

static void client_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct client *c = container_of(w, struct client, wr);
    struct xbd_control *ctl = c->ctl;
    bool m = meter_start(c);

    client_flush(c);
    meter_stop(ctl, m);
}

static void client_process_metered(struct client *c)
{
    struct xbd_control *ctl = c->ctl;
    bool m = meter_start(c);

    client_process(c);
    meter_stop(ctl, m);
}

static void client_more_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    client_process_metered(container_of(w, struct client, more));
}

/* The allowance is back: the waiting clients go on, in turn, while it
 * lasts; each one that still has more to do joins the back again. */
static void refill_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct xbd_control *ctl = container_of(w, struct xbd_control, refill);

    while (ctl->whead) {
        struct client *c = ctl->whead;

        ctl->resuming = c;
        if (!may_serve(c))
            break;
        client_unwait(c);
        client_process_metered(c);
    }
    ctl->resuming = NULL;
    refill_arm(ctl);
}

static void client_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct client *c = container_of(w, struct client, idle);

    if (c->lingering) {
        client_drop(c, "done");
        return;
    }
    if (c->settle || c->waiting) {
        /* Waiting for the daemon, not idle: the settle's own timeout
         * bounds it, the group's allowance the queue. */
        ev_timer_again(loop, w);
        return;
    }
    xbd_info("control: client pid %ld uid %lu idle for %.0f s, closed",
             (long)c->peer.pid, (unsigned long)c->peer.uid, XBD_CTL_IDLE_S);
    client_free(c);
}

/* The group's allowance starts full. */
static void control_init_allowance(struct xbd_control *ctl)
{
    ev_init(&ctl->refill, refill_cb);
    ctl->tokens = XBD_CTL_GROUP_BURST_MS / 1000.;
    ctl->tokens_at = xbd_ctl_now();
}

/* ---- the listening socket --------------------------------------------- */

/* One more client than we serve: say so (best effort) and hang up. */
/* <limit>: the clients the refused one's peer may have at once. */
static void refuse(int fd, unsigned limit)
{
    size_t len = 0;
    char msg[64];
    char *line;

    snprintf(msg, sizeof(msg), "too many clients (at most %u)", limit);
    line = xbd_ctl_error_line("failed", msg, &len);
    if (line && send(fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        xbd_debug("control: cannot tell a refused client why: %s", strerror(errno));
    free(line);
    close(fd);
}

static void client_new(struct xbd_control *ctl, int fd)
{
    struct client *c = calloc(1, sizeof(*c));
    struct ucred cr;
    socklen_t crlen = sizeof(cr);

    if (!c) {
        close(fd);
        return;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0) {
        xbd_warn("control: SO_PEERCRED: %s", strerror(errno));
        free(c);
        close(fd);
        return;
    }
    /* The last slots are root's: the group's clients may hold the others
     * as long as they like (a settle waits up to an hour). */
    if (cr.uid != 0 && ctl->nclients >= XBD_CTL_MAX_CLIENTS - XBD_CTL_ROOT_SLOTS) {
        free(c);
        refuse(fd, XBD_CTL_MAX_CLIENTS - XBD_CTL_ROOT_SLOTS);
        return;
    }
    c->peer = (struct xbd_ctl_peer){ cr.pid, cr.uid, cr.gid };
    c->ctl = ctl;
    c->fd = fd;
    ev_io_init(&c->rd, client_read_cb, fd, EV_READ);
    ev_io_init(&c->wr, client_write_cb, fd, EV_WRITE);
    ev_init(&c->idle, client_idle_cb);
    c->idle.repeat = XBD_CTL_IDLE_S;
    ev_timer_init(&c->more, client_more_cb, 0., 0.);
    c->next = ctl->clients;
    if (ctl->clients)
        ctl->clients->prev = c;
    ctl->clients = c;
    ctl->nclients++;
    ev_io_start(ctl->loop, &c->rd);
    ev_timer_again(ctl->loop, &c->idle);
    xbd_debug("control: client pid %ld uid %lu gid %lu connected", (long)cr.pid,
              (unsigned long)cr.uid, (unsigned long)cr.gid);
}

static void backoff_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct xbd_control *ctl = container_of(w, struct xbd_control, backoff);

    ev_io_start(loop, &ctl->accept_w);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct xbd_control *ctl = container_of(w, struct xbd_control, accept_w);

    /* Bounded: a connect storm cannot keep us here. */
    for (unsigned i = 0; i < XBD_CTL_MAX_CLIENTS; i++) {
        int fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                xbd_warn("control: cannot accept a client: %s; pausing for %.1f s",
                         strerror(errno), XBD_CTL_ACCEPT_BACKOFF);
                ev_io_stop(loop, &ctl->accept_w);
                ev_timer_set(&ctl->backoff, XBD_CTL_ACCEPT_BACKOFF, 0.);
                ev_timer_start(loop, &ctl->backoff);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                       errno != ECONNABORTED) {
                xbd_warn("control: accept: %s", strerror(errno));
            }
            return;
        }
        if (ctl->nclients >= XBD_CTL_MAX_CLIENTS)
            refuse(fd, XBD_CTL_MAX_CLIENTS);
        else
            client_new(ctl, fd);
    }
}

static int resolve_group(const char *name, gid_t *gid)
{
    char *end;
    unsigned long v;
    struct group *g;

    errno = 0;
    v = strtoul(name, &end, 10);
    if (*name && !*end && !errno && v < (gid_t)-1) {
        *gid = (gid_t)v;
        return 0;
    }
    g = getgrnam(name);
    if (!g)
        return -1;
    *gid = g->gr_gid;
    return 0;
}

/* The socket's directory: created 0755 if missing, whatever the umask
 * (its parent must exist); an existing one is left as it is. */
static int make_dir(const char *path)
{
    char *dir = strdup(path), *slash;
    int rc = 0;

    if (!dir)
        return -1;
    slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        rc = xbd_mkdir_mode(dir, 0755);
        if (rc > 0) {
            xbd_info("control: created %s", dir);
            rc = 0;
        } else if (rc < 0) {
            xbd_err("control: cannot create %s: %s", dir, strerror(errno));
            rc = -1;
        }
    }
    free(dir);
    return rc;
}

/* A socket file left by a previous instance is removed; one a live
 * process listens on is not (two daemons must not share it). */
static int clear_path(const char *path, const struct sockaddr_un *sa)
{
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISSOCK(st.st_mode)) {
        xbd_err("control: %s exists and is not a socket: not touching it", path);
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
    close(fd);
    if (rc == 0) {
        xbd_err("control: another process is listening on %s (another xenblkd?)", path);
        return -1;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        xbd_err("control: cannot remove the stale %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int open_socket(struct xbd_control *ctl, const char *path, gid_t gid)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    mode_t old;
    int rc;

    if (strlen(path) >= sizeof(sa.sun_path) || path[0] != '/') {
        xbd_err("control: socket path '%s' must be absolute and shorter than %zu bytes",
                path, sizeof(sa.sun_path));
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path));
    if (make_dir(path) < 0 || clear_path(path, &sa) < 0)
        return -1;
    ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ctl->fd < 0) {
        xbd_err("control: socket: %s", strerror(errno));
        return -1;
    }
    /* Created 0600, opened to the group only once the group is right. */
    old = umask(0177);
    rc = bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0) {
        xbd_err("control: cannot bind %s: %s", path, strerror(errno));
        return -1;
    }
    if (chown(path, geteuid() == 0 ? 0 : (uid_t)-1, gid) < 0 || chmod(path, 0660) < 0 ||
        stat(path, &st) < 0) {
        xbd_err("control: cannot give %s to group %lu, mode 0660: %s", path,
                (unsigned long)gid, strerror(errno));
        unlink(path);
        return -1;
    }
    ctl->st_dev = st.st_dev;
    ctl->st_ino = st.st_ino;
    if (listen(ctl->fd, SOMAXCONN) < 0) {
        xbd_err("control: listen: %s", strerror(errno));
        unlink(path);
        return -1;
    }
    return 0;
}

struct xbd_control *xbd_control_open(struct ev_loop *loop, struct xbd_host *host,
                                     const char *path, const char *group,
                                     const struct xbd_control_ops *ops, void *opaque)
{
    struct xbd_control *ctl = calloc(1, sizeof(*ctl));
    gid_t gid;

    if (!ctl)
        return NULL;
    ctl->fd = -1;
    ctl->loop = loop;
    ctl->env = (struct xbd_ctl_env){ host, ops, opaque, xbd_ctl_now(), &ctl->counters,
                                     &ctl->cache };
    ev_io_init(&ctl->accept_w, accept_cb, -1, EV_READ);
    ev_init(&ctl->backoff, backoff_cb);
    control_init_allowance(ctl);
    if (resolve_group(group, &gid) < 0) {
        xbd_err("control: unknown group '%s'", group);
        goto fail;
    }
    ctl->path = strdup(path);
    if (!ctl->path || open_socket(ctl, path, gid) < 0)
        goto fail;
    ev_io_set(&ctl->accept_w, ctl->fd, EV_READ);
    ev_io_start(loop, &ctl->accept_w);
    xbd_info("control socket %s (mode 0660, group %s)", path, group);
    return ctl;
fail:
    if (ctl->fd >= 0)
        close(ctl->fd);
    free(ctl->path);
    free(ctl);
    return NULL;
}

void xbd_control_close(struct xbd_control *ctl)
{
    struct stat st;

    if (!ctl)
        return;
    while (ctl->clients)
        client_free(ctl->clients);
    ev_io_stop(ctl->loop, &ctl->accept_w);
    ev_timer_stop(ctl->loop, &ctl->backoff);
    ev_timer_stop(ctl->loop, &ctl->refill);
    free(ctl->cache.line);
    close(ctl->fd);
    /* Only our own file: a successor may already have replaced it. */
    if (stat(ctl->path, &st) == 0 && st.st_dev == ctl->st_dev && st.st_ino == ctl->st_ino)
        unlink(ctl->path);
    free(ctl->path);
    free(ctl);
}
