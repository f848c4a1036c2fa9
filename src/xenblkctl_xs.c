/*
 * xenblkctl_xs.c - attach and detach: a disk's xenstore nodes, written
 * and removed the way libxl does it, for hosts or tests without a
 * toolstack that knows the backend kind.
 *
 * attach (libxl's device_disk_add + libxl__device_generic_add): in ONE
 * transaction, so that a backend watching backend/<kind> never sees half a
 * device,
 *   /local/domain/<B>/backend/<kind>/<D>/<V>  owner B, D may read
 *   /local/domain/<D>/device/vbd/<V>          owner D, B may read
 *   /libxl/<D>/device/vbd/<V>                 the toolstack's own record
 * both in state 1 (Initialising), refusing a device that exists.
 *
 * detach (libxl__initiate_device_generic_remove + libxl__device_destroy):
 * online=0 and state=5 (Closing; a backend already Closed keeps 6) in one
 * transaction, wait for the backend to reach 6 (Closed), then delete the
 * three directories in one transaction.  Like libxl the nodes are deleted
 * anyway when the backend does not close in time, and that is reported.
 *
 * The frontend directory is the guest's: nothing read from it is trusted.
 * The backend to close is found through /libxl/<D> (dom0's) or by looking
 * in our own backend directories, never through the guest's "backend" key.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <xenstore.h>
#include <xen/xen.h>
#include <xen/io/xenbus.h>

#include "xenblkctl.h"

#define XS_RETRIES 100          /* transactions replayed on EAGAIN */
#define DEFAULT_TIMEOUT 10.0    /* s, as libxl (LIBXL_INIT/DESTROY_TIMEOUT) */

static const char *const kinds[] = { "vbd3", "qdisk", "vbd" };

static const char *state_name(int s)
{
    static const char *const names[] = {
        "Unknown", "Initialising", "InitWait", "Initialised",
        "Connected", "Closing", "Closed", "Reconfiguring", "Reconfigured",
    };

    return s >= 0 && s < (int)(sizeof(names) / sizeof(names[0])) ? names[s] : "invalid";
}

/* ---- xenstore access ---- */

static int xs_status(int err)
{
    return err == EACCES || err == EPERM ? XBC_EPERM : XBC_EFAIL;
}

static struct xs_handle *xs_connect(int *rc)
{
    struct xs_handle *h = xs_open(0);

    if (!h) {
        int err = errno;
        if (err == EACCES || err == EPERM)
            xbc_err("permission denied connecting to xenstored: attach and detach need root");
        else
            xbc_err("cannot connect to xenstored: %s (is this a Xen host, with xenstored running?)",
                    strerror(err));
        *rc = xs_status(err);
    }
    return h;
}

/* Read PATH as a string (malloc'd) or NULL. */
static char *xs_get(struct xs_handle *h, xs_transaction_t t, const char *path)
{
    unsigned len;

    return xs_read(h, t, path, &len);
}

static bool xs_node_exists(struct xs_handle *h, xs_transaction_t t, const char *path)
{
    char *v = xs_get(h, t, path);

    free(v);
    return v != NULL;
}

/* State key of a backend: -1 when absent or unreadable. */
static int xs_get_state(struct xs_handle *h, xs_transaction_t t, const char *be)
{
    char path[256], *v;
    uint64_t s;
    int r = -1;

    snprintf(path, sizeof(path), "%s/state", be);
    v = xs_get(h, t, path);
    if (v && xbc_parse_uint(v, 255, &s))
        r = (int)s;
    free(v);
    return r;
}

/* The domain we run in: the "domid" key of our xenstore home, else 0
 * (what xenblkd assumes too, see xenblkd(8) --domid). */
static unsigned own_domid(struct xs_handle *h)
{
    char *v = xs_get(h, XBT_NULL, "domid");
    uint64_t d = 0;

    if (!v || !xbc_parse_uint(v, DOMID_FIRST_RESERVED - 1, &d))
        d = 0;
    free(v);
    return (unsigned)d;
}

struct kv {
    const char *key;
    char value[PATH_MAX + 16];
};

