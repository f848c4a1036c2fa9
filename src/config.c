/*
 * config.c - the configuration file, the defaults and the key table that
 * the command line shares.
 *
 * Why a hand-written parser and not libinih, libconfuse or GKeyFile: the
 * format is twenty-one keys of "key = value" under four sections, and the
 * promise to administrators is that every mistake is reported as
 * "FILE:LINE: reason" and that nothing is accepted silently.  libinih's
 * behaviour is fixed when the distribution compiles it (continuation
 * lines, inline comments, the 200-byte line limit that splits longer
 * lines, whether the handler even learns the line number), so the file
 * format would depend on a build flag elsewhere; libconfuse has its own
 * brace syntax, not sections; GKeyFile brings GLib into a dom0 daemon and
 * accepts duplicate keys (last wins) and locale variants.  The parser
 * below is one pass over lines, about a hundred lines, with no
 * dependency and no surprise: no continuation lines, comments only on
 * their own line, no quoting (a value is everything after '=' up to the
 * end of the line, surrounding blanks removed), unknown sections and
 * keys, duplicate keys, lines without '=' are errors.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/un.h>

#include "budget.h"
#include "log_limit.h"
#include "nbd_server.h"
#include "xenblkd/config.h"
#include "xenblkd/dataplane.h"
#include "xenblkd/xenbus.h"

#ifndef XBD_SYSCONFDIR
#define XBD_SYSCONFDIR "/etc"
#endif

/* A longer line is refused rather than split or truncated. */
#define XBD_CONF_LINE_MAX 4096

enum conf_type {
    T_KINDS,        /* comma-separated backend kinds */
    T_DOMID,        /* auto or 0..0x7fef */
    T_DIR,          /* absolute path */
    T_SOCKET,       /* absolute path that fits sun_path */
    T_GROUP,        /* an existing group, by name or number */
    T_LEVEL,        /* log level */
    T_TARGET,       /* syslog or stderr */
    T_BOOL,
    T_UINT,         /* min..max */
    T_UINT_AUTO,    /* auto (stored as 0) or min..max */
};

struct xbd_conf_key {
    const char *section, *name;
    const char *option;         /* long option, without "--" */
    int short_opt;
    const char *arg;            /* argument name in --help */
    const char *help;
    enum conf_type type;
    size_t off, size;           /* the field in struct xbd_daemon_config */
    unsigned long min, max;
    enum xbd_conf_apply apply;
};

#define FIELD(f) offsetof(struct xbd_daemon_config, f), sizeof(((struct xbd_daemon_config *)0)->f)

