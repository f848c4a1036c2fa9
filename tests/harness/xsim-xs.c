/*
 * xsim-xs - apply a batch of xenstore changes in ONE transaction.
 *
 * libxl creates a device's backend and frontend directories, their
 * permissions and every key in a single transaction, so a backend
 * watching backend/<kind> never sees a half-written device.  The
 * xenstore-write/-chmod command line tools cannot do that (each call is
 * its own transaction), hence this helper for tests/harness/env.sh.
 *
 * Reads commands from stdin, one per line ('#' starts a comment line):
 *   mkdir PATH
 *   write PATH VALUE        (VALUE is the rest of the line, may be empty)
 *   rm PATH                 (no error if PATH does not exist)
 *   chmod PATH PERM...      (PERM as xenstore-chmod: n0 r5 w5 b5; the
 *                            first one names the owner)
 * and commits them; a transaction that conflicts (EAGAIN) is replayed.
 * Exit status 0 on success, 1 on any error (with a message on stderr).
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xenstore.h>

#define MAX_PERMS 16
#define MAX_RETRIES 100

struct cmd {
    char *verb;
    char *path;
    char *arg;   /* rest of the line after PATH (may be "") */
};

struct batch {
    struct cmd *cmds;
    size_t n, cap;
};

static void die(const char *msg)
{
    fprintf(stderr, "xsim-xs: %s\n", msg);
    exit(1);
}

/* Split "verb path rest" in place; returns false on a malformed line. */
static bool parse_line(char *line, struct cmd *c)
{
    char *sp;

    c->verb = line;
    sp = strchr(line, ' ');
    if (!sp)
        return false;
    *sp = '\0';
    c->path = sp + 1;
    sp = strchr(c->path, ' ');
    if (sp) {
        *sp = '\0';
        c->arg = sp + 1;
    } else {
        c->arg = c->path + strlen(c->path);
    }
    return c->path[0] == '/';
}

static void read_batch(struct batch *b)
{
    char *line = NULL;
    size_t len = 0;
    ssize_t got;

    while ((got = getline(&line, &len, stdin)) >= 0) {
        if (got > 0 && line[got - 1] == '\n')
            line[--got] = '\0';
        if (got == 0 || line[0] == '#')
            continue;
        if (b->n == b->cap) {
            b->cap = b->cap ? 2 * b->cap : 32;
            b->cmds = realloc(b->cmds, b->cap * sizeof(*b->cmds));
            if (!b->cmds)
                die("out of memory");
        }
        if (!parse_line(line, &b->cmds[b->n])) {
            fprintf(stderr, "xsim-xs: bad line: %s\n", line);
            exit(1);
        }
        b->n++;
        line = NULL;   /* the command keeps pointers into this buffer */
        len = 0;
    }
    free(line);
}

static bool parse_perms(char *spec, struct xs_permissions *p, unsigned *n)
{
    char *tok, *save = NULL, *end;

    *n = 0;
    for (tok = strtok_r(spec, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        if (*n == MAX_PERMS)
            return false;
        switch (tok[0]) {
        case 'n': p[*n].perms = XS_PERM_NONE; break;
        case 'r': p[*n].perms = XS_PERM_READ; break;
        case 'w': p[*n].perms = XS_PERM_WRITE; break;
        case 'b': p[*n].perms = XS_PERM_READ | XS_PERM_WRITE; break;
        default: return false;
        }
        errno = 0;
        p[*n].id = (unsigned)strtoul(tok + 1, &end, 10);
        if (errno || end == tok + 1 || *end)
            return false;
        (*n)++;
    }
    return *n > 0;
}

/* Run one command inside transaction t; false with errno set on error. */
static bool run_cmd(struct xs_handle *xs, xs_transaction_t t,
                    const struct cmd *c)
{
    struct xs_permissions perms[MAX_PERMS];
    char spec[4096];
    unsigned n;

    if (!strcmp(c->verb, "mkdir"))
        return xs_mkdir(xs, t, c->path);
    if (!strcmp(c->verb, "write"))
        return xs_write(xs, t, c->path, c->arg, strlen(c->arg));
    if (!strcmp(c->verb, "rm"))
        return xs_rm(xs, t, c->path) || errno == ENOENT;
    if (!strcmp(c->verb, "chmod")) {
        /* strtok_r writes into the string: parse a copy, the batch may
         * be replayed. */
        if (snprintf(spec, sizeof(spec), "%s", c->arg) >= (int)sizeof(spec) ||
            !parse_perms(spec, perms, &n)) {
            errno = EINVAL;
            return false;
        }
        return xs_set_permissions(xs, t, c->path, perms, n);
    }
    errno = EINVAL;
    return false;
}

/* One attempt; returns 0 committed, EAGAIN to retry, other errno fails. */
static int attempt(struct xs_handle *xs, const struct batch *b)
{
    xs_transaction_t t = xs_transaction_start(xs);
    size_t i;

    if (t == XBT_NULL)
        return errno ? errno : EIO;
    for (i = 0; i < b->n; i++) {
        if (!run_cmd(xs, t, &b->cmds[i])) {
            int err = errno;

            fprintf(stderr, "xsim-xs: %s %s: %s\n", b->cmds[i].verb,
                    b->cmds[i].path, strerror(err));
            xs_transaction_end(xs, t, true);
            return err == EAGAIN ? EIO : err;
        }
    }
    if (xs_transaction_end(xs, t, false))
        return 0;
    return errno ? errno : EIO;
}

int main(int argc, char **argv)
{
    struct batch b = { 0 };
    struct xs_handle *xs;
    int rc = EAGAIN, tries;

    if (argc != 1) {
        fprintf(stderr, "usage: xsim-xs < commands (see the source)\n");
        return 1;
    }
    read_batch(&b);
    xs = xs_open(0);
    if (!xs)
        die("cannot connect to xenstored (is XENSTORED_PATH set?)");
    for (tries = 0; tries < MAX_RETRIES && rc == EAGAIN; tries++)
        rc = attempt(xs, &b);
    xs_close(xs);
    for (size_t i = 0; i < b.n; i++)
        free(b.cmds[i].verb);
    free(b.cmds);
    if (rc) {
        fprintf(stderr, "xsim-xs: transaction failed: %s\n", strerror(rc));
        return 1;
    }
    return 0;
}