/* One batch of writes under DIR; false + errno on failure. */
static bool write_keys(struct xs_handle *h, xs_transaction_t t, const char *dir,
                       const struct kv *kv, size_t n)
{
    char path[512];

    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, kv[i].key);
        if (!xs_write(h, t, path, kv[i].value, strlen(kv[i].value)))
            return false;
    }
    return true;
}

static bool make_dir(struct xs_handle *h, xs_transaction_t t, const char *dir,
                     unsigned owner, unsigned reader)
{
    struct xs_permissions perms[2] = {
        { .id = owner, .perms = XS_PERM_NONE },   /* owner: full access */
        { .id = reader, .perms = XS_PERM_READ },
    };

    return xs_mkdir(h, t, dir) && xs_set_permissions(h, t, dir, perms, 2);
}

/* A transaction: XBT_NULL with the error printed and *rc set. */
static xs_transaction_t txn_start(struct xs_handle *h, int *rc)
{
    xs_transaction_t t = xs_transaction_start(h);

    if (t == XBT_NULL) {
        xbc_err("cannot start a xenstore transaction: %s", strerror(errno));
        *rc = xs_status(errno);
    }
    return t;
}

/* XBC_OK, -EAGAIN when it must be replayed, else the printed failure. */
static int txn_commit(struct xs_handle *h, xs_transaction_t t)
{
    int err;

    if (xs_transaction_end(h, t, false))
        return XBC_OK;
    if (errno == EAGAIN)
        return -EAGAIN;
    err = errno;
    xbc_err("xenstore transaction failed: %s", strerror(err));
    return xs_status(err);
}

/* Abort T after a failed WHAT; prints why, returns the exit status. */
static int txn_fail(struct xs_handle *h, xs_transaction_t t, const char *what)
{
    int err = errno;

    xs_transaction_end(h, t, true);
    if (err == EACCES || err == EPERM)
        xbc_err("cannot %s: permission denied by xenstored (attach and detach need root "
                "in the toolstack domain)", what);
    else
        xbc_err("cannot %s: %s", what, strerror(err));
    return xs_status(err);
}

/* ---- the disk both commands name ---- */

struct disk {
    unsigned domid;
    uint32_t devid;
    char vdev[32];              /* xvda, or the number */
    char fe[128], lx[128];      /* frontend and libxl directories */
};

/* DOMID DEVID from argv[optind..]; NARGS positional arguments in all.
 * -1 when fine, else the usage status (message printed). */
static int parse_disk(const char *cmd, const char *what, int argc, char **argv, int nargs,
                      struct disk *d)
{
    uint64_t v;

    if (argc - optind != nargs)
        return xbc_usage_error(cmd, "%s: expected %s, got %d argument(s)", cmd, what, argc - optind);
    if (!xbc_parse_uint(argv[optind], DOMID_FIRST_RESERVED - 1, &v))
        return xbc_usage_error(cmd, "%s: DOMID: expected a domain id, got '%s'", cmd, argv[optind]);
    d->domid = (unsigned)v;
    if (!xbc_parse_devid(argv[optind + 1], &d->devid))
        return xbc_usage_error(cmd, "%s: DEVID: expected a number or xvdN name, got '%s'", cmd,
                               argv[optind + 1]);
    xbc_devid_name(d->devid, d->vdev, sizeof(d->vdev));
    if (!*d->vdev)
        snprintf(d->vdev, sizeof(d->vdev), "%u", d->devid);
    snprintf(d->fe, sizeof(d->fe), "/local/domain/%u/device/vbd/%u", d->domid, d->devid);
    snprintf(d->lx, sizeof(d->lx), "/libxl/%u/device/vbd/%u", d->domid, d->devid);
    return -1;
}

/* Run TXN until it does not conflict (it returns -EAGAIN on conflict). */
static int with_retries(int (*txn)(struct xs_handle *, const void *), struct xs_handle *h,
                        const void *arg)
{
    int rc;

    for (int i = 0; (rc = txn(h, arg)) == -EAGAIN; i++) {
        if (i == XS_RETRIES) {
            xbc_err("xenstore transaction kept conflicting (%d tries)", XS_RETRIES);
            return XBC_EFAIL;
        }
    }
    return rc;
}

/* ---- waiting for a backend ---- */