/* The order here is the order of --check-config and of conf/xenblkd.conf. */
static const struct xbd_conf_key keys[] = {
    { "daemon", "kinds", "kinds", 'k', "LIST",
      "backend kinds to serve, comma separated, among\n"
      "vbd3, qdisk, vbd; vbd is only served when the\n"
      "kernel's xen-blkback is absent",
      T_KINDS, FIELD(kinds), 0, 0, XBD_CONF_RESTART },
    { "daemon", "domid", "domid", 'd', "N|auto",
      "our own domain id (auto: the \"domid\" key of\n"
      "our xenstore home, else 0)",
      T_DOMID, FIELD(domid), 0, 0x7fef, XBD_CONF_RESTART },
    { "daemon", "state-directory", "state-dir", 0, "DIR",
      "where the per-ring crash journal lives",
      T_DIR, FIELD(state_dir), 0, 0, XBD_CONF_RESTART },
    { "log", "level", "log-level", 'l', "LEVEL",
      "error, warning, info or debug",
      T_LEVEL, FIELD(log_level), 0, 0, XBD_CONF_AT_ONCE },
    { "log", "target", "log-target", 0, "TARGET",
      "syslog (facility daemon) or stderr",
      T_TARGET, FIELD(log_target), 0, 0, XBD_CONF_AT_ONCE },
    { "log", "rate-limit", "log-rate-limit", 0, "N",
      "lines per second a disk's guest can make us\n"
      "log (the host: 10 times more); 0: no limit",
      T_UINT, FIELD(log_rate), 0, 1000000, XBD_CONF_AT_ONCE },
    { "log", "rate-burst", "log-rate-burst", 0, "N",
      "lines a disk may log at once before the rate\n"
      "limit applies",
      T_UINT, FIELD(log_burst), 1, 1000000, XBD_CONF_AT_ONCE },
    { "control", "socket", "control-socket", 0, "PATH",
      "the control socket",
      T_SOCKET, FIELD(control_socket), 0, 0, XBD_CONF_RESTART },
    { "control", "group", "control-group", 0, "GROUP",
      "group allowed the control socket's read-only\n"
      "commands",
      T_GROUP, FIELD(control_group), 0, 0, XBD_CONF_RESTART },
    { "disks", "direct-io", "direct-io", 0, "yes|no",
      "open backing stores with O_DIRECT",
      T_BOOL, FIELD(disks.direct_io), 0, 0, XBD_CONF_NEW_DEVICES },
    { "disks", "discard", "discard", 0, "yes|no",
      "offer discard where the backing store supports\n"
      "it and the toolstack's discard-enable is absent",
      T_BOOL, FIELD(disks.discard), 0, 0, XBD_CONF_NEW_DEVICES },
    { "disks", "max-queues", "max-queues", 0, "N|auto",
      "at most N queues per disk (auto and cap: the\n"
      "number of CPUs)",
      T_UINT_AUTO, FIELD(disks.max_queues), 1, XBD_MAX_QUEUES, XBD_CONF_NEW_DEVICES },
    { "disks", "max-ring-page-order", "max-ring-page-order", 0, "N",
      "rings of at most 2^N pages (0..4)",
      T_UINT, FIELD(disks.max_ring_order), 0, XBD_MAX_RING_ORDER, XBD_CONF_NEW_DEVICES },
    { "disks", "max-indirect-segments", "max-indirect-segments", 0, "N",
      "segments per indirect request (0..256; 0 turns\n"
      "indirect descriptors off)",
      T_UINT, FIELD(disks.max_indirect_segs), 0, XBD_MAX_INDIRECT_SEGS, XBD_CONF_NEW_DEVICES },
    { "disks", "max-persistent-grants", "max-persistent-grants", 0, "N",
      "persistent grants kept per ring (0 turns\n"
      "feature-persistent off)",
      T_UINT, FIELD(disks.max_pgrants), 0, XBD_MAX_PGRANTS_LIMIT, XBD_CONF_NEW_DEVICES },
    { "disks", "persistent-grant-idle", "persistent-grant-idle", 0, "SECONDS",
      "unmap a persistent grant unused this long\n"
      "(0 keeps it until disconnect)",
      T_UINT, FIELD(disks.pgrant_idle_s), 0, XBD_PGRANT_IDLE_LIMIT, XBD_CONF_NEW_DEVICES },
    { "disks", "disk-memory", "disk-memory", 0, "MIB",
      "memory for request slots and bounce pages per\n"
      "disk, split over its queues",
      T_UINT, FIELD(disks.disk_memory_mib), 1, 1u << 20, XBD_CONF_NEW_DEVICES },
    { "disks", "disk-grant-mappings", "disk-grant-mappings", 0, "N",
      "persistent grants mapped at once per disk,\n"
      "split over its queues (beyond: grant copy)",
      T_UINT, FIELD(disks.disk_grant_mappings), 0, XBD_MAX_PGRANTS_LIMIT,
      XBD_CONF_NEW_DEVICES },
    { "disks", "disk-fds", "disk-fds", 0, "N",
      "file descriptors per disk: 1 + 2 per queue\n"
      "(caps the queues offered)",
      T_UINT, FIELD(disks.disk_fds), 3, 1u + 2u * XBD_MAX_QUEUES, XBD_CONF_NEW_DEVICES },
    { "disks", "max-inflight-per-device", "max-inflight-per-device", 0, "N",
      "at most N I/Os of one disk in flight at once;\n"
      "more wait in their ring's queue (1..1024)",
      T_UINT, FIELD(disks.inflight_per_device), 1, XBD_INFLIGHT_SHARE_MAX, XBD_CONF_AT_ONCE },
    { "disks", "max-inflight-per-ring", "max-inflight-per-ring", 0, "N",
      "at most N I/Os of one queue (ring) in flight at\n"
      "once (1..1024)",
      T_UINT, FIELD(disks.inflight_per_ring), 1, XBD_INFLIGHT_SHARE_MAX, XBD_CONF_AT_ONCE },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const char *const sections[] = { "daemon", "log", "control", "disks" };
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

/* ------------------------------------------------------------------ */
/* the table                                                           */

size_t xbd_conf_key_count(void) { return NKEYS; }
const struct xbd_conf_key *xbd_conf_key_at(size_t i) { return i < NKEYS ? &keys[i] : NULL; }
const char *xbd_conf_key_section(const struct xbd_conf_key *k) { return k->section; }
const char *xbd_conf_key_name(const struct xbd_conf_key *k) { return k->name; }
const char *xbd_conf_key_option(const struct xbd_conf_key *k) { return k->option; }
int xbd_conf_key_short(const struct xbd_conf_key *k) { return k->short_opt; }
const char *xbd_conf_key_arg(const struct xbd_conf_key *k) { return k->arg; }
const char *xbd_conf_key_help(const struct xbd_conf_key *k) { return k->help; }
enum xbd_conf_apply xbd_conf_key_apply(const struct xbd_conf_key *k) { return k->apply; }

const struct xbd_conf_key *xbd_conf_key_by_option(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].option, name))
            return &keys[i];
    return NULL;
}

