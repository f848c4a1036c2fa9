/*
 * xenblkctl_client.c - one request to xenblkd's control socket, one reply.
 *
 * Protocol v1 (xenblkd(8), CONTROL SOCKET): one JSON object per line each
 * way.  The client connects, writes its request line, reads one reply
 * line and closes; it never keeps a connection open (the daemon times
 * idle clients out, and one short connection per sample keeps --watch
 * simple).
 *
 * Every way this can fail is turned into a message that says what the
 * administrator can do about it, and into one of the documented exit
 * statuses (xenblkctl.h).
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "xenblkctl.h"

/* How much the current call may say (one call at a time). */
static enum xbc_verbosity verbosity;
/* The reply deadline of the call under way, for its timeout message. */
static int64_t call_timeout_ms = XBC_REPLY_TIMEOUT_MS;

static void say(bool nodaemon, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(bool nodaemon, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (verbosity == XBC_QUIET || (nodaemon && verbosity == XBC_QUIET_NODAEMON))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    xbc_err("%s", msg);
}

/* A reply bigger than this is not a reply (stats of thousands of rings
 * stay far below). */
#define XBC_REPLY_MAX (64u << 20)

json_object *xbc_request_new(const char *command)
{
    json_object *req = json_object_new_object();

    json_object_object_add(req, "version", json_object_new_int(1));
    json_object_object_add(req, "command", json_object_new_string(command));
    return req;
}

/* "group xenblkd" or "gid 123" for the permission hint. */
static void group_name(gid_t gid, char *buf, size_t len)
{
    struct group *gr = getgrgid(gid);

    if (gr)
        snprintf(buf, len, "group %s", gr->gr_name);
    else
        snprintf(buf, len, "gid %u", (unsigned)gid);
}

static int connect_error(const char *path, int err)
{
    struct stat st;
    char grp[64];

    /* connect() on a directory or a regular file says ECONNREFUSED. */
    if (err == ECONNREFUSED && stat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
        err = ENOTSOCK;
    switch (err) {
    case ENOENT:
        say(true, "xenblkd is not running: no control socket at %s "
                    "(start it: systemctl start xenblkd; or pass --socket)", path);
        return XBC_ENODAEMON;
    case ECONNREFUSED:
        say(true, "xenblkd is not running: %s refuses connections "
                    "(a socket left by a daemon that died)", path);
        return XBC_ENODAEMON;
    case EACCES:
    case EPERM:
        if (stat(path, &st) == 0) {
            group_name(st.st_gid, grp, sizeof(grp));
            say(false, "permission denied on %s: run as root, or as a member of "
                    "%s for the read-only commands", path, grp);
        } else {
            say(false, "permission denied on %s (or a directory above it)", path);
        }
        return XBC_EPERM;
    case ENOTSOCK:
        say(false, "%s is not a socket: is it the path of xenblkd's control socket?", path);
        return XBC_EFAIL;
    default:
        say(false, "cannot connect to %s: %s", path, strerror(err));
        return XBC_EFAIL;
    }
}

static int connect_socket(const char *path, int *fdp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        say(false, "socket path too long (%zu bytes, at most %zu): %s",
                strlen(path), sizeof(sa.sun_path) - 1, path);
        return XBC_EUSAGE;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        say(false, "socket: %s", strerror(errno));
        return XBC_EFAIL;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int err = errno;
        close(fd);
        return connect_error(path, err);
    }
    *fdp = fd;
    return XBC_OK;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until FD is ready for EVENTS before DEADLINE; 0, or an exit status. */
static int wait_fd(int fd, short events, int64_t deadline, const char *what)
{
    struct pollfd p = { .fd = fd, .events = events };
    int r;

    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            say(false, "xenblkd did not %s within %.0f s", what, call_timeout_ms / 1000.0);
            return XBC_ETIMEDOUT;
        }
        r = poll(&p, 1, (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR) {
            say(false, "poll: %s", strerror(errno));
            return XBC_EFAIL;
        }
    }
}

static int send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            int rc = wait_fd(fd, POLLOUT, deadline, "take the request");
            if (rc)
                return rc;
            continue;
        }
        say(false, "xenblkd closed the connection before taking the request: %s",
                n < 0 ? strerror(errno) : "end of file");
        return XBC_EFAIL;
    }
    return XBC_OK;
}

/* Read one line (without its newline) into a malloc'd buffer. */
static int recv_line(int fd, char **out, int64_t deadline)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);

    if (!buf)
        abort();
    for (;;) {
        ssize_t n;
        char *nl;
        int rc;

        if (cap - len < 4096) {
            if (cap >= XBC_REPLY_MAX) {
                free(buf);
                say(false, "xenblkd's reply is longer than %u MiB: giving up",
                        XBC_REPLY_MAX >> 20);
                return XBC_EFAIL;
            }
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf)
                abort();
        }
        rc = wait_fd(fd, POLLIN, deadline, "reply");
        if (rc) {
            free(buf);
            return rc;
        }
        n = recv(fd, buf + len, cap - len - 1, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0) {
            /* The daemon dropped us: it is stopping, or it refused us
             * without a word (too many clients). */
            say(false, "xenblkd closed the connection without %s reply%s%s",
                    len ? "a complete" : "a",
                    n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
            free(buf);
            return XBC_EFAIL;
        }
        nl = memchr(buf + len, '\n', (size_t)n);
        len += (size_t)n;
        if (nl) {
            *nl = '\0';
            *out = buf;
            return XBC_OK;
        }
    }
}

/* Map the daemon's machine code to an exit status. */
static int code_status(const char *code)
{
    static const struct { const char *code; int status; } map[] = {
        { "permission_denied", XBC_EPERM },
        { "not_found", XBC_ENOENT },
        { "bad_request", XBC_EUSAGE },
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(code, map[i].code) == 0)
            return map[i].status;
    return XBC_EFAIL;
}