/* What a wait checks on every change: 1 done, 0 not yet, -1 failed. */
typedef int wait_check_fn(struct xs_handle *h, const char *be, void *arg);

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Watch BE and call CHECK on every change until it says done or failed,
 * or TIMEOUT seconds passed.  *elapsed gets the time waited. */
static int wait_backend(struct xs_handle *h, const char *be, double timeout,
                        wait_check_fn *check, void *arg, double *elapsed)
{
    static const char token[] = "xenblkctl";
    double start = now_s(), end = start + timeout;
    int fd = xs_fileno(h), r = 0;

    if (fd < 0 || !xs_watch(h, be, token)) {
        xbc_err("cannot watch %s: %s", be, strerror(errno));
        return xs_status(errno);
    }
    for (;;) {
        char **ev;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        double left;

        /* The first event arrives at once (xenstore fires a new watch). */
        r = check(h, be, arg);
        if (r != 0)
            break;
        left = end - now_s();
        if (left <= 0)
            break;
        if (poll(&p, 1, (int)ceil(left * 1000)) < 0 && errno != EINTR) {
            r = -1;
            xbc_err("poll: %s", strerror(errno));
            break;
        }
        while ((ev = xs_check_watch(h)) != NULL)
            free(ev);
    }
    xs_unwatch(h, be, token);
    *elapsed = now_s() - start;
    if (r > 0)
        return XBC_OK;
    return r < 0 ? XBC_EFAIL : XBC_ETIMEDOUT;
}

/* ---- attach ---- */

struct attach {
    struct disk id;
    unsigned bdom;
    const char *kind;
    char mode[2];
    char params[PATH_MAX + 8];
    char be[128];
    double timeout;
};

static const char attach_name[] = "attach";

static int attach_options(int argc, char **argv, struct attach *a, bool *bdom_set)
{
    static const struct option opts[] = {
        { "mode", required_argument, NULL, 'm' },
        { "kind", required_argument, NULL, 'k' },
        { "backend-domid", required_argument, NULL, 'b' },
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    uint64_t v;
    int o;

    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "m:k:b:t:h", opts, NULL)) != -1) {
        switch (o) {
        case 'm':
            if (strcmp(optarg, "r") != 0 && strcmp(optarg, "w") != 0)
                return xbc_usage_error(attach_name, "--mode: expected r or w, got '%s'", optarg);
            a->mode[0] = optarg[0];
            break;
        case 'k':
            a->kind = NULL;
            for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
                if (strcmp(optarg, kinds[i]) == 0)
                    a->kind = kinds[i];
            if (!a->kind)
                return xbc_usage_error(attach_name, "--kind: expected vbd3, qdisk or vbd, got '%s'", optarg);
            break;
        case 'b':
            if (!xbc_parse_uint(optarg, DOMID_FIRST_RESERVED - 1, &v))
                return xbc_usage_error(attach_name, "--backend-domid: expected a domain id, got '%s'", optarg);
            a->bdom = (unsigned)v;
            *bdom_set = true;
            break;
        case 't':
            if (!xbc_parse_seconds(optarg, 3600, &a->timeout))
                return xbc_usage_error(attach_name, "--timeout: expected seconds (0, 3600], got '%s'", optarg);
            break;
        case 'h':
            return XBC_OK;
        default:
            return xbc_usage_error(attach_name, "attach: unknown option or missing value: '%s'", argv[optind - 1]);
        }
    }
    return -1;
}

/* PATH made absolute; checked to be a file or block device when the
 * backend runs here (in a driver domain the path is the other domain's). */