static void *field(struct xbd_daemon_config *c, const struct xbd_conf_key *k)
{
    return (char *)c + k->off;
}

static const void *cfield(const struct xbd_daemon_config *c, const struct xbd_conf_key *k)
{
    return (const char *)c + k->off;
}

const char *xbd_conf_default_path(void)
{
    return XBD_SYSCONFDIR "/xenblkd.conf";
}

void xbd_conf_defaults(struct xbd_daemon_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->kinds, sizeof(c->kinds), "vbd3");
    c->domid = XBD_DOMID_AUTO;
    snprintf(c->state_dir, sizeof(c->state_dir), "%s", XBD_CONF_DEFAULT_STATE_DIR);
    c->log_level = XBD_LOG_INFO;
    c->log_target = XBD_LOG_TO_SYSLOG;
    c->log_rate = XBD_DEFAULT_LOG_RATE;
    c->log_burst = XBD_DEFAULT_LOG_BURST;
    snprintf(c->control_socket, sizeof(c->control_socket), "%s",
             XBD_CONF_DEFAULT_CONTROL_SOCKET);
    snprintf(c->control_group, sizeof(c->control_group), "%s", XBD_CONF_DEFAULT_CONTROL_GROUP);
    c->disks = (struct xbd_config){
        .direct_io = true,
        .discard = true,
        .max_queues = XBD_QUEUES_AUTO,
        .max_ring_order = XBD_MAX_RING_ORDER,
        .max_indirect_segs = XBD_MAX_INDIRECT_SEGS,
        .max_pgrants = XBD_DEFAULT_MAX_PGRANTS,
        .pgrant_idle_s = XBD_DEFAULT_PGRANT_IDLE,
        .disk_memory_mib = XBD_DEFAULT_DISK_MEMORY_MIB,
        .disk_grant_mappings = XBD_DEFAULT_DISK_GRANT_MAPPINGS,
        .disk_fds = XBD_DEFAULT_DISK_FDS,
        .inflight_per_device = XBD_DEFAULT_INFLIGHT_PER_DEVICE,
        .inflight_per_ring = XBD_DEFAULT_INFLIGHT_PER_RING,
    };
}