static int reply_error(json_object *reply, const char *command)
{
    const char *error = xbc_str(reply, "error", "(no error text)");
    const char *code = xbc_str(reply, "code", "");

    if (strcmp(code, "permission_denied") == 0)
        say(false, "%s: permission denied by xenblkd: %s (the command needs root)",
                command, error);
    else if (strcmp(code, "unknown_command") == 0 || strcmp(code, "unsupported_version") == 0)
        say(false, "%s: xenblkd does not know this request (%s): is the daemon "
                "older than xenblkctl? (xenblkctl version)", command, error);
    else
        say(false, "%s: %s", command, error);
    return code_status(code);
}

static int call(const char *socket, json_object *req, json_object **reply,
                enum xbc_verbosity v, int64_t timeout_ms, pid_t *peer);

int xbc_call(const char *socket, json_object *req, json_object **reply,
             enum xbc_verbosity v)
{
    return xbc_call_timeout(socket, req, reply, v, XBC_REPLY_TIMEOUT_MS);
}

int xbc_call_timeout(const char *socket, json_object *req, json_object **reply,
                     enum xbc_verbosity v, int64_t timeout_ms)
{
    return call(socket, req, reply, v, timeout_ms, NULL);
}

int xbc_call_peer(const char *socket, json_object *req, json_object **reply,
                  enum xbc_verbosity v, pid_t *peer)
{
    return call(socket, req, reply, v, XBC_REPLY_TIMEOUT_MS, peer);
}

/* The process that listens on the connected socket FD (the one that
 * called listen(): the daemon, it does not fork), as seen from our PID
 * namespace; 0 when unknown. */
static pid_t listener_pid(int fd)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || len != sizeof(cr))
        return 0;
    return cr.pid > 0 ? cr.pid : 0;
}

static int call(const char *socket, json_object *req, json_object **reply,
                enum xbc_verbosity v, int64_t timeout_ms, pid_t *peer)
{
    const char *text, *command = xbc_str(req, "command", "?");
    char cmd[64], *line = NULL;
    int64_t deadline;
    json_object *r;
    enum json_tokener_error jerr;
    int fd = -1, rc;

    verbosity = v;
    call_timeout_ms = timeout_ms;
    *reply = NULL;
    if (peer)
        *peer = 0;
    snprintf(cmd, sizeof(cmd), "%s", command);
    text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
    rc = connect_socket(socket, &fd);
    if (rc)
        goto out;
    if (peer)
        *peer = listener_pid(fd);
    deadline = now_ms() + timeout_ms;
    rc = send_all(fd, text, strlen(text), deadline);
    if (rc == 0)
        rc = send_all(fd, "\n", 1, deadline);
    if (rc == 0)
        rc = recv_line(fd, &line, deadline);
    if (rc)
        goto out;
    r = json_tokener_parse_verbose(line, &jerr);
    if (!r || !json_object_is_type(r, json_type_object)) {
        say(false, "%s: xenblkd sent a reply that is not a JSON object (%s)", cmd,
                r ? "wrong type" : json_tokener_error_desc(jerr));
        json_object_put(r);
        rc = XBC_EFAIL;
        goto out;
    }
    if (!xbc_bool(r, "ok")) {
        rc = reply_error(r, cmd);
        json_object_put(r);
        goto out;
    }
    *reply = r;
out:
    free(line);
    if (fd >= 0)
        close(fd);
    json_object_put(req);
    return rc;
}

bool xbc_daemon_up(const char *socket)
{
    json_object *reply = NULL;
    int rc = xbc_call(socket, xbc_request_new("ping"), &reply, XBC_QUIET);

    json_object_put(reply);
    return rc == XBC_OK;
}

/* ---- tolerant field access ---- */

json_object *xbc_get(json_object *o, const char *key)
{
    json_object *v = NULL;

    if (!o || !json_object_is_type(o, json_type_object))
        return NULL;
    if (!json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

bool xbc_has(json_object *o, const char *key)
{
    return xbc_get(o, key) != NULL;
}

static uint64_t as_u64(json_object *v)
{
    if (!v)
        return 0;
    if (json_object_is_type(v, json_type_int))
        return json_object_get_uint64(v);
    if (json_object_is_type(v, json_type_double)) {
        double d = json_object_get_double(v);
        return d > 0 ? (uint64_t)d : 0;
    }
    if (json_object_is_type(v, json_type_boolean))
        return json_object_get_boolean(v) ? 1 : 0;
    return 0;
}

uint64_t xbc_u64(json_object *o, const char *key)
{
    return as_u64(xbc_get(o, key));
}

double xbc_double(json_object *o, const char *key)
{
    json_object *v = xbc_get(o, key);

    if (v && (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
        return json_object_get_double(v);
    return 0;
}

const char *xbc_str(json_object *o, const char *key, const char *dflt)
{
    json_object *v = xbc_get(o, key);

    if (v && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return dflt;
}

bool xbc_bool(json_object *o, const char *key)
{
    json_object *v = xbc_get(o, key);

    if (!v)
        return false;
    if (json_object_is_type(v, json_type_boolean))
        return json_object_get_boolean(v);
    return as_u64(v) != 0;
}

json_object *xbc_path(json_object *o, const char *dotted)
{
    char key[64];
    const char *p = dotted;

    while (o && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);

        if (n >= sizeof(key))
            return NULL;
        memcpy(key, p, n);
        key[n] = '\0';
        o = xbc_get(o, key);
        p += n + (dot ? 1 : 0);
    }
    return o;
}

uint64_t xbc_path_u64(json_object *o, const char *dotted)
{
    return as_u64(xbc_path(o, dotted));
}