static int attach_params(struct attach *a, const char *path, bool local)
{
    char abs[PATH_MAX];
    struct stat st;

    if (local) {
        if (!realpath(path, abs)) {
            xbc_err("%s: %s", path, strerror(errno));
            return errno == EACCES ? XBC_EPERM : XBC_EFAIL;
        }
        if (stat(abs, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
            xbc_err("%s: not a regular file or a block device", abs);
            return XBC_EFAIL;
        }
    } else {
        if (path[0] != '/') {
            xbc_err("%s: with --backend-domid the path must be absolute (it is the backend domain's)", path);
            return XBC_EUSAGE;
        }
        snprintf(abs, sizeof(abs), "%s", path);
    }
    /* The daemon takes aio:/path for vbd3 and qdisk (what libxl writes
     * for raw images), a bare path for vbd (the block script's form). */
    snprintf(a->params, sizeof(a->params), "%s%s", strcmp(a->kind, "vbd") == 0 ? "" : "aio:", abs);
    return XBC_OK;
}

static const char *backend_type(const char *kind)
{
    return strcmp(kind, "vbd") == 0 ? "phy" : kind;
}

/* Fill the key lists in libxl's order. */
static size_t backend_keys(const struct attach *a, struct kv *kv)
{
    size_t n = 0;

#define KV(k, ...) do { kv[n].key = (k); snprintf(kv[n].value, sizeof(kv[n].value), __VA_ARGS__); n++; } while (0)
    KV("frontend", "%s", a->id.fe);
    KV("params", "%s", a->params);
    KV("frontend-id", "%u", a->id.domid);
    KV("online", "1");
    KV("removable", "0");
    KV("bootable", "1");
    KV("state", "%d", XenbusStateInitialising);
    KV("dev", "%s", a->id.vdev);
    KV("type", "%s", backend_type(a->kind));
    KV("mode", "%s", a->mode);
    KV("device-type", "disk");
    /* libxl's default: discard on for writable disks only. */
    KV("discard-enable", "%d", a->mode[0] == 'w');
    if (strcmp(a->kind, "vbd3") == 0)
        KV("specification", "xen");
    return n;
}

static size_t frontend_keys(const struct attach *a, struct kv *kv)
{
    size_t n = 0;

    KV("backend", "%s", a->be);
    KV("backend-id", "%u", a->bdom);
    KV("state", "%d", XenbusStateInitialising);
    KV("virtual-device", "%u", a->id.devid);
    KV("device-type", "disk");
    /* The backend may see all of the guest's I/O in clear anyway: no
     * bouncing in the frontend (Linux blkfront reads it since XSA-403). */
    KV("trusted", "1");
    /* No "protocol": libxl writes the guest's native ABI only for PV
     * guests it built; every frontend since Linux 2.6.26 writes it
     * itself, and a wrong guess would corrupt every request. */
    return n;
#undef KV
}

/* Returns XBC_OK, or an exit status with the error printed; -EAGAIN when
 * the transaction must be replayed. */
static int attach_txn(struct xs_handle *h, const void *arg)
{
    const struct attach *a = arg;
    struct kv bk[16], fk[8];
    size_t nb = backend_keys(a, bk), nf = frontend_keys(a, fk);
    char dom[64], path[300];
    const char *exists = NULL;
    int rc = XBC_OK;
    xs_transaction_t t = txn_start(h, &rc);

    if (t == XBT_NULL)
        return rc;
    snprintf(dom, sizeof(dom), "/local/domain/%u", a->id.domid);
    if (!xs_node_exists(h, t, dom)) {
        if (errno == EACCES)
            return txn_fail(h, t, "read xenstore");
        xs_transaction_end(h, t, true);
        xbc_err("no domain %u: %s does not exist (is the guest running? xl list)", a->id.domid, dom);
        return XBC_ENOENT;
    }
    if (xs_node_exists(h, t, a->id.fe))
        exists = a->id.fe;
    else if (xs_node_exists(h, t, a->be))
        exists = a->be;
    else if (xs_node_exists(h, t, a->id.lx))
        exists = a->id.lx;
    if (exists) {
        xs_transaction_end(h, t, true);
        xbc_err("domain %u already has device %u (%s): %s exists (xenblkctl detach %u %u first)",
                a->id.domid, a->id.devid, a->id.vdev,
                exists, a->id.domid, a->id.devid);
        return XBC_EEXIST;
    }
    if (!make_dir(h, t, a->id.fe, a->id.domid, a->bdom) || !write_keys(h, t, a->id.fe, fk, nf) ||
        !make_dir(h, t, a->be, a->bdom, a->id.domid) || !write_keys(h, t, a->be, bk, nb))
        return txn_fail(h, t, "write the device's nodes");
    /* libxl keeps its own copy of the backend keys, so that it never has
     * to trust the backend's (or the guest's) directory later. */
    snprintf(path, sizeof(path), "%s/backend", a->id.lx);
    if (!xs_write(h, t, path, a->be, strlen(a->be)) || !write_keys(h, t, a->id.lx, bk, nb))
        return txn_fail(h, t, "write the toolstack's record");
    return txn_commit(h, t);
}

struct pickup {
    char error[256];
    int state;
};

/* Taken once the backend reached InitWait or beyond; refused when it
 * reported a hotplug error or went Closing/Closed instead. */
static int picked_up(struct xs_handle *h, const char *be, void *arg)
{
    struct pickup *p = arg;
    char path[300], *hs, *he;

    p->state = xs_get_state(h, XBT_NULL, be);
    snprintf(path, sizeof(path), "%s/hotplug-status", be);
    hs = xs_get(h, XBT_NULL, path);
    if (hs && strcmp(hs, "error") == 0) {
        snprintf(path, sizeof(path), "%s/hotplug-error", be);
        he = xs_get(h, XBT_NULL, path);
        snprintf(p->error, sizeof(p->error), "%s", he ? he : "no hotplug-error given");
        free(he);
        free(hs);
        return -1;
    }
    free(hs);
    if (p->state < 0) {
        snprintf(p->error, sizeof(p->error), "the backend directory was removed");
        return -1;
    }
    if (p->state == XenbusStateClosing || p->state == XenbusStateClosed) {
        snprintf(p->error, sizeof(p->error), "the backend went %s without saying why",
                 state_name(p->state));
        return -1;
    }
    return p->state >= XenbusStateInitWait ? 1 : 0;
}

static int attach_wait(const struct xbc_global *g, struct xs_handle *h, const struct attach *a)
{
    struct pickup p = { .state = -1 };
    double waited;
    int rc;

    if (!xbc_daemon_up(g->socket)) {
        printf("xenblkd does not answer on %s: the device will be served once it runs\n", g->socket);
        return XBC_OK;
    }
    rc = wait_backend(h, a->be, a->timeout, picked_up, &p, &waited);
    if (rc == XBC_OK) {
        printf("xenblkd took the device: %s (%.1f s)\n", state_name(p.state), waited);
    } else if (rc == XBC_ETIMEDOUT) {
        xbc_err("the backend is still %s after %g s: does xenblkd serve kind %s "
                "in domain %u (xenblkd --kinds)? Remove the device with: xenblkctl detach %u %u",
                state_name(p.state), a->timeout, a->kind, a->bdom, a->id.domid, a->id.devid);
    } else if (p.error[0]) {
        xbc_err("xenblkd refused the device: %s. Remove it with: xenblkctl detach %u %u",
                p.error, a->id.domid, a->id.devid);
    }
    return rc;
}

int xbc_cmd_attach(const struct xbc_global *g, int argc, char **argv)
{
    struct attach a = { .kind = "vbd3", .mode = "w", .timeout = DEFAULT_TIMEOUT };
    struct xs_handle *h;
    bool bdom_set = false;
    int rc;

    rc = attach_options(argc, argv, &a, &bdom_set);
    if (rc == XBC_OK)
        return xbc_command_help(attach_name);
    if (rc > 0)
        return rc;
    rc = parse_disk(attach_name, "DOMID DEVID PATH", argc, argv, 3, &a.id);
    if (rc >= 0)
        return rc;
    h = xs_connect(&rc);
    if (!h)
        return rc;
    if (!bdom_set)
        a.bdom = own_domid(h);
    rc = attach_params(&a, argv[optind + 2], !bdom_set || a.bdom == own_domid(h));
    if (rc)
        goto out;
    snprintf(a.be, sizeof(a.be), "/local/domain/%u/backend/%s/%u/%u", a.bdom, a.kind, a.id.domid, a.id.devid);
    rc = with_retries(attach_txn, h, &a);
    if (rc == XBC_OK) {
        printf("attached domain %u device %u (%s): %s, params %s, mode %s\n",
               a.id.domid, a.id.devid, a.id.vdev, a.be, a.params, a.mode);
        fflush(stdout);
        rc = attach_wait(g, h, &a);
    }
out:
    xs_close(h);
    return rc;
}

/* ---- detach ---- */

struct detach {
    struct disk id;
    unsigned own;
    char be[128];
    double timeout;
};

static const char detach_name[] = "detach";

/* Is P the backend path of exactly this device, in a form we write? */
static bool valid_be_path(const struct detach *d, const char *p)
{
    char kind[16], tail[2];
    unsigned bdom, domid, devid;

    if (sscanf(p, "/local/domain/%u/backend/%15[a-z0-9]/%u/%u%1s", &bdom, kind, &domid, &devid, tail) != 4)
        return false;
    if (domid != d->id.domid || devid != d->id.devid)
        return false;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kind, kinds[i]) == 0)
            return true;
    return false;
}