void xbd_conf_disks(const struct xbd_daemon_config *c, struct xbd_config *out)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned cap = cpus < 1 ? 1 : cpus > (long)XBD_MAX_QUEUES ? XBD_MAX_QUEUES : (unsigned)cpus;

    *out = c->disks;
    /* Needs a restart to change: the running value stays in c. */
    out->state_dir = c->state_dir;
    if (out->max_queues == XBD_QUEUES_AUTO || out->max_queues > cap)
        out->max_queues = cap;
}

/* ------------------------------------------------------------------ */
/* values                                                              */

/* Decimal digits only; ULONG_MAX on overflow (caught by every range). */
static int parse_number(const char *s, unsigned long *out)
{
    unsigned long v = 0;

    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        v = v > (ULONG_MAX - d) / 10 ? ULONG_MAX : v * 10 + d;
    }
    *out = v;
    return 0;
}

static int set_uint(const char *v, const struct xbd_conf_key *k, bool autok,
                    unsigned long *out, char *why, size_t n)
{
    if (autok && !strcmp(v, "auto")) {
        *out = 0;
        return 1;
    }
    if (parse_number(v, out) < 0) {
        snprintf(why, n, "'%s' is not a number%s (%lu..%lu)", v, autok ? " or auto" : "",
                 k->min, k->max);
        return -1;
    }
    if (*out < k->min || *out > k->max) {
        snprintf(why, n, "%s is out of range (%lu..%lu)", v, k->min, k->max);
        return -1;
    }
    return 0;
}

static int set_bool(const char *v, bool *out, char *why, size_t n)
{
    static const char *const yes[] = { "yes", "true", "1" }, *const no[] = { "no", "false", "0" };

    for (size_t i = 0; i < 3; i++) {
        if (!strcasecmp(v, yes[i])) {
            *out = true;
            return 0;
        }
        if (!strcasecmp(v, no[i])) {
            *out = false;
            return 0;
        }
    }
    snprintf(why, n, "'%s' is not a boolean (yes, no, true, false, 1, 0)", v);
    return -1;
}

/* Whether kind k is one of the comma-separated entries of list (every
 * entry, not only the first place k appears as a substring: "vbd" is in
 * "vbd3"). */
static bool kind_listed(const char *list, const char *k)
{
    size_t l = strlen(k);

    for (const char *p = list; *p; p += strcspn(p, ","), p += *p == ',') {
        if (!strncmp(p, k, l) && (p[l] == ',' || !p[l]))
            return true;
    }
    return false;
}

/* Every kind known, none twice, blanks around commas allowed; stored
 * normalised ("vbd3,qdisk"). */
static int set_kinds(const char *v, char *out, size_t outlen, char *why, size_t n)
{
    char copy[256], norm[XBD_CONF_KINDS_MAX] = "";
    char *rest = copy, *k;
    size_t count = 0;

    if (strlen(v) >= sizeof(copy)) {
        snprintf(why, n, "list too long");
        return -1;
    }
    snprintf(copy, sizeof(copy), "%s", v);
    /* strsep, not strtok: "vbd3,,qdisk" has an empty kind. */
    while ((k = strsep(&rest, ","))) {
        while (*k == ' ' || *k == '\t')
            k++;
        size_t l = strlen(k);
        while (l && (k[l - 1] == ' ' || k[l - 1] == '\t'))
            k[--l] = '\0';
        if (!*k) {
            snprintf(why, n, "empty backend kind in '%s'", v);
            return -1;
        }
        if (!xbd_kind_known(k)) {
            snprintf(why, n, "unknown backend kind '%.32s' (known: vbd3, qdisk, vbd)", k);
            return -1;
        }
        if (kind_listed(norm, k)) {
            snprintf(why, n, "backend kind '%s' given twice", k);
            return -1;
        }
        size_t used = strlen(norm);
        snprintf(norm + used, sizeof(norm) - used, "%s%s", used ? "," : "", k);
        count++;
    }
    if (!count) {
        snprintf(why, n, "no backend kind given");
        return -1;
    }
    snprintf(out, outlen, "%s", norm);
    return 0;
}

