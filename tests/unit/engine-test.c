/* engine-test.c - what the I/O engine's unit tests share (engine-test.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine-test.h"

void op_done(struct xbd_aio *a, long res)
{
    struct op *o = (struct op *)a;

    o->res = res;
    o->calls++;
}

void wake_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

int sh(const char *tmpl, const char *arg, char *out, size_t outlen)
{
    char cmd[1024];
    size_t n = 0, alen = strlen(arg);
    FILE *f;

    for (const char *p = tmpl; *p && n + alen + 1 < sizeof(cmd); p++) {
        if (*p == '@') {
            memcpy(cmd + n, arg, alen);
            n += alen;
        } else {
            cmd[n++] = *p;
        }
    }
    cmd[n] = '\0';
    if (!out)
        return system(cmd);
    f = popen(cmd, "r");
    if (!f)
        return -1;
    if (!fgets(out, (int)outlen, f))
        out[0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    return pclose(f);
}