/* Find the backend directory: libxl's record first (dom0 wrote it), else
 * our own backend directories of each kind.  "" when there is none. */
static void detach_find(struct xs_handle *h, struct detach *d)
{
    char path[300], *v;

    d->be[0] = '\0';
    snprintf(path, sizeof(path), "%s/backend", d->id.lx);
    v = xs_get(h, XBT_NULL, path);
    if (v && strlen(v) < sizeof(d->be) && valid_be_path(d, v) && xs_node_exists(h, XBT_NULL, v))
        memcpy(d->be, v, strlen(v) + 1);
    free(v);
    for (size_t i = 0; !d->be[0] && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        snprintf(path, sizeof(path), "/local/domain/%u/backend/%s/%u/%u", d->own, kinds[i], d->id.domid, d->id.devid);
        if (xs_node_exists(h, XBT_NULL, path) && strlen(path) < sizeof(d->be))
            memcpy(d->be, path, strlen(path) + 1);
    }
}

/* online=0, state=5 unless Closed already; *state gets what it was. */
static int detach_close_txn(struct xs_handle *h, const struct detach *d, int *state)
{
    char path[300];
    int rc = XBC_OK;
    xs_transaction_t t = txn_start(h, &rc);

    if (t == XBT_NULL)
        return rc;
    *state = xs_get_state(h, t, d->be);
    if (*state < 0) {
        xs_transaction_end(h, t, true);
        return XBC_OK;          /* the backend is gone already */
    }
    snprintf(path, sizeof(path), "%s/online", d->be);
    if (!xs_write(h, t, path, "0", 1))
        return txn_fail(h, t, "write online=0");
    if (*state != XenbusStateClosed) {
        snprintf(path, sizeof(path), "%s/state", d->be);
        if (!xs_write(h, t, path, "5", 1))
            return txn_fail(h, t, "write state=5");
    }
    return txn_commit(h, t);
}