/* The state directory holds the disks' local-attach sockets too
 * (<dir>/nbd/<kind>-<domid>-<devid>.sock, nbd_server.h), whose whole path
 * must fit in a socket address: below a longer directory no disk would get
 * its NBD export, nor a vbd3 disk its physical-device-path, and its
 * hotplug script would wait for that in vain.  The longest name is of the
 * longest kind, domain id and device id. */
static size_t state_dir_max(void)
{
    return sizeof(((struct sockaddr_un *)0)->sun_path) - 1 -
           strlen("/" XBD_NBD_SUBDIR "/qdisk-32751-4294967295.sock");
}

static int set_path(const char *v, char *out, size_t outlen, char *why, size_t n)
{
    if (v[0] != '/') {
        snprintf(why, n, "'%s' is not an absolute path", v);
        return -1;
    }
    if (strlen(v) >= outlen) {
        snprintf(why, n, "path too long (at most %zu bytes)", outlen - 1);
        return -1;
    }
    snprintf(out, outlen, "%s", v);
    return 0;
}

/* The group must exist now: a typo found at start-up, not when the first
 * client is refused. */
static int set_group(const char *v, char *out, size_t outlen, char *why, size_t n)
{
    unsigned long gid;
    bool found;

    if (strlen(v) >= outlen) {
        snprintf(why, n, "group name too long (at most %zu bytes)", outlen - 1);
        return -1;
    }
    /* errno is not reliable here: NSS modules leave 0, ENOENT or ESRCH
     * for a group that does not exist. */
    if (parse_number(v, &gid) == 0)
        found = gid < (gid_t)-1 && getgrgid((gid_t)gid) != NULL;
    else
        found = getgrnam(v) != NULL;
    if (!found) {
        snprintf(why, n, "unknown group '%s'", v);
        return -1;
    }
    snprintf(out, outlen, "%s", v);
    return 0;
}

int xbd_conf_key_set(struct xbd_daemon_config *c, const struct xbd_conf_key *k,
                     const char *v, char *why, size_t n)
{
    void *f = field(c, k);
    unsigned long u;
    int rc;

    if (!*v) {
        snprintf(why, n, "no value");
        return -1;
    }
    switch (k->type) {
    case T_KINDS:
        return set_kinds(v, f, k->size, why, n);
    case T_DOMID:
        if (!strcmp(v, "auto")) {
            *(long *)f = XBD_DOMID_AUTO;
            return 0;
        }
        if (parse_number(v, &u) < 0 || u > k->max) {
            snprintf(why, n, "'%s' is not a domain id (0..%lu or auto)", v, k->max);
            return -1;
        }
        *(long *)f = (long)u;
        return 0;
    case T_DIR:
        if (v[0] == '/' && strlen(v) > state_dir_max()) {
            snprintf(why, n, "path too long (at most %zu bytes: the disks' NBD sockets "
                     "below it must fit in a socket address)", state_dir_max());
            return -1;
        }
        return set_path(v, f, k->size, why, n);
    case T_SOCKET:
        return set_path(v, f, k->size, why, n);
    case T_GROUP:
        return set_group(v, f, k->size, why, n);
    case T_LEVEL:
        if (xbd_log_level_parse(v, f) < 0) {
            snprintf(why, n, "unknown level '%s' (error, warning, info, debug)", v);
            return -1;
        }
        return 0;
    case T_TARGET:
        if (!strcmp(v, "syslog")) {
            *(enum xbd_log_target *)f = XBD_LOG_TO_SYSLOG;
        } else if (!strcmp(v, "stderr")) {
            *(enum xbd_log_target *)f = XBD_LOG_TO_STDERR;
        } else {
            snprintf(why, n, "unknown log target '%s' (syslog, stderr)", v);
            return -1;
        }
        return 0;
    case T_BOOL:
        return set_bool(v, f, why, n);
    case T_UINT:
    case T_UINT_AUTO:
        rc = set_uint(v, k, k->type == T_UINT_AUTO, &u, why, n);
        if (rc < 0)
            return -1;
        *(unsigned *)f = (unsigned)u;
        return 0;
    }
    snprintf(why, n, "internal error: key type %d", (int)k->type);
    return -1;
}