static int closed(struct xs_handle *h, const char *be, void *arg)
{
    int *state = arg;

    *state = xs_get_state(h, XBT_NULL, be);
    return *state == XenbusStateClosed || *state < 0 ? 1 : 0;
}

/* Remove PATH if it exists and has no children (libxl prunes the empty
 * parents of a removed device). */
static void prune(struct xs_handle *h, xs_transaction_t t, const char *path)
{
    unsigned n = 1;
    char **children = xs_directory(h, t, path, &n);

    if (children && n == 0)
        xs_rm(h, t, path);
    free(children);
}

static int detach_remove_txn(struct xs_handle *h, const void *arg)
{
    const struct detach *d = arg;
    char p[300], *slash;
    int rc = XBC_OK;
    xs_transaction_t t = txn_start(h, &rc);

    if (t == XBT_NULL)
        return rc;
    if ((!xs_rm(h, t, d->id.fe) && errno != ENOENT) ||
        (d->be[0] && !xs_rm(h, t, d->be) && errno != ENOENT) ||
        (!xs_rm(h, t, d->id.lx) && errno != ENOENT))
        return txn_fail(h, t, "remove the device's nodes");
    if (d->be[0]) {
        snprintf(p, sizeof(p), "%s", d->be);
        slash = strrchr(p, '/');
        *slash = '\0';
        prune(h, t, p);         /* backend/<kind>/<domid> */
    }
    snprintf(p, sizeof(p), "/local/domain/%u/device/vbd", d->id.domid);
    prune(h, t, p);
    snprintf(p, sizeof(p), "/libxl/%u/device/vbd", d->id.domid);
    prune(h, t, p);
    snprintf(p, sizeof(p), "/libxl/%u/device", d->id.domid);
    prune(h, t, p);
    snprintf(p, sizeof(p), "/libxl/%u", d->id.domid);
    prune(h, t, p);
    return txn_commit(h, t);
}