void xbd_conf_key_format(const struct xbd_daemon_config *c, const struct xbd_conf_key *k,
                         char *buf, size_t n)
{
    const void *f = cfield(c, k);

    switch (k->type) {
    case T_KINDS:
    case T_DIR:
    case T_SOCKET:
    case T_GROUP:
        snprintf(buf, n, "%s", (const char *)f);
        break;
    case T_DOMID:
        if (*(const long *)f == XBD_DOMID_AUTO)
            snprintf(buf, n, "auto");
        else
            snprintf(buf, n, "%ld", *(const long *)f);
        break;
    case T_LEVEL:
        snprintf(buf, n, "%s", xbd_log_level_name(*(const enum xbd_log_level *)f));
        break;
    case T_TARGET:
        snprintf(buf, n, "%s", *(const enum xbd_log_target *)f == XBD_LOG_TO_STDERR ?
                 "stderr" : "syslog");
        break;
    case T_BOOL:
        snprintf(buf, n, "%s", *(const bool *)f ? "yes" : "no");
        break;
    case T_UINT_AUTO:
        if (*(const unsigned *)f == 0) {
            snprintf(buf, n, "auto");
            break;
        }
        /* fall through */
    case T_UINT:
        snprintf(buf, n, "%u", *(const unsigned *)f);
        break;
    }
}

void xbd_conf_key_copy(struct xbd_daemon_config *dst, const struct xbd_daemon_config *src,
                       const struct xbd_conf_key *k)
{
    memcpy(field(dst, k), cfield(src, k), k->size);
}

void xbd_conf_print(FILE *f, const struct xbd_daemon_config *c, const char *header)
{
    const char *section = NULL;
    char v[XBD_CONF_PATH_MAX];

    if (header)
        fprintf(f, "# %s\n", header);
    for (size_t i = 0; i < NKEYS; i++) {
        if (!section || strcmp(section, keys[i].section)) {
            section = keys[i].section;
            fprintf(f, "%s[%s]\n", i || header ? "\n" : "", section);
        }
        xbd_conf_key_format(c, &keys[i], v, sizeof(v));
        fprintf(f, "%s = %s\n", keys[i].name, v);
    }
}

/* ------------------------------------------------------------------ */
/* the file                                                            */

struct parser {
    struct xbd_daemon_config *c;
    const char *path;
    unsigned line;
    const char *section;        /* NULL before the first [section] */
    unsigned set_on[NKEYS];     /* line that set each key, 0 = not yet */
    char *err;
    size_t errlen;
};

static int perr(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(struct parser *p, const char *fmt, ...)
{
    va_list ap;
    char why[512];

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "%s:%u: %s", p->path, p->line, why);
    return -1;
}