static int detach_options(int argc, char **argv, struct detach *d)
{
    static const struct option opts[] = {
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    int o;

    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
        switch (o) {
        case 't':
            if (!xbc_parse_seconds(optarg, 3600, &d->timeout))
                return xbc_usage_error(detach_name, "--timeout: expected seconds (0, 3600], got '%s'", optarg);
            break;
        case 'h':
            return XBC_OK;
        default:
            return xbc_usage_error(detach_name, "detach: unknown option or missing value: '%s'", argv[optind - 1]);
        }
    }
    return -1;
}

/* The close handshake; returns the status for a device whose backend is
 * d->be, printing what happened. */
static int detach_close(struct xs_handle *h, const struct detach *d)
{
    int rc, state, before, i;
    double waited = 0;

    for (i = 0; (rc = detach_close_txn(h, d, &before)) == -EAGAIN && i < XS_RETRIES; i++)
        ;
    if (rc)
        return rc == -EAGAIN ? XBC_EFAIL : rc;
    if (before < 0) {
        printf("the backend directory disappeared meanwhile\n");
        return XBC_OK;
    }
    if (before == XenbusStateInitialising) {
        /* No backend ever took the device: nobody will answer. */
        printf("no backend had taken the device (state Initialising): removing it\n");
        return XBC_OK;
    }
    if (before == XenbusStateClosed) {
        printf("backend already Closed\n");
        return XBC_OK;
    }
    rc = wait_backend(h, d->be, d->timeout, closed, &state, &waited);
    if (rc == XBC_OK && state < 0)
        printf("the backend removed its directory after %.1f s\n", waited);
    else if (rc == XBC_OK)
        printf("backend %s -> Closed after %.1f s\n", state_name(before), waited);
    else if (rc == XBC_ETIMEDOUT)
        xbc_warn("backend still %s after %g s (is xenblkd running?): removing the nodes anyway, as libxl does",
                 state_name(state), d->timeout);
    return rc;
}

int xbc_cmd_detach(const struct xbc_global *g, int argc, char **argv)
{
    struct detach d = { .timeout = DEFAULT_TIMEOUT };
    struct xs_handle *h;
    int rc, rc2;

    (void)g;
    rc = detach_options(argc, argv, &d);
    if (rc == XBC_OK)
        return xbc_command_help(detach_name);
    if (rc > 0)
        return rc;
    rc = parse_disk(detach_name, "DOMID DEVID", argc, argv, 2, &d.id);
    if (rc >= 0)
        return rc;
    h = xs_connect(&rc);
    if (!h)
        return rc;
    d.own = own_domid(h);
    detach_find(h, &d);
    if (!d.be[0] && !xs_node_exists(h, XBT_NULL, d.id.fe) && !xs_node_exists(h, XBT_NULL, d.id.lx)) {
        rc = errno == EACCES ? XBC_EPERM : XBC_ENOENT;
        if (rc == XBC_EPERM)
            xbc_err("permission denied by xenstored: detach needs root in the toolstack domain");
        else
            xbc_err("no such device: domain %u has no disk %u (%s)", d.id.domid, d.id.devid,
                    d.id.vdev);
        goto out;
    }
    printf("detaching domain %u device %u (%s): %s\n", d.id.domid, d.id.devid,
           d.id.vdev, d.be[0] ? d.be : "no backend directory");
    fflush(stdout);
    rc = d.be[0] ? detach_close(h, &d) : XBC_OK;
    if (rc != XBC_OK && rc != XBC_ETIMEDOUT)
        goto out;
    rc2 = with_retries(detach_remove_txn, h, &d);
    if (rc2 == XBC_OK)
        printf("removed the frontend, backend and toolstack nodes\n");
    else
        rc = rc2;
out:
    xs_close(h);
    return rc;
}