static char *trim(char *s)
{
    size_t l;

    while (*s == ' ' || *s == '\t')
        s++;
    l = strlen(s);
    while (l && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\r'))
        s[--l] = '\0';
    return s;
}

static int parse_section(struct parser *p, char *s)
{
    size_t l = strlen(s);

    if (s[l - 1] != ']')
        return perr(p, "'[' without a closing ']'");
    s[l - 1] = '\0';
    s = trim(s + 1);
    for (size_t i = 0; i < NSECTIONS; i++) {
        if (!strcmp(s, sections[i])) {
            p->section = sections[i];
            return 0;
        }
    }
    return perr(p, "unknown section [%.64s] (known: [daemon], [log], [control], [disks])", s);
}

static const struct xbd_conf_key *find_key(const char *section, const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if ((!section || !strcmp(keys[i].section, section)) && !strcmp(keys[i].name, name))
            return &keys[i];
    return NULL;
}

static int parse_assignment(struct parser *p, char *s)
{
    char *eq = strchr(s, '='), *name, *value, why[400];
    const struct xbd_conf_key *k, *elsewhere;

    if (!eq)
        return perr(p, "expected 'key = value', '[section]' or a comment, got '%.64s'", s);
    *eq = '\0';
    name = trim(s);
    value = trim(eq + 1);
    if (!*name)
        return perr(p, "no key before '='");
    k = p->section ? find_key(p->section, name) : NULL;
    if (!k) {
        elsewhere = find_key(NULL, name);
        if (!p->section && elsewhere)
            return perr(p, "'%s' outside any section (it belongs in [%s])", name,
                        elsewhere->section);
        if (!p->section)
            return perr(p, "unknown key '%.64s' outside any section", name);
        if (elsewhere)
            return perr(p, "unknown key '%s' in [%s] (it belongs in [%s])", name, p->section,
                        elsewhere->section);
        return perr(p, "unknown key '%.64s' in [%s]", name, p->section);
    }
    size_t i = (size_t)(k - keys);
    if (p->set_on[i])
        return perr(p, "duplicate key '%s' (already set on line %u)", name, p->set_on[i]);
    if (xbd_conf_key_set(p->c, k, value, why, sizeof(why)) < 0)
        return perr(p, "%s: %s", name, why);
    p->set_on[i] = p->line;
    return 0;
}

static int parse_line(struct parser *p, char *buf, size_t len)
{
    char *s;

    if (len && buf[len - 1] == '\n')
        buf[--len] = '\0';
    if (memchr(buf, '\0', len))
        return perr(p, "NUL byte in line");
    if (len > XBD_CONF_LINE_MAX)
        return perr(p, "line too long (more than %d bytes)", XBD_CONF_LINE_MAX);
    s = trim(buf);
    if (!*s || *s == '#' || *s == ';')
        return 0;
    if (*s == '[')
        return parse_section(p, s);
    return parse_assignment(p, s);
}

int xbd_conf_load_file(struct xbd_daemon_config *c, const char *path, bool missing_ok,
                       bool *missing, char *err, size_t errlen)
{
    struct parser p = { .c = c, .path = path, .err = err, .errlen = errlen };
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;

    if (missing)
        *missing = false;
    if (!f) {
        if (errno == ENOENT && missing_ok) {
            if (missing)
                *missing = true;
            return 0;
        }
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    errno = 0;
    while ((len = getline(&buf, &cap, f)) >= 0) {
        p.line++;
        if (parse_line(&p, buf, (size_t)len) < 0) {
            rc = -1;
            break;
        }
        errno = 0;
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno ? errno : EIO));
        rc = -1;
    }
    free(buf);
    fclose(f);
    return rc;
}

int xbd_conf_build(struct xbd_daemon_config *out, const struct xbd_conf_source *src,
                   bool *missing, char *err, size_t errlen)
{
    char why[400];

    xbd_conf_defaults(out);
    if (xbd_conf_load_file(out, src->path, !src->explicit_path, missing, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < src->n_overrides; i++) {
        const struct xbd_conf_override *o = &src->overrides[i];
        if (xbd_conf_key_set(out, o->key, o->value, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "--%s: %s", o->key->option, why);
            return -1;
        }
    }
    return 0;
}
